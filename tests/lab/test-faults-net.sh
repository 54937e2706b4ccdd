#!/bin/bash
# Network faults (issue: hardening, the fault matrix), for every entry
# point -- the blocking API (tfo-client), the event-loop API (tfo-epoll),
# libtfo-uv (uv-client) and the preload shim (python3) -- over IPv4 and IPv6:
#
#  A. A peer that resets (lab-server -r), 20 ms RTT: after reading part of a
#     2 MB request (the client is still sending), after reading a whole
#     request (the client waits for the answer), and at once on accept
#     (the RST right behind the SYN-ACK that acked the SYN's data). For a
#     TFO connection and a plain one. Each call must fail promptly (an
#     error, or no answer), leak no descriptor, reach the server once (no
#     plain retry that delivers the request again), and the negative cache
#     must not blame TFO: every later connection still carries its data in
#     the SYN, and the entry stays data-acked.
#  B. A route that disappears mid-connect, 200 ms RTT, the SYN in flight:
#     the server's link goes down (the SYN and the racing plain SYN are
#     lost), then comes back in time: the call succeeds, bounded, and the
#     cache does not record a TFO blackhole. Not back in time (the client's
#     route deleted too): the caller's timeout ends the call with ETIMEDOUT,
#     nothing cached. No route before the SYN leaves (the API; the shim with
#     a held SYN): a prompt error. After each, the next call works with TFO.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/api.sh"
. "$here/shim.sh"
lab_require
EPOLL=$top_builddir/examples/tfo-epoll
UVC=$top_builddir/examples/uv-client
TFOCTL=$top_builddir/tools/tfoctl
[ -x "$UVC" ] || { echo "SKIP: uv-client not built (no libuv)"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: no $PY"; exit 77; }

# The shim's client: a blocking socket (the first write runs libtfo's
# connect machine). Args: HOST PORT SIZE WARM_PORT [GO_FILE [HOLD_S
# [WAIT_FILE]]].
# A first connection to WARM_PORT opens the shim's cache file, so that the
# descriptor count compares like with like. GO_FILE is created right
# before the first write, or with HOLD_S right after connect, before
# HOLD_S seconds of running pass (the SYN is held meanwhile). With WAIT_FILE, GO_FILE
# is created after the warm-up, and the connect waits (at most 10 s) until
# WAIT_FILE exists. Prints resp="..." or error=ERRNO, ms=, fds_leaked=.
PYC='
import errno, os, socket, sys, time
host, port, size, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
go = sys.argv[5] if len(sys.argv) > 5 else ""
hold = float(sys.argv[6]) if len(sys.argv) > 6 else 0
wait = sys.argv[7] if len(sys.argv) > 7 else ""
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
w = socket.create_connection((host, warm), timeout=5)
w.sendall(b"w\n"); w.recv(100); w.close()
import resource
# The shim keeps its own descriptors (the keeper epoll set and eventfd, the
# anchor of a held socket until its handshake ends) at min(1024, soft
# limit / 2) and above: only those of the program are counted.
top = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2)
def nfds():  # sockets and pipes below the shim descriptors
    d = "/proc/self/fd"
    n = 0
    for f in os.listdir(d):
        try:
            n += int(f) < top and os.readlink(d + "/" + f).startswith(("socket:", "pipe:"))
        except OSError:
            pass
    return n
n0 = nfds()
if wait:
    open(go, "w").close()
    end = time.monotonic() + 10
    while not os.path.exists(wait) and time.monotonic() < end:
        time.sleep(0.01)
s = socket.socket(fam, socket.SOCK_STREAM)
t = time.monotonic()
try:
    s.connect((host, port))
    if go and not wait:
        open(go, "w").close()
    # Busy, as a program on its way to its first write: the shim keeps
    # the SYN held while the thread runs (at most 500 ms after connect).
    end = time.monotonic() + hold
    while time.monotonic() < end:
        pass
    t = time.monotonic()
    s.sendall(b"x" * (size - 1) + b"\n")
    res = "resp=\"%s\"" % s.recv(100).decode().strip()
except OSError as e:
    res = "error=%s" % errno.errorcode.get(e.errno, str(e.errno))
ms = (time.monotonic() - t) * 1000
s.close()
print(res, "ms=%.1f" % ms, "fds_leaked=%d" % (nfds() - n0))
'

# Server log bookkeeping: connections so far, and the new ones since N.
nconn() { grep -c '^conn=' "$1" || true; }
new_lines() { grep '^conn=' "$1" | tail -n +"$(($2 + 1))"; }

