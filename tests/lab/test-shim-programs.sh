#!/bin/bash
# The shim is transparent to real programs (issue 12, S8), 20 ms RTT. Each
# part also runs without the shim as a control (those must pass). One line
# per check, "ok - ..." or "not ok - ..."; exit 1 if any failed, 77 when
# not root.
#
#   a. FTP: vsftpd (Debian) and curl, both under the shim. In active mode
#      vsftpd's privileged process connects the data socket and passes it
#      to its unprivileged child with SCM_RIGHTS; for an upload the child
#      then reads first, from a socket whose SYN the parent's shim may hold.
#      Uploads (active and passive, IPv4 and IPv6 active) must complete
#      within 20 s with the file intact; downloads too. A first active
#      download gives the server namespace its cookie for the client.
#   b. A load balancer's health check: haproxy (Debian) under the shim,
#      `check inter 200ms fall 1 rise 1` (layer 4: connect, then close).
#      The backend is up: the server is UP and stays UP for 1 s; the
#      backend is killed: DOWN within 700 ms (the first check after the
#      kill, one extra interval for a check that was under way, 300 ms for
#      a loaded machine).
#   c. nc -z (netcat-openbsd) on a host with a cookie: an open port is open,
#      a closed port is closed every time, a port seen accepting and then
#      stopped is misreported at most once (IPv4, IPv6).
set -u
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
ST=$top_builddir/tests/lab/shim-transparent
[ -x "$ST" ] || { echo "SKIP: $ST not built"; exit 77; }
[ -e "$SHIM" ] || { echo "SKIP: $SHIM not built"; exit 77; }
have_ftp=0 have_haproxy=0 have_nc=0
command -v curl >/dev/null && [ -x /usr/sbin/vsftpd ] && id ftp >/dev/null 2>&1 &&
  have_ftp=1
[ -x /usr/sbin/haproxy ] && [ -x "$PY" ] && have_haproxy=1
nc -h 2>&1 | grep -q -- '-z' && have_nc=1
if [ $have_ftp$have_haproxy$have_nc = 000 ]; then
  echo "SKIP: none of curl+vsftpd, haproxy, netcat-openbsd (scripts/deps programs)"
  exit 77
fi

RTT=20
FTP_BOUND_S=20     # a transfer completes within this
DOWN_BOUND_MS=700  # haproxy: a killed backend DOWN within this
t_start=$(date +%s%N)

info() { printf '# %s\n' "$*"; }

lab_up --rtt "$RTT" || exit 99
S4=$LAB_S_IP4 S6=$LAB_S_IP6 C4=$LAB_C_IP4 C6=$LAB_C_IP6
chmod 755 "$LAB_DIR"

