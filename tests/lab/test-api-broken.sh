#!/bin/bash
# tfo_connect_send on paths that break TFO, 50 ms RTT (issue: libtfo
# client). The kernel alone pays a 1 s SYN timeout on every connection
# through blackhole or dropdata; libtfo pays its fallback delay once and
# then skips TFO for the destination, also in a new process.
# LAB_TEST_FAMILY=6 runs it over IPv6 (test-api-broken6.sh).
# A skipped or cookie-requesting call is a plain handshake and a request,
# 2 RTT (100 ms); its outcome is checked, and its time only against what
# a wrong path would cost (a SYN timeout, 1 s): up to 300 ms, which holds
# under ASan on a loaded 2-CPU machine (seen: 279 ms).
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/api.sh"
lab_require

RTT=50
PORT=8102
FAMILY=${LAB_TEST_FAMILY:-4}
lab_up --rtt "$RTT" || exit 99
if [ "$FAMILY" = 6 ]; then DST=$LAB_S_IP6 V=v6 SFLAG=-6; else DST=$LAB_S_IP4 V=v4 SFLAG=; fi
lab_server_bg $SFLAG -p "$PORT" -q 16 >"$LAB_DIR/server.log"
lab_wait_port "$PORT" "$V" || exit 99

skipped_after() { # LABEL: two more calls, each a new process, cost a plain connect
  local i line
  for i in 1 2; do
    line=$(api_client -s 300 "$DST" "$PORT")
    api_expect "$1: later call $i" "$line" skipped 90 300 300
  done
}

# --- blackhole: SYNs with option 34 vanish, even the cookie request.
api_fresh blackhole
lab_mode blackhole
line=$(api_client -s 300 -K "$DST" "$PORT")
api_expect "blackhole: first call" "$line" fallback 250 600 300
lab_check "blackhole: cached as blackhole" grep -q 'cache=blackhole skip=1' <<<"$line"
skipped_after blackhole

# --- blackhole without the race (non-idempotent data): the kernel's own
# retransmission, about 1 s, and the destination is still learnt.
api_fresh norace
line=$(api_client -R -s 300 "$DST" "$PORT")
api_expect "blackhole, no race: first call" "$line" cookie-requested 900 1600 300
line=$(api_client -R -s 300 "$DST" "$PORT")
api_expect "blackhole, no race: next call" "$line" skipped 90 300 300

# --- dropdata: the cookie request passes, SYNs with data vanish.
api_fresh dropdata
lab_mode none
line=$(api_client -s 300 "$DST" "$PORT")
api_expect "dropdata: cookie" "$line" cookie-requested 90 300 300
lab_mode dropdata
line=$(api_client -s 300 "$DST" "$PORT")
api_expect "dropdata: first data call" "$line" fallback 150 600 300
lab_check_range "dropdata: fallback delay from the RTT (3x)" "$(lab_field fallback "$line")" 140 200
skipped_after dropdata

# --- rstdata: SYN+data answered by a reset: fall back at once, no timer
# (the race delay is set to 800 ms to show it was not waited for).
api_fresh rstdata
lab_mode none
line=$(api_client -s 300 "$DST" "$PORT")
api_expect "rstdata: cookie" "$line" cookie-requested 90 300 300
lab_mode rstdata
line=$(api_client -F 800 -s 300 "$DST" "$PORT")
api_expect "rstdata: first data call" "$line" fallback 140 400 300
skipped_after rstdata

# --- sticky: as blackhole, and every later SYN from the same source port
# is dropped too (the kernel's own retransmission dies): the race's plain
# connection, from a new port, gets through.
api_fresh sticky
lab_mode none
line=$(api_client -s 300 "$DST" "$PORT")
api_expect "sticky: cookie" "$line" cookie-requested 90 300 300
lab_mode sticky
line=$(api_client -s 300 "$DST" "$PORT")
api_expect "sticky: first data call" "$line" fallback 150 600 300
skipped_after sticky
lab_mode none
api_fresh sticky-norace
lab_c ip tcp_metrics flush all
line=$(api_client -s 300 "$DST" "$PORT")
lab_mode sticky
line=$(api_client -R -T 2500 -s 300 "$DST" "$PORT" || true)
lab_check "sticky, no race (the kernel alone): the call fails ($(lab_field error "$line"))" \
  test -n "$(lab_field error "$line")"

# --- strip: option 34 removed from SYNs: never a cookie, data never in
# the SYN, every byte delivered; after a few tries TFO stops being tried.
api_fresh strip
lab_mode strip
for i in 1 2 3; do
  line=$(api_client -s 300 "$DST" "$PORT")
  out=$(lab_field outcome "$line")
  lab_check "strip: call $i outcome $out" test "$out" = cookie-requested -o "$out" = data-not-acked
  [ "$(api_resp "$line")" = "OK 300" ] && lab_pass "strip: call $i delivered 300 bytes" ||
    lab_fail "strip: call $i response '$(api_resp "$line")'"
done
line=$(api_client -s 300 "$DST" "$PORT")
api_expect "strip: 4th call" "$line" skipped 90 300 300

lab_finish
