#!/bin/bash
# The fault matrix (issues: hardening, event loops), 20 ms RTT:
#   every middlebox mode (none blackhole dropdata strip rstdata sticky)
#   x every kernel mode (both bits on, client bit off, server bit off)
#   x every entry point: the API blocking (tfo-client), the API non-blocking
#     (tfo-epoll, one tfo_conn on an epoll loop), libuv (uv-client), and the
#     shim under unmodified programs: curl (non-blocking sockets, poll),
#     python asyncio (epoll), node (libuv) and a python client (a blocking
#     socket); and lab-client (blocking, C) under the shim and valgrind's
#     memcheck, for the shim's own leaks and errors
#   x IPv4 (this file) and IPv6 (test-fault-matrix6.sh: LAB_TEST_FAMILY=6).
# A cell starts from nothing (no cookie, an empty negative cache), makes one
# call on a clean path (the cookie), then turns the middlebox on and makes
# three or four more calls (until the outcome is settled), each a new process. For every call:
#   - the answer is right and the server saw the request exactly once (its
#     log line, found by the request's own size or URL); a second copy is
#     only excused as the documented race replay, and then counted;
#   - the outcome reported is the one this path and kernel mode call for
#     (the API's and uv's own report; the shim's LIBTFO_STATS line);
#   - it ended well under the kernel's SYN timeouts (no hang), and no
#     descriptor was left open (tfo-client -L, the python client's own count
#     of /proc/self/fd; tfo-epoll and uv-client close everything they
#     opened or LeakSanitizer says so in CI's ASan pass).
# Under an ASan-built shim (CI's sanitizer pass) the shim's entry points are
# left out: the sanitizer cannot be preloaded into curl or python.
# MATRIX_ENTRIES, MATRIX_MODES, MATRIX_KMODES narrow the run by hand.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/api.sh"
. "$here/shim.sh"
lab_require
EX=$top_builddir/examples
for p in "$EX/tfo-epoll" "$EX/uv-client" "$SHIM"; do
  [ -e "$p" ] || { echo "SKIP: $p not built (uv-client needs libuv)"; exit 77; }
done
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node missing"; exit 77; }
command -v valgrind >/dev/null || { echo "SKIP: valgrind missing"; exit 77; }

RTT=20
FAMILY=${LAB_TEST_FAMILY:-4}
ENTRIES=${MATRIX_ENTRIES:-api nb uv curl aio node py vg}
if [ "$SHIM_PRELOAD" != "$SHIM" ] && [ -z "${MATRIX_ENTRIES:-}" ]; then
  ENTRIES="api nb uv"
  echo "note: ASan-built shim: curl, python and node entries left out"
fi
# shim.sh turns leak reports off for foreign programs; ours are checked.
[ "$SHIM_PRELOAD" != "$SHIM" ] && export ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=1
MODES=${MATRIX_MODES:-none blackhole dropdata strip rstdata sticky}
KMODES=${MATRIX_KMODES:-on client-off server-off}
PORT=8310 HPORT=8311
if [ "$FAMILY" = 6 ]; then
  DST=$LAB_S_IP6 V=v6 SFLAG=-6 HOSTURL="[$LAB_S_IP6]"
else
  DST=$LAB_S_IP4 V=v4 SFLAG= HOSTURL=$LAB_S_IP4
fi
# A hard bound on each process (a hang shows as a failed call), and the
# bound a call must end within: the kernel's first SYN timeout (1 s) can be
# paid once by a non-blocking program, never twice.
HARD=15 BOUND_MS=2500

# Request sizes identify requests in lab-server's log: each call its own.
SIZE=200
CALLS=0 REPLAYS=0 CELLS=0

# Outcome names: the API's, and the shim's counters mapped onto them.
shim_outcome() { # the LIBTFO_STATS line -> the outcome of its one connection
  local line=$1 k out= n=0
  for k in data_acked cookie_requested data_not_acked fallbacks skipped disabled; do
    if [ "$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<<"$line")" = 1 ]; then
      out=$k n=$((n + 1))
    fi
  done
  [ "$(sed -n 's/.* attempts=\([0-9]*\).*/\1/p' <<<"$line")" -le 1 ] 2>/dev/null || n=9
  case $n:$out in
    1:fallbacks) echo fallback ;;
    1:*) echo "${out//_/-}" ;;
    0:) echo "none" ;; # the shim did not take the connection
    *) echo "several($line)" ;;
  esac
}

