#!/bin/bash
# test-load.sh: libtfo under load (issue 8), at 0 ms RTT (no lab-delay:
# the kernel's own latency, so the numbers measure libtfo and the kernel,
# not the NFQUEUE helper; LOAD_RTT=MS emulates one):
#  1. the preload shim: tests/lab/shim-stress, LOAD_THREADS (64) threads x
#     LOAD_CONNS (1000) connections each, with its fd churn and forks;
#  2. the event-loop API: examples/tfo-epoll, LOAD_EPOLL_N (10000)
#     connections started at once on ONE epoll loop, each with its own
#     request size so that an answer on the wrong socket would show.
# The server is uv-server (libuv, one process) with backlog and TFO queue
# 16384; somaxconn and the SYN backlog are raised in the server namespace.
# Every connection must get its right answer: zero errors. The figures
# (connections/s, TFO use) are printed as "figure:" lines.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
STRESS=$top_builddir/tests/lab/shim-stress
EX=$top_builddir/examples
for p in "$STRESS" "$EX/tfo-epoll" "$EX/uv-server" "$SHIM"; do
  [ -e "$p" ] || { echo "SKIP: $p not built (uv-server needs libuv)"; exit 77; }
done

THREADS=${LOAD_THREADS:-64}
CONNS=${LOAD_CONNS:-1000}
N=${LOAD_EPOLL_N:-10000}
PORT=8230

# 10000 sockets on the client, as many accepted ones on the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((N + 1000)) ] ||
  { echo "SKIP: RLIMIT_NOFILE $(ulimit -n) < $((N + 1000))"; exit 77; }

lab_up --rtt "${LOAD_RTT:-0}" || exit 99
# Per namespace: a listen queue that holds N SYNs at once; on the client a
# wide port range and TIME_WAIT reuse, for 64000 connections in a row.
lab_s sysctl -qw net.core.somaxconn=16384 net.ipv4.tcp_max_syn_backlog=16384
lab_c sysctl -qw net.ipv4.ip_local_port_range="10000 65000" \
  net.ipv4.tcp_tw_reuse=1
lab_s_bg "$EX/uv-server" -p "$PORT" -b 16384 -q 16384 \
  >"$LAB_DIR/server.log" 2>&1
lab_wait_port "$PORT" v4 || exit 99

ms_now() { date +%s%3N; }

# --- 1. the shim: THREADS x CONNS ------------------------------------------
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=1
shim_c "$STRESS" "$LAB_S_IP4" "$PORT" 1 3 >/dev/null # the cookie
a0=$(lab_counter c TCPFastOpenActive)
t0=$(ms_now)
rc=0
out=$(shim_c timeout 120 "$STRESS" "$LAB_S_IP4" "$PORT" "$THREADS" "$CONNS" \
  2>"$LAB_DIR/stress.err") || rc=$?
t1=$(ms_now)
rise=$(( $(lab_counter c TCPFastOpenActive) - a0 ))
# Thread 0 forks twice every 25 connections; each child adds one exchange.
want=$((THREADS * CONNS + 2 * ((CONNS + 24) / 25)))
secs=$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
rate=$(awk -v n="$want" -v ms=$((t1 - t0)) 'BEGIN { printf "%d", n * 1000 / (ms ? ms : 1) }')
echo "figure: shim $THREADS threads x $CONNS connections: $out in $secs s" \
  "($rate connections/s), TCPFastOpenActive +$rise"
head -n 5 "$LAB_DIR/stress.err"
lab_check "shim-stress exit status 0 (got $rc)" test "$rc" = 0
lab_check "shim $THREADS x $CONNS: every exchange right, no error ($out)" \
  test "$out" = "ok=$want errors=0"
lab_check_range "shim: TFO used by most connections" "$rise" \
  $((want * 9 / 10)) "$want"

# --- 2. one epoll loop, N connections at once ---------------------------
lab_c env LIBTFO_CACHE="$LAB_DIR/cache-epoll" "$EX/tfo-epoll" -q -n 1 \
  "$LAB_S_IP4" "$PORT" >/dev/null # the cookie (already there: harmless)
a0=$(lab_counter c TCPFastOpenActive)
rc=0
lab_c env LIBTFO_CACHE="$LAB_DIR/cache-epoll" "$EX/tfo-epoll" -q -n "$N" \
  -s 20 -S 1 -W 20000 "$LAB_S_IP4" "$PORT" >"$LAB_DIR/epoll.out" \
  2>"$LAB_DIR/epoll.err" || rc=$?
rise=$(( $(lab_counter c TCPFastOpenActive) - a0 ))
sum=$(grep '^summary ' "$LAB_DIR/epoll.out" || true)
echo "figure: tfo-epoll $N at once: $sum, TCPFastOpenActive +$rise"
head -n 5 "$LAB_DIR/epoll.err"
lab_check "tfo-epoll exit status 0 (got $rc)" test "$rc" = 0
lab_check_range "epoll: connections with the right answer" \
  "$(lab_field ok "$sum")" "$N" "$N"
lab_check_range "epoll: errors" "$(lab_field errors "$sum")" 0 0
lab_check_range "epoll: TFO used by most connections" "$rise" \
  $((N * 9 / 10)) "$N"

lab_finish