# --- a. FTP -------------------------------------------------------------
if [ $have_ftp = 1 ]; then
  # Anonymous upload: a root the daemon cannot write (vsftpd refuses a
  # writable chroot), an upload folder of the ftp user inside.
  mkdir -p "$LAB_DIR/ftp/up" "$LAB_DIR/empty"
  chmod 755 "$LAB_DIR/ftp" "$LAB_DIR/empty"
  chown ftp "$LAB_DIR/ftp/up"
  chmod 755 "$LAB_DIR/ftp/up"
  head -c 300000 /dev/urandom >"$LAB_DIR/file.bin"
  cp "$LAB_DIR/file.bin" "$LAB_DIR/ftp/down.bin"
  chmod 644 "$LAB_DIR/file.bin" "$LAB_DIR/ftp/down.bin"
  SUM=$(sha256sum <"$LAB_DIR/file.bin" | cut -d' ' -f1)

  # vsftpd_conf NAME LISTEN-LINES...: a config; connect_from_port_20 makes
  # the privileged process connect active-mode data sockets.
  vsftpd_conf() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$LAB_DIR/vsftpd-$name.conf"
    cat >>"$LAB_DIR/vsftpd-$name.conf" <<CONF
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$LAB_DIR/ftp
anon_upload_enable=YES
anon_umask=022
local_enable=NO
write_enable=YES
secure_chroot_dir=$LAB_DIR/empty
connect_from_port_20=YES
port_enable=YES
pasv_enable=YES
pasv_min_port=30000
pasv_max_port=30999
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=NO
data_connection_timeout=30
CONF
  }
  vsftpd_conf plain listen=YES listen_address=$S4 listen_port=2100
  vsftpd_conf shim4 listen=YES listen_address=$S4 listen_port=2110
  vsftpd_conf shim6 listen=NO listen_ipv6=YES listen_address6=$S6 listen_port=2111
  lab_s_bg /usr/sbin/vsftpd "$LAB_DIR/vsftpd-plain.conf" >"$LAB_DIR/vsftpd-plain.log" 2>&1
  for n in shim4 shim6; do
    lab_s_bg env LD_PRELOAD="$SHIM_PRELOAD" LIBTFO_CACHE="$LAB_DIR/cache-s" \
      /usr/sbin/vsftpd "$LAB_DIR/vsftpd-$n.conf" >"$LAB_DIR/vsftpd-$n.log" 2>&1
  done
  lab_wait_port 2100 v4 && lab_wait_port 2110 v4 && lab_wait_port 2111 v6 || {
    cat "$LAB_DIR"/vsftpd-*.log
    exit 99
  }

  # ftp MODE NAME DIR(up|down) ACTIVE(-|client ip) URLHOST PORT: one curl
  # transfer, bounded; writes NAME.res "rc ms".
  ftp() {
    local mode=$1 name=$2 dir=$3 act=$4 host=$5 port=$6 t0 rc=0 args=()
    [ "$act" != - ] && args+=(--ftp-port "$act")
    if [ "$dir" = up ]; then
      args+=(-T "$LAB_DIR/file.bin" "ftp://$host:$port/up/$name.bin")
    else
      args+=(-o "$LAB_DIR/got-$name.bin" "ftp://$host:$port/down.bin")
    fi
    t0=$(date +%s%N)
    if [ "$mode" = shim ]; then
      shim_c timeout "$FTP_BOUND_S" curl -sS -g "${args[@]}" >"$LAB_DIR/$name.out" 2>&1 || rc=$?
    else
      lab_c timeout "$FTP_BOUND_S" curl -sS -g "${args[@]}" >"$LAB_DIR/$name.out" 2>&1 || rc=$?
    fi
    echo "$rc $((($(date +%s%N) - t0) / 1000000))" >"$LAB_DIR/$name.res"
  }
  ftp_judge() { # NAME DIR LABEL
    local name=$1 dir=$2 label=$3 rc ms f sum
    read -r rc ms <"$LAB_DIR/$name.res"
    if [ "$dir" = up ]; then f=$LAB_DIR/ftp/up/$name.bin; else f=$LAB_DIR/got-$name.bin; fi
    sum=$(sha256sum <"$f" 2>/dev/null | cut -d' ' -f1)
    if [ "$rc" = 0 ] && [ "$sum" = "$SUM" ]; then
      lab_pass "$label: done in $ms ms, file intact"
    elif [ "$rc" = 124 ]; then
      lab_fail "$label: not done after $FTP_BOUND_S s (hung; $(stat -c %s "$f" 2>/dev/null || echo 0) of 300000 bytes arrived)"
    else
      lab_fail "$label: curl exit $rc after $ms ms, file ${sum:+differs}${sum:-missing} ($(tr '\n' ' ' <"$LAB_DIR/$name.out" | cut -c1-120))"
    fi
  }

  # Controls: neither under the shim.
  ftp plain pa-up up "$C4" "$S4" 2100
  ftp plain pp-up up - "$S4" 2100
  ftp plain pa-down down "$C4" "$S4" 2100
  ftp_judge pa-up up "FTP control (no shim): active-mode upload (IPv4)"
  ftp_judge pp-up up "FTP control (no shim): passive-mode upload (IPv4)"
  ftp_judge pa-down down "FTP control (no shim): active-mode download (IPv4)"

  # Under the shim: first an active download per family, so that the
  # server namespace holds a cookie for the client (vsftpd's data connects
  # are then held), then everything else at once.
  ftp shim sa-warm4 down "$C4" "$S4" 2110
  ftp shim sa-warm6 down "$C6" "[$S6]" 2111
  ftp_judge sa-warm4 down "FTP vsftpd+curl under the shim: first active-mode download (IPv4)"
  ftp_judge sa-warm6 down "FTP vsftpd+curl under the shim: first active-mode download (IPv6)"
  for a in "$C4" "$C6"; do
    lab_check "FTP: the server namespace holds a TFO cookie for the client $a (vsftpd's active data connects are held)" \
      grep -q fo_cookie <<<"$(lab_s ip tcp_metrics show "$a" 2>/dev/null)"
  done
  pids=()
  ftp shim sa-up1 up "$C4" "$S4" 2110 & pids+=($!)
  ftp shim sa-up2 up "$C4" "$S4" 2110 & pids+=($!)
  ftp shim sa-up6 up "$C6" "[$S6]" 2111 & pids+=($!)
  ftp shim sp-up1 up - "$S4" 2110 & pids+=($!)
  ftp shim sp-up2 up - "$S4" 2110 & pids+=($!)
  ftp shim sa-down down "$C4" "$S4" 2110 & pids+=($!)
  ftp shim sp-down down - "$S4" 2110 & pids+=($!)
  wait "${pids[@]}"
  ftp_judge sa-up1 up "FTP vsftpd+curl under the shim: active-mode upload (IPv4), 1"
  ftp_judge sa-up2 up "FTP vsftpd+curl under the shim: active-mode upload (IPv4), 2"
  ftp_judge sa-up6 up "FTP vsftpd+curl under the shim: active-mode upload (IPv6)"
  ftp_judge sp-up1 up "FTP vsftpd+curl under the shim: passive-mode upload (IPv4), 1"
  ftp_judge sp-up2 up "FTP vsftpd+curl under the shim: passive-mode upload (IPv4), 2"
  ftp_judge sa-down down "FTP vsftpd+curl under the shim: active-mode download (IPv4), cookie held"
  ftp_judge sp-down down "FTP vsftpd+curl under the shim: passive-mode download (IPv4)"
