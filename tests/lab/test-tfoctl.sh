#!/bin/bash
# test-tfoctl.sh: every tfoctl subcommand in the lab (10 ms RTT), its
# --json, its exit codes, and its refusal of bad input (exit 2, a message,
# nothing changed).
#
#   status   the sysctl bits in words, blackhole timeout, key, features
#   enable   sets bits (others kept), --persist into a temporary sysctl.d
#   stats    the TFO counters match /proc/net/netstat; --watch shows a move
#   cookies  list shows the cookie; flush ADDR makes the next connection ask
#            for a cookie again (client_fail=1, CookieReqd +1), IPv4 and v6
#   cache    libtfo's negative cache: list, forget ADDR[:PORT], clear
#   probe    tells apart a TFO server, a server without TFO, a blackhole
#            path and a strip path (lab_mode strip with a cookie held; and
#            a box stripping option 34 only, told by raw SYNs), over IPv4
#            and IPv6, and resolves names
#   monitor  a listener's TFO queue (qlen 2) overflowed by 100 TFO
#            connections at once: one line per interval on stderr and to a
#            syslog socket of the test's own (--syslog-socket), saying what
#            to do; bad options refused
#   enable --after-uptime
#            with a fake uptime file: --no-wait says "not yet" (exit 4),
#            nothing changed; without it, waits until the uptime is reached,
#            then sets the server bit; bad input refused, nothing changed

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require

H=$LAB_BIN/listen-helper
CTL=${top_builddir:-$LAB_BIN/../..}/tools/tfoctl
for b in "$H" "$CTL"; do
  [ -x "$b" ] || { echo "SKIP: $b is missing"; exit 77; }
done

lab_up --rtt 10 || exit 99
echo "lab: RTT 10 ms, $LAB_C -> $LAB_S"
SD=$LAB_DIR/sysctl.d
mkdir -p "$SD"
CACHE=$LAB_DIR/tfocache

ok() { eval "$1"; } # lab_check LABEL ok 'CMD && CMD'
fo() { lab_c cat /proc/sys/net/ipv4/tcp_fastopen; }

# run WANT_RC LABEL CMD...: PASS when CMD exits WANT_RC; output in $out,
# stderr in $err.
run() {
  local want=$1 label=$2 rc=0
  shift 2
  out=$("$@" 2>"$LAB_DIR/err") || rc=$?
  err=$(cat "$LAB_DIR/err")
  lab_check "$label: exit $rc (want $want)${err:+: ${err%%$'\n'*}}" [ "$rc" = "$want" ]
}

listener() { # NAME ARGS...
  local name=$1 i
  shift
  lab_s_bg "$H" -t 50 "$@" >"$LAB_DIR/$name.log" 2>"$LAB_DIR/$name.err"
  for ((i = 0; i < 100; i++)); do
    [ -s "$LAB_DIR/$name.log" ] && break
    sleep 0.05
  done
}

# --- the command line ------------------------------------------------------
run 0 "--help" "$CTL" --help
lab_check "--help lists every command" \
  ok 'for c in status enable stats monitor cookies key probe cache; do grep -q "^  $c" <<<"$out" || return 1; done'
run 0 "--version" "$CTL" --version
lab_check "--version names the library ($out)" grep -q '^tfoctl (libtfo) [0-9]' <<<"$out"
for c in status enable stats monitor cookies key probe cache; do
  run 0 "$c --help" "$CTL" "$c" --help
done
run 2 "no command" "$CTL"
run 2 "unknown command" "$CTL" frobnicate
run 2 "unknown option" "$CTL" --frob status
run 2 "--sysctl-dir without a directory" "$CTL" status --sysctl-dir

# --- status ------------------------------------------------------------------
run 0 "status --json (server namespace)" lab_s "$CTL" --json status
echo "  $out"
lab_check "status: tcp_fastopen 3 = client+server, blackhole off, features" \
  grep -q '^{"tcp_fastopen":3,"bits":\["client","server"\],"client":true,"server":true,"blackhole_timeout_sec":0,.*"tfo_child":true' <<<"$out"
run 0 "status (text)" lab_s "$CTL" status
lab_check "status text decodes the bits into words" \
  ok 'grep -q "^  server  *on " <<<"$out" && grep -q "^  server-all-listeners  *off" <<<"$out"'