pyclient() {
  cat >"$LAB_DIR/pyclient.py" <<'EOF'
# One request on a blocking socket: SIZE bytes, the last a newline; prints
# the answer, how many descriptors the call left open (the shim's one
# descriptor of its cache file, kept for the file lock, is not a leak, nor
# are the shim's own high descriptors), and
# whether the socket options set before connect() are still those of the
# socket after the exchange (the shim may have put a plain socket in its
# place).
import os, resource, socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# The shim's own descriptors (its keeper's epoll set and eventfd, kept a
# second after use, and the anchor of a held socket) sit at min(1024,
# soft limit / 2) and above: only those of the program are counted.
top = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2)
def fds():
    n = 0
    for f in os.listdir("/proc/self/fd"):
        if int(f) >= top:
            continue
        try:
            if os.readlink("/proc/self/fd/" + f) == os.environ["LIBTFO_CACHE"]:
                continue
        except OSError:
            pass
        n += 1
    return n
fds0 = fds()
v6 = ":" in host
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
OPTS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77),
        (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 12345),
        (socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x28) if v6 else
        (socket.IPPROTO_IP, socket.IP_TOS, 0x28)]
for lvl, name, val in OPTS:
    s.setsockopt(lvl, name, val)
t0 = time.monotonic()
s.connect((host, port))
s.sendall(b"x" * (size - 1) + b"\n")
data = b""
while not data.endswith(b"\n"):
    d = s.recv(100)
    if not d:
        break
    data += d
ms = (time.monotonic() - t0) * 1000
opts = "ok" if all(s.getsockopt(l, n) == v for l, n, v in OPTS) else "lost"
s.close()
print("resp=%s fds_leaked=%d opts=%s" % (data.decode().strip().replace(" ", "_"),
                                         fds() - fds0, opts))
print("ms=%d" % ms)
EOF
}

# The event-loop clients: one request (SIZE bytes, the last a newline),
# the answer printed as resp=...
loopclients() {
  cat >"$LAB_DIR/aioclient.py" <<'EOF'
import asyncio, sys, time
async def main(host, port, size):
    t0 = time.monotonic()
    r, w = await asyncio.open_connection(host, port)
    w.write(b"x" * (size - 1) + b"\n")
    data = await r.readline()
    ms = (time.monotonic() - t0) * 1000
    w.close()
    await w.wait_closed()
    print("resp=%s" % data.decode().strip().replace(" ", "_"))
    print("ms=%d" % ms)
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
EOF
  cat >"$LAB_DIR/nodeclient.js" <<'EOF'
const net = require('net');
const [host, port, size] = [process.argv[2], +process.argv[3], +process.argv[4]];
const t0 = process.hrtime.bigint();
const s = net.connect(port, host, () => s.write('x'.repeat(size - 1) + '\n'));
let d = '';
s.on('data', (c) => {
  d += c;
  if (d.endsWith('\n')) {
    console.log('resp=' + d.trim().replace(/ /g, '_'));
    console.log('ms=' + Number((process.hrtime.bigint() - t0) / 1000000n));
    s.end();
  }
});
s.on('error', (e) => { console.log('error=' + e.code); process.exitCode = 1; });
EOF
}

ms_now() { date +%s%3N; }