else
  info "FTP: skipped (curl, vsftpd or the ftp user missing: scripts/deps programs)"
fi

# --- b. haproxy health checks ----------------------------------------------
if [ $have_haproxy = 1 ]; then
  # Backends: 8300 for haproxy under the shim, 8301 for the control.
  declare -A BE_PID
  for p in 8300 8301; do
    lab_s_bg "$ST" serve -p $p >"$LAB_DIR/be-$p.log" 2>&1
    BE_PID[$p]=$LAB_LAST_PID
  done
  lab_wait_port 8300 v4 && lab_wait_port 8301 v4 || exit 99
  # The client namespace's cookie for the backend's address, and the
  # backend seen accepting by the shim's cache (haproxy's own).
  for i in 1 2; do
    SHIM_CACHE=$LAB_DIR/cache-h shim_c timeout 10 "$ST" req "$S4" 8300 10 close >/dev/null 2>&1
  done
  lab_check "haproxy: the client namespace holds a TFO cookie for the backend $S4" \
    grep -q fo_cookie <<<"$(lab_c ip tcp_metrics show "$S4" 2>/dev/null)"
  for m in shim plain; do
    [ $m = shim ] && p=8300 || p=8301
    cat >"$LAB_DIR/haproxy-$m.cfg" <<CONF
global
  stats socket $LAB_DIR/haproxy-$m.sock level admin
defaults
  mode tcp
  timeout connect 1s
  timeout client 5s
  timeout server 5s
  timeout check 1s
listen lb
  bind 127.0.0.1:$((9000 + p - 8300))
  server be1 $S4:$p check inter 200ms fall 1 rise 1
CONF
  done
  lab_c_bg env LD_PRELOAD="$SHIM_PRELOAD" LIBTFO_CACHE="$LAB_DIR/cache-h" \
    haproxy -db -f "$LAB_DIR/haproxy-shim.cfg" >"$LAB_DIR/haproxy-shim.log" 2>&1
  lab_c_bg haproxy -db -f "$LAB_DIR/haproxy-plain.cfg" >"$LAB_DIR/haproxy-plain.log" 2>&1
  # The watcher reads haproxy's stats socket every 10 ms: waits (5 s) for
  # UP, checks that it stays UP for 1 s, kills the backend, and times
  # DOWN (up to 3 s).
  cat >"$LAB_DIR/watch.py" <<'PY'
import os, signal, socket, sys, time
sock, pid = sys.argv[1], int(sys.argv[2])
def state():
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(sock)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
    except OSError:
        return "nosocket"
    for line in data.decode(errors="replace").splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "lb" and f[1] == "be1":
            return f[17].split(" ")[0]
    return "?"
t0 = time.monotonic()
st = state()
while st != "UP" and time.monotonic() - t0 < 5:
    time.sleep(0.01)
    st = state()
print("up_ms=%.0f state=%s" % ((time.monotonic() - t0) * 1000, st))
if st != "UP":
    sys.exit(0)
t1 = time.monotonic()
seen = set()
while time.monotonic() - t1 < 1:
    seen.add(state())
    time.sleep(0.01)
print("while_alive=%s" % ",".join(sorted(seen)))
os.kill(pid, signal.SIGTERM)
t2 = time.monotonic()
st = state()
while st != "DOWN" and time.monotonic() - t2 < 3:
    time.sleep(0.01)
    st = state()