run 2 "status with an argument" "$CTL" status extra

# --- enable ----------------------------------------------------------------
lab_c sh -c 'echo 1024 > /proc/sys/net/ipv4/tcp_fastopen'
run 0 "enable server (from 0x400)" lab_c "$CTL" enable server
lab_check "enable server: 1024 -> $(fo) (want 1026: the other bit kept)" [ "$(fo)" = 1026 ]
run 0 "enable (both) --persist --sysctl-dir" lab_c "$CTL" enable --persist --sysctl-dir "$SD"
lab_check "enable both: $(fo) (want 1027)" [ "$(fo)" = 1027 ]
lab_check "persisted: $(cat "$SD/60-libtfo-fastopen.conf" 2>/dev/null | tail -n 1), mode $(stat -c %a "$SD/60-libtfo-fastopen.conf")" \
  ok 'grep -qx "net.ipv4.tcp_fastopen = 1027" "$SD/60-libtfo-fastopen.conf" && [ "$(stat -c %a "$SD/60-libtfo-fastopen.conf")" = 644 ]'
run 0 "enable client --json (already on)" lab_c "$CTL" --json enable client
lab_check "enable client reports no change ($out)" \
  [ "$out" = '{"tcp_fastopen":1027,"was":1027,"changed":false,"persisted":false}' ]
lab_c sh -c 'echo 0 > /proc/sys/net/ipv4/tcp_fastopen'
run 2 "enable bogus" lab_c "$CTL" enable bogus
run 2 "enable client server" lab_c "$CTL" enable client server
run 2 "enable --frob" lab_c "$CTL" enable --frob
run 1 "enable --persist into a missing directory" \
  lab_c "$CTL" enable both --persist --sysctl-dir "$LAB_DIR/missing"
lab_check "after the refusals tcp_fastopen is still 0 ($(fo))" [ "$(fo)" = 0 ]
lab_c sh -c 'echo 3 > /proc/sys/net/ipv4/tcp_fastopen'

# --- stats, cookies ------------------------------------------------------------
listener v4 -p 8300
listener v6 -6 -p 8301
lab_wait_port 8300 v4 && lab_wait_port 8301 v6 || exit 99
lab_c "$CTL" cookies flush >/dev/null
for dst in "$LAB_S_IP4 8300" "$LAB_S_IP6 8301" "$LAB_S_IP4 8300"; do
  # shellcheck disable=SC2086
  lab_client -m tfo -s 20 $dst >/dev/null
done
run 0 "stats --json" lab_s "$CTL" --json stats
passive=$(sed -n 's/.*"TCPFastOpenPassive":\([0-9]*\).*/\1/p' <<<"$out")
lab_check "stats: TCPFastOpenPassive $passive = /proc/net/netstat's $(lab_counter s TCPFastOpenPassive)" \
  [ "$passive" = "$(lab_counter s TCPFastOpenPassive)" ]
run 0 "stats (text)" lab_s "$CTL" stats
lab_check "stats explains the counters" \
  ok 'grep -q "^TCPFastOpenPassiveAltKey .*backup key" <<<"$out" && grep -q "^TCPSynRetrans " <<<"$out" && grep -q "^TCPOrigDataSent " <<<"$out"'
lab_s_bg "$CTL" --json stats --watch --interval 0.3 --count 4 >"$LAB_DIR/watch.log"
wpid=$LAB_LAST_PID
sleep 0.4
lab_client -m tfo -s 20 "$LAB_S_IP4" 8300 >/dev/null
for ((i = 0; i < 60; i++)); do _lab_pid_alive "$wpid" || break; sleep 0.05; done
moved=$(sed -n 's/.*"delta":{.*"TCPFastOpenPassive":\([0-9]*\).*/\1/p' "$LAB_DIR/watch.log" | awk '{ s += $1 } END { print s + 0 }')
lab_check "stats --watch: $(wc -l <"$LAB_DIR/watch.log") samples (want 4), TCPFastOpenPassive moved by $moved (want 1)" \
  [ "$(wc -l <"$LAB_DIR/watch.log")/$moved" = 4/1 ]