# call ENTRY CACHE -> sets C_OUT (outcome), C_OK (1: answer right, fds ok),
# C_MS, C_KEY (how the server's log names this request), C_WHY
call() {
  local entry=$1 cache=$2 out rc=0 t0 t1 stats
  SIZE=$((SIZE + 1))
  C_OUT=? C_OK=0 C_WHY= C_KEY="bytes=$SIZE "
  t0=$(ms_now)
  case $entry in
    api)
      out=$(lab_c env LIBTFO_CACHE="$cache" timeout $HARD "$TFO_CLIENT" -L \
        -s $SIZE "$DST" $PORT 2>&1) || rc=$?
      C_OUT=$(lab_field outcome "$(head -n1 <<<"$out")")
      [ "$(api_resp "$out")" = "OK $SIZE" ] && grep -qx 'fds_leaked=0' <<<"$out" &&
        C_OK=1 ;;
    nb)
      out=$(lab_c env LIBTFO_CACHE="$cache" timeout $HARD "$EX/tfo-epoll" \
        -n 1 -s $SIZE "$DST" $PORT 2>&1) || rc=$?
      C_OUT=$(lab_field outcome "$(grep '^conn=' <<<"$out" | head -n1)")
      grep -q '^conn=0 .* ok=1$' <<<"$out" &&
        grep -q '^summary conns=1 ok=1 errors=0 ' <<<"$out" && C_OK=1 ;;
    uv)
      out=$(lab_c env LIBTFO_CACHE="$cache" timeout $HARD "$EX/uv-client" \
        -v -n 1 -c 1 -s $SIZE "$DST" $PORT 2>&1) || rc=$?
      C_OUT=$(lab_field outcome "$(grep '^req=' <<<"$out" | head -n1)")
      grep -q "^req=0 status=ok .*resp=\"OK $SIZE\"" <<<"$out" &&
        grep -q '^requests=1 ok=1 failed=0 ' <<<"$out" && C_OK=1 ;;
    py)
      out=$(SHIM_CACHE=$cache shim_c env LIBTFO_STATS=1 timeout $HARD "$PY" \
        "$LAB_DIR/pyclient.py" "$DST" $PORT $SIZE 2>&1) || rc=$?
      stats=$(grep '^libtfo\[' <<<"$out" | tail -n1)
      C_OUT=$(shim_outcome "$stats")
      grep -qx "resp=OK_$SIZE fds_leaked=0 opts=ok" <<<"$out" && C_OK=1 ;;
    vg)
      out=$(SHIM_CACHE=$cache shim_c env LIBTFO_STATS=1 timeout $HARD valgrind -q \
        --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=99 "$LAB_BIN/lab-client" -m plain -s $SIZE "$DST" $PORT 2>&1) || rc=$?
      stats=$(grep '^libtfo\[' <<<"$out" | tail -n1)
      C_OUT=$(shim_outcome "$stats")
      grep -q "resp=\"OK $SIZE\"" <<<"$out" && C_OK=1 ;;
    aio | node)
      # The shim's event loops: python asyncio (epoll) and node (libuv),
      # the same one request on a non-blocking socket.
      if [ "$entry" = aio ]; then
        set -- "$PY" "$LAB_DIR/aioclient.py"
      else
        set -- node "$LAB_DIR/nodeclient.js"
      fi
      out=$(SHIM_CACHE=$cache shim_c env LIBTFO_STATS=1 timeout $HARD "$@" \
        "$DST" $PORT $SIZE 2>&1) || rc=$?
      stats=$(grep '^libtfo\[' <<<"$out" | tail -n1)
      C_OUT=$(shim_outcome "$stats")
      grep -qx "resp=OK_$SIZE" <<<"$out" && C_OK=1 ;;
    curl)
      # Through python's http.server (the shim gives it TFO): a file whose
      # sum is known, under a query string that names this call.
      C_KEY="GET /blob?c=$SIZE "
      out=$(SHIM_CACHE=$cache shim_c env LIBTFO_STATS=1 timeout $HARD curl -sS \
        --max-time 10 "http://$HOSTURL:$HPORT/blob?c=$SIZE" 2>&1 >"$LAB_DIR/got") || rc=$?
      stats=$(grep '^libtfo\[' <<<"$out" | tail -n1)
      C_OUT=$(shim_outcome "$stats")
      [ "$(sha256sum <"$LAB_DIR/got" | cut -d' ' -f1)" = "$BLOB_SUM" ] && C_OK=1 ;;
  esac
  t1=$(ms_now)
  C_MS=$((t1 - t0))
  # An interpreter's start (python, node) is no part of the connection's
  # time, and on a loaded machine can take a second: its own count, from
  # before its connect to the answer, when it gives one.
  ms=$(grep -m1 '^ms=[0-9]*$' <<<"$out" | cut -d= -f2)
  [ -n "$ms" ] && C_MS=$ms
  [ $rc = 0 ] || { C_OK=0; C_WHY="exit $rc"; }
  [ $C_OK = 1 ] || C_WHY="$C_WHY; output: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
  CALLS=$((CALLS + 1))
}

# How many times the server's log shows the request KEY (lab-server's
# lines are written when the connection ends: wait a little for them).
seen() {
  local key=$1 log n i
  if [ "${key#GET}" != "$key" ]; then log=$LAB_DIR/http-$HPORT.log; else log=$LAB_DIR/server.log; fi
  for i in $(seq 1 20); do
    n=$(grep -cF -- "$key" "$log" || true)
    [ "$n" -ge 1 ] && break
    sleep 0.05
  done
  echo "$n"
}

