#!/bin/bash
# tfo_connect_send on a clean path, 50 ms RTT (issue: libtfo client):
# the first call asks for a cookie, the next ones carry the request in the
# SYN and take about 1 RTT; data larger than a SYN holds arrives whole; a
# closed port gives ECONNREFUSED with no fd leaked and nothing cached.
# LAB_TEST_FAMILY=6 runs it over IPv6 (test-api-clean6.sh).
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/api.sh"
lab_require

RTT=50
PORT=8101
FAMILY=${LAB_TEST_FAMILY:-4}
lab_up --rtt "$RTT" || exit 99
if [ "$FAMILY" = 6 ]; then DST=$LAB_S_IP6 V=v6 SFLAG=-6; else DST=$LAB_S_IP4 V=v4 SFLAG=; fi
lab_server_bg $SFLAG -p "$PORT" -q 16 >"$LAB_DIR/server.log"
lab_wait_port "$PORT" "$V" || exit 99

active0=$(lab_counter c TCPFastOpenActive)
line=$(api_client -s 100 "$DST" "$PORT")
api_expect "first call" "$line" cookie-requested 90 140 100

# Repeat calls: a new process each time, as a real client would be.
mss=()
for i in 1 2 3 4 5; do
  line=$(api_client -s 100 "$DST" "$PORT")
  [ "$(lab_field outcome "$line")" = data-acked ] || lab_fail "repeat $i: $line"
  [ "$(api_resp "$line")" = "OK 100" ] || lab_fail "repeat $i: response $(api_resp "$line")"
  mss+=("$(lab_field ms "$line")")
done
med=$(printf '%s\n' "${mss[@]}" | lab_median)
lab_check_range "repeat request median ms (0.9-1.4 RTT)" "$med" 45 70
line=$(api_client -s 100 "$DST" "$PORT")
lab_check_range "syn bytes of a 100-byte request" "$(lab_field syn "$line")" 100 100
active1=$(lab_counter c TCPFastOpenActive)
lab_check_range "client TCPFastOpenActive rise" "$((active1 - active0))" 6 6

# More than a SYN holds (about 1400 B): the rest follows the handshake.
line=$(api_client -s 200000 "$DST" "$PORT")
api_expect "200000-byte request" "$line" data-acked "" "" 200000
syn=$(lab_field syn "$line")
lab_check_range "200000-byte request: bytes in the SYN" "$syn" 1000 1460

# A zero-length request: a cookie-only SYN.
line=$(api_client -s 0 -L "$DST" "$PORT")
lab_check "empty request connects (outcome $(lab_field outcome "$line"))" \
  test "$(lab_field outcome "$line")" = data-acked

# A closed port: refused, nothing leaked, nothing cached.
out=$(api_client -L -K "$DST" 9 || true)
lab_check "closed port: ECONNREFUSED ($(head -n1 <<<"$out"))" \
  grep -q '^error=Connection refused' <<<"$out"
lab_check "closed port: no fd leaked" grep -qx 'fds_leaked=0' <<<"$out"
lab_check "closed port: nothing cached" grep -qx 'cache=none' <<<"$out"

lab_finish