run 2 "stats --interval 0" "$CTL" stats --watch --interval 0
run 2 "stats --count without --watch" "$CTL" stats --count 3
run 2 "stats extra" "$CTL" stats extra

run 0 "cookies list --json" lab_c "$CTL" --json cookies list
echo "  $out"
lab_check "cookies list has a cookie for $LAB_S_IP4 and $LAB_S_IP6" \
  ok 'grep -Eq "\"address\":\"$LAB_S_IP4\",[^}]*\"cookie\":\"[0-9a-f]{8,}\"" <<<"$out" &&
      grep -Eq "\"address\":\"$LAB_S_IP6\",[^}]*\"cookie\":\"[0-9a-f]{8,}\"" <<<"$out"'
run 0 "cookies (text)" lab_c "$CTL" cookies
lab_check "cookies text table" grep -q "^$LAB_S_IP4 .* [0-9a-f]\{16\} " <<<"$out"
for dst in "$LAB_S_IP4 8300 v4" "$LAB_S_IP6 8301 v6"; do
  set -- $dst
  run 0 "cookies flush $1" lab_c "$CTL" cookies flush "$1"
  reqd0=$(lab_counter s TCPFastOpenCookieReqd)
  line=$(lab_client -m tfo -s 20 "$1" "$2")
  lab_check "$3: after flush the next connection asks for a cookie again ($line), CookieReqd +$(( $(lab_counter s TCPFastOpenCookieReqd) - reqd0 ))" \
    [ "$(lab_field client_fail "$line")/$(lab_field syn_data "$line")/$(( $(lab_counter s TCPFastOpenCookieReqd) - reqd0 ))" = 1/0/1 ]
  line=$(lab_client -m tfo -s 20 "$1" "$2")
  lab_check "$3: and the one after carries data again (syn_data=$(lab_field syn_data "$line"))" \
    [ "$(lab_field syn_data "$line")" = 1 ]
done
run 1 "cookies flush of an address never seen" lab_c "$CTL" cookies flush 198.18.0.99
run 2 "cookies flush not-an-address" lab_c "$CTL" cookies flush not-an-address
run 2 "cookies flush ADDR:PORT (cookies are per address)" lab_c "$CTL" cookies flush "$LAB_S_IP4:80"
run 2 "cookies frob" lab_c "$CTL" cookies frob
run 2 "cookies list --frob" lab_c "$CTL" cookies list --frob
lab_check "after the refusals the cookie for $LAB_S_IP4 is still there" \
  ok 'lab_c "$CTL" --json cookies list | grep -q "\"address\":\"$LAB_S_IP4\""'
run 0 "cookies flush (all)" lab_c "$CTL" cookies flush
run 0 "cookies list after flush" lab_c "$CTL" --json cookies list
lab_check "nothing cached after flush ($out)" [ "$out" = "[]" ]

# --- cache: libtfo's negative cache --------------------------------------------
for dst in "$LAB_S_IP4 8300" "$LAB_S_IP4 8300" "$LAB_S_IP6 8301"; do
  # shellcheck disable=SC2086
  lab_c "$H" -c -C "$CACHE" $dst >/dev/null
done
lab_mode rstdata || exit 99
line=$(lab_c "$H" -c -C "$CACHE" "$LAB_S_IP4" 8300)
echo "  through a path that resets SYN data: $line"
lab_mode none || exit 99
run 0 "cache list --json" lab_c "$CTL" --json --cache "$CACHE" cache list
echo "  $out"
lab_check "cache list: $LAB_S_IP4:8300 skipped after the reset, [$LAB_S_IP6]:8301 fine" \
  ok 'grep -q "{\"destination\":\"$LAB_S_IP4:8300\",\"skip\":true,\"last\":\"reset\"" <<<"$out" &&
      grep -q "{\"destination\":\"\[$LAB_S_IP6\]:8301\",\"skip\":false" <<<"$out"'