# expected KMODE MBOX -> the outcomes of calls 0, 1, ..., each a|b alternatives.
expected() {
  case $1:$2 in
    client-off:*) echo "disabled disabled disabled disabled" ;;
    on:none) echo "cookie-requested data-acked data-acked data-acked" ;;
    on:blackhole | on:dropdata | on:rstdata)
      # The cookie's SYN+data vanishes or is reset: one fallback, then the
      # negative cache skips TFO for this destination.
      echo "cookie-requested fallback skipped skipped" ;;
    on:strip)
      # The option is removed on the way: the server sees a plain SYN
      # (its data ignored, sent again after the handshake; the kernel
      # keeps the cookie); after three such tries TFO is no longer tried.
      echo "cookie-requested data-not-acked data-not-acked data-not-acked skipped" ;;
    on:sticky)
      # As blackhole, and the box then drops every SYN from that source
      # port: the kernel's own retransmission dies too, only a connection
      # from a new port (the race's) gets through.
      echo "cookie-requested fallback skipped skipped" ;;
    server-off:blackhole | server-off:sticky)
      # Even the cookie request's SYN carries option 34: it vanishes.
      echo "cookie-requested fallback skipped skipped" ;;
    server-off:*)
      # No cookie ever comes: a few requests, then the destination is
      # known not to give one.
      echo "cookie-requested cookie-requested cookie-requested|skipped skipped" ;;
  esac
}

# Every entry point is raced, the shim's non-blocking programs too (a
# plain connection in place of the unanswered SYN): the same outcomes.
expected_for() { # KMODE MBOX ENTRY
  expected "$1" "$2"
}

cell() { # KMODE MBOX ENTRY
  local k=$1 m=$2 e=$3 cache i want got=() bad=0 n alt bound once="exactly once"
  cache=$LAB_DIR/cache-$k-$m-$e
  lab_mode none
  lab_c ip tcp_metrics flush all 2>/dev/null || true
  read -r -a want <<<"$(expected_for "$k" "$m" "$e")"
  for i in "${!want[@]}"; do
    [ $i = 1 ] && lab_mode "$m"
    call "$e" "$cache"
    got+=("$C_OUT")
    n=$(seen "$C_KEY")
    if [ $C_OK != 1 ]; then
      lab_fail "$k $m $e call $i: wrong answer ($C_WHY)"; bad=1
    fi
    if [ "$n" != 1 ]; then
      if [ "$n" -gt 1 ] && [ "$C_OUT" = fallback ]; then
        REPLAYS=$((REPLAYS + n - 1))
        once="a race replay excused"
        echo "note: $k $m $e call $i: request seen $n times (race replay, counted)"
      else
        lab_fail "$k $m $e call $i: the server saw the request $n times"; bad=1
      fi
    fi
    # Under valgrind the time is mostly valgrind's own start (1.5 to 3 s
    # on a loaded 2-CPU machine): that entry checks memory, the others
    # the time.
    bound=$BOUND_MS
    [ "$e" = vg ] && bound=$((BOUND_MS * 4))
    if [ "$C_MS" -gt $bound ]; then
      lab_fail "$k $m $e call $i: took $C_MS ms"; bad=1
    fi
    alt="|${want[$i]}|"
    if [ "${alt#*|$C_OUT|}" = "$alt" ]; then
      lab_fail "$k $m $e call $i: outcome $C_OUT, want ${want[$i]}"; bad=1
    fi
    TIMES+=("$k $m $e $i $C_OUT $C_MS")
  done
  lab_mode none
  CELLS=$((CELLS + 1))
  [ $bad = 0 ] && lab_pass "$k $m $e: ${got[*]} ($once, no leak, in bound)"
  return 0
}

TIMES=()
t_start=$(ms_now)
for k in $KMODES; do
  case $k in
    on) lab_up --rtt $RTT || exit 99 ;;
    client-off) lab_up --rtt $RTT --client-bit-off || exit 99 ;;
    server-off) lab_up --rtt $RTT --server-bit-off || exit 99 ;;
    *) echo "bad kernel mode $k"; exit 99 ;;
  esac
  shim_www
  pyclient
  loopclients
  lab_server_bg $SFLAG -p $PORT -q 64 >"$LAB_DIR/server.log"
  lab_wait_port $PORT $V || exit 99
  if [ "${ENTRIES/curl/}" != "$ENTRIES" ]; then
    shim_http_bg $HPORT "$DST"
    lab_wait_port $HPORT $V || exit 99
  fi
  for m in $MODES; do
    for e in $ENTRIES; do
      cell "$k" "$m" "$e"
    done
  done
  lab_down
done
secs=$(( ($(ms_now) - t_start) / 1000 ))
printf '%s\n' "${TIMES[@]}" >"${MATRIX_TIMES:-/dev/null}"
echo "figure: IPv$FAMILY matrix: $CELLS cells, $CALLS calls in $secs s, race replays $REPLAYS"
lab_finish
