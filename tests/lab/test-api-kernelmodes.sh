#!/bin/bash
# tfo_connect_send when the kernel itself says no (issue: libtfo client),
# 50 ms RTT: with the client bit off, DISABLED and every byte delivered;
# with the server bit off, or a listener without TFO, every byte delivered
# and the destination no longer tried after a few attempts; timeout_ms
# bounds a call that would otherwise wait for the kernel.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/api.sh"
lab_require

RTT=50

# --- client bit off (tcp_fastopen=0 in the client namespace).
lab_up --rtt "$RTT" --client-bit-off || exit 99
lab_server_bg -p 8103 -q 16 >"$LAB_DIR/server.log"
lab_wait_port 8103 v4 || exit 99
for i in 1 2; do
  line=$(api_client -s 500 -K "$LAB_S_IP4" 8103)
  api_expect "client bit off, call $i" "$line" disabled 90 140 500
done
lab_check "client bit off: nothing cached" grep -qx 'cache=none' <<<"$line"
lab_down

# --- server bit off (tcp_fastopen=1 in the server namespace).
lab_up --rtt "$RTT" --server-bit-off || exit 99
lab_server_bg -p 8104 -q 16 >"$LAB_DIR/server.log"
lab_wait_port 8104 v4 || exit 99
for i in 1 2 3; do
  line=$(api_client -s 500 "$LAB_S_IP4" 8104)
  api_expect "server bit off, call $i" "$line" cookie-requested 90 140 500
done
line=$(api_client -s 500 -K "$LAB_S_IP4" 8104)
api_expect "server bit off, call 4: no longer tried" "$line" skipped 90 140 500
lab_check "server bit off: cached as no-cookie" grep -q 'cache=no-cookie skip=1' <<<"$line"
lab_down

# --- a listener without TCP_FASTOPEN on a TFO server.
lab_up --rtt "$RTT" || exit 99
lab_server_bg -p 8105 -q 0 >"$LAB_DIR/server.log"
lab_wait_port 8105 v4 || exit 99
for i in 1 2 3; do
  line=$(api_client -s 500 "$LAB_S_IP4" 8105)
  api_expect "listener without TFO, call $i" "$line" cookie-requested 90 140 500
done
line=$(api_client -s 500 "$LAB_S_IP4" 8105)
api_expect "listener without TFO, call 4: no longer tried" "$line" skipped 90 140 500

# --- timeout_ms: a blackholed TFO SYN without the race would wait for the
# kernel's 1 s retransmission; a 300 ms bound ends the call first.
lab_server_bg -p 8106 -q 16 >/dev/null
lab_wait_port 8106 v4 || exit 99
api_fresh timeout
lab_mode blackhole
out=$(api_client -R -T 300 -L -K "$LAB_S_IP4" 8106 || true)
lab_check "timeout_ms=300: ETIMEDOUT ($(head -n1 <<<"$out"))" \
  grep -q '^error=Connection timed out' <<<"$out"
lab_check_range "timeout_ms=300: ms" "$(lab_field ms "$(head -n1 <<<"$out")")" 290 400
lab_check "timeout_ms=300: no fd leaked" grep -qx 'fds_leaked=0' <<<"$out"

lab_finish