# check_server LABEL LOG N0 WANT SYN_DATA: WANT new connections since N0,
# each with syn_data=SYN_DATA (1: TFO still used, 0: a plain connection).
check_server() {
  local label=$1 log=$2 n0=$3 want=$4 sd=$5 got bad i
  for ((i = 0; i < 20; i++)); do # the server's children log on their own
    [ "$(( $(nconn "$log") - n0 ))" -ge "$want" ] && break
    sleep 0.05
  done
  got=$(( $(nconn "$log") - n0 ))
  lab_check_range "$label: connections the server saw (no retry)" "$got" "$want" "$want"
  bad=$(new_lines "$log" "$n0" | grep -vc "syn_data=$sd" || true)
  lab_check "$label: every one with syn_data=$sd" test "$bad" = 0
}

# cache_ok LABEL HOST PORT: the negative cache (read by tfoctl, no
# connection made) does not blame TFO for HOST PORT.
cache_ok() {
  local label=$1 host=$2 port=$3 out
  out=$(lab_c "$TFOCTL" --cache "$LAB_DIR/cache" cache list 2>&1 || true)
  out=$(grep -F -- "$host" <<<"$out" | grep -F -- "$port" || true)
  if [ -n "$out" ] && ! grep -Eqi 'blackhole|reset|skip' <<<"$out"; then
    lab_pass "$label: cache entry $(tr -s ' ' <<<"$out")"
  else
    lab_fail "$label: cache entry '$out' (want one, not blackhole/reset/skip)"
  fi
}

# ======================================================================
# A. A peer that resets.
lab_up --rtt 20 || exit 99
cat >"$LAB_DIR/c.py" <<<"$PYC"
declare -A RPORT=([mid]=1 [req]=2 [acc]=3)
declare -A RARG=([mid]=100000 [req]=300 [acc]=0)
declare -A RSIZE=([mid]=2000000 [req]=300 [acc]=300)
declare -A RWHAT=([mid]="reset while the client sends 2 MB"
                  [req]="reset after the request, client waiting"
                  [acc]="reset at once on accept")
for fam in 4 6; do
  base=$((8240 + (fam - 4) * 10))
  if [ "$fam" = 4 ]; then ip=$LAB_S_IP4; f6=; else ip=$LAB_S_IP6; f6=-6; fi
  lab_server_bg $f6 -p "$base" >"$LAB_DIR/ok$fam.log"
  for m in mid req acc; do
    lab_server_bg $f6 -p $((base + RPORT[$m])) -r "${RARG[$m]}" \
      >"$LAB_DIR/r$fam-$m.log"
  done
done
for fam in 4 6; do
  base=$((8240 + (fam - 4) * 10))
  lab_wait_port "$base" "v$fam" || exit 99
  lab_wait_port $((base + 3)) "v$fam" || exit 99
done

