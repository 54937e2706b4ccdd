#!/bin/bash
# test-uv-close.sh: closing a tfo_uv_connect handle in every state leaves
# nothing behind (50 ms RTT, uv-close helper, uv-server).
#
# States: TFO SYN with data out, before the SYN-ACK; inside the connect
# callback; after the answer; an established connection closed by a timer;
# in blackhole mode before the race, during the race (a TFO SYN and a
# plain one out), after a fallback; a skipped (plain) connect before its
# SYN-ACK. Each time: the connect callback ran once (UV_ECANCELED when the
# close came first), the close callback once, nothing after it, no fd
# left, and uv_loop_close found no handle or request of ours.
# The same closes run again under valgrind (leaks, invalid accesses) when
# it is installed and the build is not a sanitizer build.
# Skips (77) when libtfo-uv was not built (no libuv).

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require
UV_EX=${top_builddir:-$LAB_BIN/../..}/examples
for t in "$UV_EX/uv-client" "$UV_EX/uv-server" "$LAB_BIN/uv-close"; do
  if [ ! -x "$t" ]; then
    echo "SKIP: $t not built (libtfo-uv needs libuv)"
    exit 77
  fi
done

RTT=50
PORT=8103

VALGRIND=
if command -v valgrind >/dev/null 2>&1 && [ -n "${top_builddir:-}" ] &&
   [ -x "$top_builddir/libtool" ] &&
   ! grep -q -- '-fsanitize' "$top_builddir/Makefile" 2>/dev/null; then
  VALGRIND=1
fi

lab_up --rtt "$RTT" || exit 99
export LIBTFO_CACHE=$LAB_DIR/cache
DST=$LAB_S_IP4
lab_s_bg "$UV_EX/uv-server" -p "$PORT" >"$LAB_DIR/server.log" 2>&1
lab_wait_port "$PORT" v4 || exit 99
echo "lab: RTT $RTT ms, $LAB_C -> $LAB_S ($DST), uv-server on $PORT"

# closing LABEL WANT_STATUS WANT_HELD ARGS...: one uv-close run. WANT_HELD
# "-" when the fds held at the close do not matter.
closing() {
  local label=$1 status=$2 held=$3 line rc=0
  shift 3
  line=$(lab_c "$LAB_BIN/uv-close" "$@" "$DST" "$PORT" 2>>"$LAB_DIR/close.err") ||
    rc=$?
  echo "  [$LAB_MODE] $label: $line (exit $rc)"
  lab_check "$label: connect cb once, close cb once, nothing after, no fd/handle/request left" \
    [ "$rc" = 0 ]
  lab_check "$label: connect status $status" \
    [ "$(lab_field status "$line")" = "$status" ]
  if [ "$held" != - ]; then
    lab_check "$label: the connect held $held socket(s) when closed" \
      [ "$(lab_field fds_held "$line")" = "$held" ]
  fi
  if [ -n "$VALGRIND" ]; then
    rc=0
    lab_c "$top_builddir/libtool" --mode=execute valgrind -q \
      --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
      --error-exitcode=3 "$LAB_BIN/uv-close" "$@" "$DST" "$PORT" \
      >"$LAB_DIR/vg.out" 2>&1 || rc=$?
    lab_check "$label: valgrind clean (exit $rc$( [ "$rc" = 0 ] || { echo; cat "$LAB_DIR/vg.out"; }))" \
      [ "$rc" = 0 ]
  fi
}

# A cookie first, so that TFO SYNs carry data.
lab_c "$UV_EX/uv-client" -n 2 "$DST" "$PORT" >/dev/null || exit 99

closing "before the SYN-ACK" ECANCELED 1 -w 20
closing "in the connect callback" ok - -w cb
closing "after the answer" ok - -w resp
closing "established, closed by a timer" ok - -w 200

lab_mode blackhole || exit 99
# A fixed race at 100 ms: the plain SYN-ACK comes at 150 ms. Canceled
# connects teach the negative cache nothing, so each of these tries TFO.
closing "blackhole, before the race" ECANCELED 1 -F 100 -w 50
closing "blackhole, during the race" ECANCELED 2 -F 100 -w 125
closing "blackhole, after the fallback" ok - -F 100 -w resp
closing "blackhole, skipped, before the SYN-ACK" ECANCELED 1 -w 20

lab_finish