print("down_ms=%.0f final=%s" % ((time.monotonic() - t2) * 1000, st))
PY
  "$PY" "$LAB_DIR/watch.py" "$LAB_DIR/haproxy-shim.sock" "${BE_PID[8300]}" >"$LAB_DIR/watch-shim" 2>&1 &
  w1=$!
  "$PY" "$LAB_DIR/watch.py" "$LAB_DIR/haproxy-plain.sock" "${BE_PID[8301]}" >"$LAB_DIR/watch-plain" 2>&1 &
  w2=$!
  wait $w1 $w2
  for m in shim plain; do
    f=$LAB_DIR/watch-$m
    [ $m = shim ] && tag="haproxy under the shim" || tag="haproxy control (no shim)"
    lab_check "$tag: the live backend is marked UP (after $(lab_kv up_ms "$f") ms: $(lab_kv state "$f"))" \
      test "$(lab_kv state "$f")" = UP
    lab_check "$tag: it stays UP for 1 s while alive (states seen: $(lab_kv while_alive "$f"))" \
      test "$(lab_kv while_alive "$f")" = UP
    d=$(lab_kv down_ms "$f")
    lab_check "$tag: the killed backend is marked DOWN within $DOWN_BOUND_MS ms (check inter 200 ms; ${d:+after $d ms: }$(lab_kv final "$f"))" \
      test "$(lab_kv final "$f")" = DOWN -a "${d:-99999}" -le "$DOWN_BOUND_MS"
  done
else
  info "haproxy: skipped (haproxy or python3 missing: scripts/deps programs)"
fi

# --- c. nc -z -----------------------------------------------------------
if [ $have_nc = 1 ]; then
  lab_s_bg "$ST" serve -p 8400 >"$LAB_DIR/nc-8400.log" 2>&1
  lab_s_bg "$ST" serve -6 -p 8400 >"$LAB_DIR/nc6-8400.log" 2>&1
  lab_s_bg "$ST" serve -p 8402 >"$LAB_DIR/nc-8402.log" 2>&1
  stop4=$LAB_LAST_PID
  lab_s_bg "$ST" serve -6 -p 8402 >"$LAB_DIR/nc6-8402.log" 2>&1
  stop6=$LAB_LAST_PID
  lab_wait_port 8400 v4 && lab_wait_port 8400 v6 && lab_wait_port 8402 v4 &&
    lab_wait_port 8402 v6 || exit 99
  # Cookies and "seen accepting", with this part's own cache.
  export SHIM_CACHE=$LAB_DIR/cache-nc
  for h in "$S4" "$S6"; do
    for p in 8400 8402; do
      shim_c timeout 10 "$ST" req "$h" $p 10 close >/dev/null 2>&1
      shim_c timeout 10 "$ST" req "$h" $p 11 close >/dev/null 2>&1
    done
  done
  # nc3 MODE HOST PORT: the exit statuses of 3 runs.
  nc3() {
    local rcs='' rc i
    for i in 1 2 3; do
      rc=0
      if [ "$1" = shim ]; then
        shim_c timeout 10 nc -z "$2" "$3" >/dev/null 2>&1 || rc=$?
      else
        lab_c timeout 10 nc -z "$2" "$3" >/dev/null 2>&1 || rc=$?
      fi
      rcs="$rcs $rc"
    done
    echo "${rcs# }"
  }
  for fam in 4 6; do
    [ $fam = 4 ] && h=$S4 || h=$S6
    for m in shim plain; do
      [ $m = shim ] && off=0 || off=100
      r=$(nc3 $m "$h" 8400)
      lab_check "nc -z ($m, IPv$fam): an open port, 3 runs: open every time (exit status: $r)" \
        test "$r" = "0 0 0"
      r=$(nc3 $m "$h" $((8410 + off)))
      lab_check "nc -z ($m, IPv$fam): a closed port on a host with a cookie, 3 runs: closed every time (exit status: $r)" \
        test "$r" = "1 1 1"
    done
  done
  kill "$stop4" "$stop6" 2>/dev/null
  wait "$stop4" "$stop6" 2>/dev/null
  for fam in 4 6; do
    [ $fam = 4 ] && h=$S4 || h=$S6
    r=$(nc3 shim "$h" 8402)
    lab_check "nc -z (shim, IPv$fam): a port seen accepting, then stopped, 3 runs: open at most once, the first time (exit status: $r)" \
      eval '[ "$r" = "1 1 1" ] || [ "$r" = "0 1 1" ]'
    r=$(nc3 plain "$h" 8402)
    lab_check "nc -z (plain, IPv$fam): the stopped port, 3 runs: closed every time (exit status: $r)" \
      test "$r" = "1 1 1"
  done
else
  info "nc -z: skipped (netcat-openbsd missing: scripts/deps programs)"
fi

ms=$((($(date +%s%N) - t_start) / 1000000))
info "took $ms ms"
lab_finish