for fam in 4 6; do
  base=$((8240 + (fam - 4) * 10))
  if [ "$fam" = 4 ]; then ip=$LAB_S_IP4; else ip=$LAB_S_IP6; fi
  api_client "$ip" "$base" >/dev/null # a cookie
  for m in mid req acc; do
    port=$((base + RPORT[$m]))
    log=$LAB_DIR/r$fam-$m.log
    size=${RSIZE[$m]}
    L="A v$fam ${RWHAT[$m]}"

    # The blocking API, a TFO connection.
    n0=$(nconn "$log")
    out=$(api_client -L -K -T 5000 -s "$size" "$ip" "$port" || true)
    line=$(head -n 1 <<<"$out")
    echo "$L: api: $line"
    if [ "$m" = mid ]; then
      lab_check "$L: api: the call fails with ECONNRESET/EPIPE" \
        grep -Eq '^error=(Connection reset by peer|Broken pipe) ' <<<"$line"
    else
      # Either the call sees the RST, or it returns and the read does.
      lab_check "$L: api: an error or no answer" \
        grep -Eq '^error=Connection reset by peer |resp=""$' <<<"$line"
    fi
    lab_check_range "$L: api: ms" "$(lab_field ms "$line")" 0 1000
    lab_check "$L: api: no fd leaked" grep -qx 'fds_leaked=0' <<<"$out"
    lab_check "$L: api: cache still data-acked, no skip" \
      grep -qx 'cache=data-acked skip=0 failures=0 rtt_us=[0-9]*' <<<"$out"
    check_server "$L: api" "$log" "$n0" 1 1

    # The blocking API, a plain connection (no cookie: cookie request).
    lab_c ip tcp_metrics flush all
    n0=$(nconn "$log")
    out=$(api_client -L -K -T 5000 -s "$size" "$ip" "$port" || true)
    line=$(head -n 1 <<<"$out")
    echo "$L: api plain: $line"
    lab_check "$L: api plain: an error or no answer" \
      grep -Eq '^error=(Connection reset by peer|Broken pipe) |resp=""$' <<<"$line"
    lab_check_range "$L: api plain: ms" "$(lab_field ms "$line")" 0 1000
    lab_check "$L: api plain: no fd leaked" grep -qx 'fds_leaked=0' <<<"$out"
    lab_check "$L: api plain: cache not blaming TFO" \
      grep -Eqx 'cache=(cookie-granted|data-acked) skip=0 failures=0 rtt_us=[0-9]*' <<<"$out"
    check_server "$L: api plain" "$log" "$n0" 1 0
    api_client "$ip" "$base" >/dev/null # the cookie again, if it went

    # The event-loop API: 2 connections at once on one epoll loop.
    n0=$(nconn "$log")
    out=$(lab_c env LIBTFO_CACHE="$LAB_DIR/cache" timeout 10 "$EPOLL" \
      -n 2 -s "$size" -T 5000 -W 3000 "$ip" "$port" || true)
    sum=$(grep '^summary' <<<"$out" || true)
    echo "$L: epoll: $(grep -c ' error=' <<<"$out" || true) errors: $(grep ' error=' <<<"$out" | head -n 1)"
    lab_check "$L: epoll: both end in an error, no fallback" \
      grep -q 'conns=2 ok=0 errors=2 .*fallback=0 skipped=0' <<<"$sum"
    lab_check "$L: epoll: the errors are resets" \
      test "$(grep -Ec ' error=(Connection reset by peer|Broken pipe) ' <<<"$out")" = 2
    lab_check_range "$L: epoll: ms" "$(lab_field total_ms "$sum")" 0 1000
    check_server "$L: epoll" "$log" "$n0" 2 1

    # libtfo-uv: 2 connections at once.
    n0=$(nconn "$log")
    out=$(lab_c env LIBTFO_CACHE="$LAB_DIR/cache" timeout 10 "$UVC" \
      -v -n 2 -c 2 -s "$size" -T 5000 "$ip" "$port" || true)
    sum=$(grep '^requests=' <<<"$out" || true)
    echo "$L: uv: $(grep '^req=' <<<"$out" | head -n 1)"
    lab_check "$L: uv: both fail, no fallback" \
      grep -q 'requests=2 ok=0 failed=2 .*fallback=0 skipped=0' <<<"$sum"
    # Each either fails to connect with the reset or gets no answer.
    lab_check "$L: uv: a reset or no answer, each" test "$(grep -Ec \
      '^req=.* (status=(ECONNRESET|EPIPE) .*|status=ok .*resp="")$' <<<"$out")" = 2
    lab_check_range "$L: uv: wall ms" "$(lab_field wall_ms "$sum")" 0 1000
    check_server "$L: uv" "$log" "$n0" 2 1

    # The shim: a blocking python3 socket.
    n0=$(nconn "$log")
    out=$(shim_c timeout 10 "$PY" "$LAB_DIR/c.py" "$ip" "$port" "$size" "$base" || true)
    echo "$L: shim: $out"
    if [ "$m" = mid ]; then
      lab_check "$L: shim: ECONNRESET/EPIPE" grep -Eq '^error=(ECONNRESET|EPIPE) ' <<<"$out"
    else
      lab_check "$L: shim: ECONNRESET/EPIPE or no answer" \
        grep -Eq '^(error=(ECONNRESET|EPIPE)|resp="") ' <<<"$out"
    fi
    lab_check_range "$L: shim: ms" "$(lab_field ms "$out")" 0 1000
    lab_check "$L: shim: no fd leaked" grep -q 'fds_leaked=0$' <<<"$out"
    check_server "$L: shim" "$log" "$n0" 1 1
    cache_ok "$L: after all entry points" "$ip" "$port"
  done
done
lab_down