run 0 "cache list (text)" lab_c env LIBTFO_CACHE="$CACHE" "$CTL" cache
lab_check "cache text names the file" grep -q "(cache: $CACHE)" <<<"$out"
run 0 "cache forget $LAB_S_IP4 (every port)" lab_c "$CTL" --cache "$CACHE" cache forget "$LAB_S_IP4"
run 1 "cache forget $LAB_S_IP4 again: nothing left" lab_c "$CTL" --cache "$CACHE" cache forget "$LAB_S_IP4"
run 2 "cache forget bogus" lab_c "$CTL" --cache "$CACHE" cache forget bogus
run 2 "cache forget without an address" lab_c "$CTL" --cache "$CACHE" cache forget
run 2 "cache clear extra" lab_c "$CTL" --cache "$CACHE" cache clear extra
run 2 "cache with a relative --cache" lab_c "$CTL" --cache relative/file cache list
run 2 "cache frob" lab_c "$CTL" --cache "$CACHE" cache frob
run 0 "cache list" lab_c "$CTL" --json --cache "$CACHE" cache list
lab_check "the v6 entry survived the refusals and the v4 forget ($out)" \
  ok 'grep -q "\[$LAB_S_IP6\]:8301" <<<"$out" && ! grep -q "\"$LAB_S_IP4:8300\"" <<<"$out"'
run 0 "cache forget [$LAB_S_IP6]:8301" lab_c "$CTL" --cache "$CACHE" cache forget "[$LAB_S_IP6]:8301"
lab_c "$H" -c -C "$CACHE" "$LAB_S_IP4" 8300 >/dev/null
run 0 "cache clear" lab_c "$CTL" --cache "$CACHE" cache clear
run 0 "cache list after clear" lab_c "$CTL" --json --cache "$CACHE" cache list
lab_check "empty after clear ($out)" [ "$out" = "[]" ]