# ======================================================================
# B. A route that disappears mid-connect.
lab_up --rtt 200 || exit 99
cat >"$LAB_DIR/c.py" <<<"$PYC"
# IPv6 addresses (and so their routes) come back with the link.
lab_c sysctl -qw net.ipv6.conf.veth0.keep_addr_on_down=1
lab_s sysctl -qw net.ipv6.conf.veth0.keep_addr_on_down=1
lab_server_bg -p 8250 >"$LAB_DIR/b4.log"
lab_server_bg -6 -p 8270 >"$LAB_DIR/b6.log"
lab_wait_port 8250 v4 || exit 99
lab_wait_port 8270 v6 || exit 99

syn_sent() {
  [ -n "$(lab_c ss -Htn state syn-sent "dport = :$1" 2>/dev/null)" ]
}
# Start CMD in the client namespace (bounded by timeout), output to
# $LAB_DIR/out; then wait (bounded) until its SYN left for PORT, or until
# the file GO exists.
start_and_wait() {
  local port=$1 go=$2
  shift 2
  rm -f "$LAB_DIR/out" "$go"
  lab_c_bg timeout 10 env LIBTFO_CACHE="$LAB_DIR/cache" "$@" >"$LAB_DIR/out" 2>&1
  BG=$LAB_LAST_PID
  if [ -n "$go" ]; then
    _lab_until 300 0.01 test -e "$go" || lab_fail "B: the shim client did not start"
  else
    _lab_until 300 0.01 syn_sent "$port" || lab_fail "B: no SYN to port $port"
  fi
}
# Waits for it (in this shell: a subshell cannot wait), sets out.
finish_bg() {
  wait "$BG" || true
  out=$(cat "$LAB_DIR/out")
}

s_down() { lab_s ip link set veth0 down; }
s_up() { lab_s ip link set veth0 up; }
c_route_del() {
  if [ "$1" = 4 ]; then lab_c ip route del 198.18.0.0/24 dev veth0
  else lab_c ip -6 route del 2001:2::/64 dev veth0; fi
}
c_route_add() {
  if [ "$1" = 4 ]; then lab_c ip route replace 198.18.0.0/24 dev veth0 src "$LAB_C_IP4"
  else lab_c ip -6 route replace 2001:2::/64 dev veth0; fi
}

# next_call LABEL HOST PORT: after a fault, the next call uses TFO again.
next_call() {
  local out
  out=$(api_client -L -K -T 3000 -s 100 "$2" "$3" || true)
  api_expect "$1: the next call" "$(head -n 1 <<<"$out")" data-acked 150 1000 100
  lab_check "$1: cache data-acked, no skip" \
    grep -qx 'cache=data-acked skip=0 failures=0 rtt_us=[0-9]*' <<<"$out"
}

for fam in 4 6; do
  if [ "$fam" = 4 ]; then ip=$LAB_S_IP4; port=8250; else ip=$LAB_S_IP6; port=8270; fi
  log=$LAB_DIR/b$fam.log
  api_client "$ip" "$port" >/dev/null # a cookie
  api_client "$ip" "$port" >/dev/null

  # B1: the server's link is down when the SYN leaves and comes back
  # 0.75 s after it was seen: the TFO SYN and the plain one racing it
  # (-F 300; the shim's 3 RTTs, 600 ms) are lost; the kernel's
  # retransmission at 1 s gets through. Down before the SYN, not after
  # it is seen: on a loaded machine that came after the handshake.
  for ep in api epoll uv shim; do
    L="B1 v$fam server link down for the SYN: $ep"
    [ $ep = shim ] || s_down
    case $ep in
    api) start_and_wait "$port" "" "$TFO_CLIENT" -L -K -F 300 -T 4000 -s 300 "$ip" "$port" ;;
    epoll) start_and_wait "$port" "" "$EPOLL" -n 2 -s 300 -F 300 -T 4000 "$ip" "$port" ;;
    uv) start_and_wait "$port" "" "$UVC" -v -n 2 -c 2 -s 300 -F 300 -T 4000 "$ip" "$port" ;;
    shim)
      # The shim races a plain connect 3 RTTs after the SYN (the cache's
      # RTT). The runs above may have left a slow sample in it; from one
      # clean handshake the race falls inside the outage, as -F 300 does.
      lab_c "$TFOCTL" --cache "$LAB_DIR/cache" cache forget "$ip" >/dev/null
      api_client "$ip" "$port" >/dev/null
      # Warmed up with the link up; connects once it is down.
      rm -f "$LAB_DIR/down"
      start_and_wait "$port" "$LAB_DIR/go" env LD_PRELOAD="$SHIM_PRELOAD" \
            "$PY" "$LAB_DIR/c.py" "$ip" "$port" 300 "$port" "$LAB_DIR/go" 0 "$LAB_DIR/down"
      s_down
      touch "$LAB_DIR/down"
      _lab_until 300 0.01 syn_sent "$port" || lab_fail "$L: no SYN" ;;
    esac
    sleep 0.75
    s_up
    finish_bg
    echo "$L: $(grep -E '^(outcome|error|conn|req|resp|summary|requests)' <<<"$out" | head -n 1)"
    case $ep in
    api)
      line=$(grep -E '^(outcome|error)=' <<<"$out" | head -n 1)
      lab_check "$L: answered" grep -q 'resp="OK 300"' <<<"$line"
      lab_check_range "$L: ms" "$(lab_field ms "$line")" 900 3000
      lab_check "$L: no fd leaked" grep -qx 'fds_leaked=0' <<<"$out"
      lab_check "$L: not cached as a blackhole" \
        grep -Eqx 'cache=(data-acked|cookie-granted) skip=0 failures=0 rtt_us=[0-9]*' <<<"$out" ;;
    epoll)
      sum=$(grep '^summary' <<<"$out" || true)
      lab_check "$L: both answered" grep -q 'conns=2 ok=2 errors=0' <<<"$sum"
      lab_check_range "$L: ms" "$(lab_field total_ms "$sum")" 900 3000 ;;
    uv)
      sum=$(grep '^requests=' <<<"$out" || true)
      lab_check "$L: both answered" grep -q 'requests=2 ok=2 failed=0' <<<"$sum"
      lab_check_range "$L: ms" "$(lab_field wall_ms "$sum")" 900 3000 ;;
    shim)
      line=$(grep -E '^(resp|error)=' <<<"$out" | head -n 1)
      lab_check "$L: answered" grep -q '^resp="OK 300"' <<<"$line"
      lab_check_range "$L: ms" "$(lab_field ms "$line")" 900 3000
      lab_check "$L: no fd leaked" grep -q 'fds_leaked=0$' <<<"$line" ;;
    esac
    cache_ok "$L" "$ip" "$port"
  done
  next_call "B1 v$fam" "$ip" "$port"

  # B1b: the link comes back later, about 1.15 s after the SYN: between
  # the TFO SYN's retransmission (1 s, lost too) and the racing plain
  # SYN's (1.3 s), which wins (fallback). Every SYN was lost for a while,
  # not only TFO's: no blackhole. (How a slow machine met B1.) Earlier or
  # later, TFO's retransmission wins instead: the same checks hold.
  L="B1b v$fam link back between the SYN timers: api"
  s_down
  start_and_wait "$port" "" "$TFO_CLIENT" -L -K -F 300 -T 4000 -s 300 "$ip" "$port"
  sleep 1.15
  s_up
  finish_bg
  line=$(grep -E '^(outcome|error)=' <<<"$out" | head -n 1)
  echo "$L: $line"
  lab_check "$L: answered" grep -q 'resp="OK 300"' <<<"$line"
  lab_check_range "$L: ms" "$(lab_field ms "$line")" 900 3500
  lab_check "$L: no fd leaked" grep -qx 'fds_leaked=0' <<<"$out"
  lab_check "$L: not cached as a blackhole" \
    grep -Eqx 'cache=(data-acked|cookie-granted) skip=0 failures=0 rtt_us=[0-9]*' <<<"$out"
  cache_ok "$L" "$ip" "$port"
  next_call "B1b v$fam" "$ip" "$port"

  # B2: the same, and the client's route to the server deleted once the
  # SYN is out: not back within the caller's 2 s timeout. The racing
  # connect finds no route (or, on a slow machine, a link still down).
  for ep in api epoll uv; do
    L="B2 v$fam route gone for good: $ep"
    s_down
    case $ep in
    api) start_and_wait "$port" "" "$TFO_CLIENT" -L -K -F 300 -T 2000 -s 300 "$ip" "$port" ;;
    epoll) start_and_wait "$port" "" "$EPOLL" -n 2 -s 300 -F 300 -T 2000 "$ip" "$port" ;;
    uv) start_and_wait "$port" "" "$UVC" -v -n 2 -c 2 -s 300 -F 300 -T 2000 "$ip" "$port" ;;
    esac
    c_route_del "$fam"
    finish_bg
    s_up
    c_route_add "$fam"
    echo "$L: $(grep -E '^(error|conn|req)' <<<"$out" | head -n 1)"
    case $ep in
    api)
      line=$(grep -E '^(outcome|error)=' <<<"$out" | head -n 1)
      lab_check "$L: ETIMEDOUT" grep -q '^error=Connection timed out ' <<<"$line"
      lab_check_range "$L: ms" "$(lab_field ms "$line")" 1900 2600
      lab_check "$L: no fd leaked" grep -qx 'fds_leaked=0' <<<"$out" ;;
    epoll)
      lab_check "$L: ETIMEDOUT, both" \
        test "$(grep -c ' error=Connection timed out ' <<<"$out")" = 2
      lab_check_range "$L: ms" "$(lab_field total_ms "$(grep '^summary' <<<"$out")")" 1900 2600 ;;
    uv)
      lab_check "$L: ETIMEDOUT, both" \
        test "$(grep -c '^req=.* status=ETIMEDOUT ' <<<"$out")" = 2
      lab_check_range "$L: ms" "$(lab_field wall_ms "$(grep '^requests=' <<<"$out")")" 1900 2600 ;;
    esac
    cache_ok "$L" "$ip" "$port"
  done
  next_call "B2 v$fam, route back" "$ip" "$port"

  # B3: no route when the SYN would leave. The API: at once. The shim,
  # its SYN held since connect() (cookie): at the first write.
  c_route_del "$fam"
  line=$(api_client -L -T 2000 -s 300 "$ip" "$port" | head -n 1 || true)
  c_route_add "$fam"
  echo "B3 v$fam no route: api: $line"
  lab_check "B3 v$fam no route: api: ENETUNREACH" grep -q '^error=Network is unreachable ' <<<"$line"
  lab_check_range "B3 v$fam no route: api: ms" "$(lab_field ms "$line")" 0 100
  # Cut while the client is in its 0.4 s hold: connect() done, the SYN
  # held (the client runs meanwhile: a sleeping one has its SYN released
  # when the 25 ms grace ends).
  start_and_wait "$port" "$LAB_DIR/go" env LD_PRELOAD="$SHIM_PRELOAD" \
    "$PY" "$LAB_DIR/c.py" "$ip" "$port" 300 "$port" "$LAB_DIR/go" 0.4
  c_route_del "$fam"
  finish_bg
  c_route_add "$fam"
  echo "B3 v$fam no route: shim, held SYN: $out"
  lab_check "B3 v$fam no route: shim: an error at the first write" \
    grep -Eq '^error=(ECONNABORTED|ENETUNREACH|EHOSTUNREACH|EPIPE) ' <<<"$out"
  lab_check_range "B3 v$fam no route: shim: ms" "$(lab_field ms "$out")" 0 100
  lab_check "B3 v$fam no route: shim: no fd leaked" grep -q 'fds_leaked=0$' <<<"$out"
  cache_ok "B3 v$fam" "$ip" "$port"
  next_call "B3 v$fam, route back" "$ip" "$port"

  # B4: every SYN to the port dropped, and a blocking program that bounds
  # its calls with SO_SNDTIMEO (lab-client -t 600): the shim's race must
  # not outlast that bound, with a cookie (the held SYN leaves at the first
  # write) or without (connect asks for one). Without the bound it waits
  # for the kernel's SYN retries, until lab-client's own alarm at 3.2 s.
  if [ "$fam" = 6 ]; then ipt=ip6tables; else ipt=iptables; fi
  lab_s "$ipt" -I INPUT -p tcp --dport "$port" -j DROP
  for cookie in yes no; do
    [ $cookie = no ] && lab_c ip tcp_metrics flush all
    t0=$(date +%s%3N)
    out=$(shim_c timeout 10 "$LAB_BIN/lab-client" -m plain -t 600 -s 300 "$ip" "$port" 2>/dev/null || true)
    t1=$(date +%s%3N)
    echo "B4 v$fam all SYNs dropped, cookie $cookie: $out ($((t1 - t0)) ms)"
    lab_check "B4 v$fam SO_SNDTIMEO, cookie $cookie: the call timed out" \
      grep -Eq 'error=(connect:EINPROGRESS|write:EAGAIN|read:EAGAIN)' <<<"$out"
    lab_check_range "B4 v$fam SO_SNDTIMEO, cookie $cookie: ms" "$((t1 - t0))" 500 1900
  done
  lab_s "$ipt" -D INPUT -p tcp --dport "$port" -j DROP
  api_client "$ip" "$port" >/dev/null # a cookie again
  next_call "B4 v$fam, path back" "$ip" "$port"
done

lab_finish