# --- probe: TFO, no TFO, blackhole, strip ---------------------------------------
lab_server_bg -p 8302 -q 0 >"$LAB_DIR/notfo4.log"  # no TCP_FASTOPEN
lab_server_bg -6 -p 8303 -q 0 >"$LAB_DIR/notfo6.log"
lab_wait_port 8302 v4 && lab_wait_port 8303 v6 || exit 99
# probe WANT_RC WANT_VERDICT LABEL ARGS...
probe() {
  local want=$1 verdict=$2 label=$3 t0 ms
  shift 3
  t0=$(date +%s%N)
  run "$want" "probe $label" lab_c "$CTL" --json probe "$@"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "  $out"
  lab_check "probe $label: verdict $(sed -n 's/.*"verdict":"\([^"]*\)".*/\1/p' <<<"$out") (want $verdict), $ms ms" \
    grep -q "\"verdict\":\"$verdict\"" <<<"$out"
}
# A middlebox that strips option 34 only, not the experimental kind 254.
strip34() {
  lab_s iptables -w 5 -t mangle -A TFOLAB_MODE -p tcp --syn -j TCPOPTSTRIP --strip-options 34 &&
    lab_s ip6tables -w 5 -t mangle -A TFOLAB_MODE -p tcp --syn -j TCPOPTSTRIP --strip-options 34
}
for fam in 4 6; do
  if [ "$fam" = 4 ]; then tfo="$LAB_S_IP4:8300" no="$LAB_S_IP4:8302"
  else tfo="[$LAB_S_IP6]:8301" no="[$LAB_S_IP6]:8303"; fi
  lab_mode none
  probe 0 tfo "v$fam TFO server" --fresh "$tfo"
  lab_check "v$fam TFO server: cookie granted, data in SYN accepted" \
    grep -q '"cookie_granted":true,"syn_data_accepted":true' <<<"$out"
  lab_mode strip # 34 and 254 stripped; the cookie above is held
  probe 1 strip "v$fam strip path, cookie held" "$tfo"
  lab_mode none
  strip34 || exit 99
  probe 1 strip "v$fam path stripping option 34 only, no cookie (raw SYNs)" --fresh "$tfo"
  lab_check "  ... told by the raw SYNs" \
    grep -q '"raw_option34":"no-cookie","raw_experimental":"cookie"' <<<"$out"
  lab_mode none
  probe 1 no-tfo "v$fam server without TFO" --fresh "$no"
  lab_mode blackhole
  probe 1 blackhole "v$fam blackhole path" --fresh "$tfo"
done
lab_mode dropdata
probe 1 blackhole "v4 path dropping SYNs with data" --fresh "$LAB_S_IP4:8300"
lab_check "  ... after its cookie request passed" grep -q '"cookie_granted":true' <<<"$out"
lab_mode none
run 0 "probe (text) with -p and a cookie already cached" lab_c "$CTL" probe "$LAB_S_IP4" -p 8300
printf '%s\n' "$out" | sed 's/^/  /'
lab_check "probe text ends with the verdict" grep -q '^verdict: tfo: ' <<<"$out"
listener lo -a 127.0.0.1 -p 8304
run 0 "probe localhost:8304 (a name, resolved)" lab_s "$CTL" probe localhost:8304
lab_check "probe resolved localhost to 127.0.0.1" grep -q '^probe localhost (127.0.0.1:8304)' <<<"$out"
run 3 "probe a closed port" lab_c "$CTL" probe "$LAB_S_IP4:8399"
run 2 "probe without a host" "$CTL" probe
run 2 "probe port 0" "$CTL" probe "$LAB_S_IP4:0"
run 2 "probe port 70000" "$CTL" probe "$LAB_S_IP4" -p 70000
run 2 "probe [::1 (unclosed)" "$CTL" probe "[::1"
run 2 "probe port twice" "$CTL" probe "$LAB_S_IP4:80" -p 81
run 2 "probe --timeout 5" "$CTL" probe "$LAB_S_IP4" --timeout 5
run 2 "probe --data ''" "$CTL" probe "$LAB_S_IP4" --data ''
run 2 "probe two hosts" "$CTL" probe a b

# --- monitor: an overflowing TFO queue --------------------------------------
EPOLL=${top_builddir:-$LAB_BIN/../..}/examples/tfo-epoll
UVSRV=${top_builddir:-$LAB_BIN/../..}/examples/uv-server
PY=$(command -v python3 || true)
if [ -x "$UVSRV" ] && [ -x "$EPOLL" ] && [ -n "$PY" ]; then
  lab_s_bg "$UVSRV" -a "$LAB_S_IP4" -p 8310 -q 2 -b 4096 >"$LAB_DIR/uvq.log" 2>&1
  lab_wait_port 8310 v4 || exit 99
  # A syslog socket of our own: no daemon needed, nothing reaches the
  # system's log.
  SOCK=$LAB_DIR/log.sock
  lab_s_bg "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        try:
            f.write(s.recv(2048) + b"\n")
        except socket.timeout:
            break' "$SOCK" "$LAB_DIR/syslog.txt"
  for ((i = 0; i < 100; i++)); do [ -S "$SOCK" ] && break; sleep 0.05; done
  API_CACHE=$LAB_DIR/cache-overflow
  lab_c env LIBTFO_CACHE="$API_CACHE" "$EPOLL" -q -n 1 "$LAB_S_IP4" 8310 >/dev/null
  ov0=$(lab_counter s TCPFastOpenListenOverflow)
  lab_s_bg "$CTL" monitor --interval 1 --count 4 --syslog-socket "$SOCK" \
    >"$LAB_DIR/mon.out" 2>"$LAB_DIR/mon.err"
  mpid=$LAB_LAST_PID
  sleep 0.3
  for k in 1 2; do
    lab_c env LIBTFO_CACHE="$API_CACHE" "$EPOLL" -q -n 100 -S 7 "$LAB_S_IP4" 8310 >/dev/null || true
  done
  for ((i = 0; i < 200; i++)); do _lab_pid_alive "$mpid" || break; sleep 0.05; done
  ov=$(( $(lab_counter s TCPFastOpenListenOverflow) - ov0 ))
  sed 's/^/  /' "$LAB_DIR/mon.err"
  lines=$(grep -c 'TCPFastOpenListenOverflow +' "$LAB_DIR/mon.err" || true)
  sum=$(sed -n 's/.*TCPFastOpenListenOverflow +\([0-9]*\) .*/\1/p' "$LAB_DIR/mon.err" | awk '{ s += $1 } END { print s + 0 }')
  lab_check "monitor: the overflow ($ov) on stderr, at most one line per interval ($lines lines, counts add up to $sum)" \
    ok '[ "$ov" -ge 1 ] && [ "$lines" -ge 1 ] && [ "$lines" -le 3 ] && [ "$sum" = "$ov" ]'
  lab_check "monitor: the line says what to do" \
    grep -q 'TCPFastOpenListenOverflow +[0-9]* in 1s: .*raise the listener.s TFO queue: LIBTFO_QLEN / tfo_listen_opts.qlen' "$LAB_DIR/mon.err"
  lab_check "monitor: the same line reached the syslog socket, LOG_DAEMON|LOG_WARNING, ident tfoctl" \
    grep -q '^<28>tfoctl\[[0-9]*\]: TCPFastOpenListenOverflow +[0-9]* in 1s: ' "$LAB_DIR/syslog.txt"
else
  echo "(uv-server, tfo-epoll or python3 missing: monitor overflow not checked)"
fi
run 2 "monitor --interval 0" "$CTL" monitor --interval 0
run 2 "monitor --count 0" "$CTL" monitor --count 0
run 2 "monitor --syslog-socket relative" "$CTL" monitor --syslog-socket log.sock
run 2 "monitor --no-syslog --syslog-socket" "$CTL" monitor --no-syslog --syslog-socket /x
run 2 "monitor extra" "$CTL" monitor extra
run 0 "monitor --count 1 --no-syslog (returns at once)" "$CTL" monitor --count 1 --no-syslog

# --- enable --after-uptime ---------------------------------------------------
UP=$LAB_DIR/uptime
echo "10.00 15.00" >"$UP"
lab_c sh -c 'echo 1 > /proc/sys/net/ipv4/tcp_fastopen'
run 4 "enable server --after-uptime 60 --no-wait (up 10 s)" \
  lab_c "$CTL" enable server --after-uptime 60 --no-wait --uptime-file "$UP"
lab_check "not yet: says so, nothing changed (tcp_fastopen $(fo)) ($out)" \
  ok 'grep -q "^not yet: up 10.0 s" <<<"$out" && [ "$(fo)" = 1 ]'
run 4 "the same --json" lab_c "$CTL" --json enable server --after-uptime 60 --no-wait --uptime-file "$UP"
lab_check "--json: not_yet ($out)" grep -q '"not_yet":true' <<<"$out"
lab_c_bg "$CTL" enable server --after-uptime 12 --uptime-file "$UP" >"$LAB_DIR/wait.out" 2>&1
wpid=$LAB_LAST_PID
sleep 1.2
lab_check "waiting: still running, nothing changed yet (tcp_fastopen $(fo))" \
  ok '_lab_pid_alive "$wpid" && [ "$(fo)" = 1 ] && grep -q "^waiting" "$LAB_DIR/wait.out"'
echo "12.50 16.00" >"$UP"
for ((i = 0; i < 100; i++)); do _lab_pid_alive "$wpid" || break; sleep 0.05; done
rc=0; wait "$wpid" || rc=$?
lab_check "uptime reached: exit $rc, server bit set (tcp_fastopen $(fo))" \
  [ "$rc/$(fo)" = 0/3 ]
run 0 "--after-uptime already reached: at once" \
  lab_c "$CTL" enable server --after-uptime 5 --uptime-file "$UP"
lab_c sh -c 'echo 1 > /proc/sys/net/ipv4/tcp_fastopen'
run 2 "enable --after-uptime -1" lab_c "$CTL" enable server --after-uptime -1 --uptime-file "$UP"
run 2 "enable --after-uptime soon" lab_c "$CTL" enable server --after-uptime soon --uptime-file "$UP"
run 2 "enable --no-wait without --after-uptime" lab_c "$CTL" enable server --no-wait
run 2 "enable --after-uptime with --persist" \
  lab_c "$CTL" enable server --after-uptime 5 --persist --sysctl-dir "$SD" --uptime-file "$UP"
run 1 "enable --after-uptime, uptime unreadable" \
  lab_c "$CTL" enable server --after-uptime 5 --uptime-file "$LAB_DIR/missing"
lab_check "after the refusals tcp_fastopen is still 1 ($(fo))" [ "$(fo)" = 1 ]
lab_c sh -c 'echo 3 > /proc/sys/net/ipv4/tcp_fastopen'

lab_finish
