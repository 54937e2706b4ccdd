#!/bin/bash
# test-lab-blackhole.sh: the middlebox modes that break TFO, and what the
# kernel alone does about them (50 ms RTT, cookie cached first in mode none).
#
#   blackhole  SYNs carrying option 34 dropped: each kernel-TFO request pays
#              a SYN timeout, > 900 ms, client_fail=3; plain requests pass.
#   dropdata   SYNs carrying payload dropped: the same; plain requests and
#              the cookie-request SYN (option, no payload) pass.
#   rstdata    SYN+payload answered with a RST: the kernel does not fall
#              back, the request fails with ECONNREFUSED after one RTT, and
#              again on the next try (nothing is learned); plain works.

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require

RTT=50
PORT=8002

lab_up --rtt "$RTT" || exit 99
DST=$LAB_S_IP4
lab_server_bg -p "$PORT" -q 16 >"$LAB_DIR/server.log"
lab_wait_port "$PORT" v4 || exit 99
echo "lab: RTT $RTT ms, $LAB_C -> $LAB_S ($DST)"

# req MODE: one request; its result line in $line, exit status in $rc.
req() {
  rc=0
  line=$(lab_client -m "$1" -s 100 "$DST" "$PORT" 2>>"$LAB_DIR/client.err") ||
    rc=$?
  echo "  [$LAB_MODE] $1: $line (exit $rc)"
}

rtts() {
  awk -v ms="$1" -v rtt="$RTT" 'BEGIN { printf "%.2f", ms / rtt }'
}

# Cache a cookie, and make sure it works.
req tfo
req tfo
lab_check "mode none: cookie cached, TFO request has syn_data=1 ($line)" \
  [ "$(lab_field syn_data "$line")" = 1 ]

for mode in blackhole dropdata; do
  lab_mode "$mode" || exit 99
  retrans0=$(lab_counter c TCPSynRetrans)
  for i in 1 2; do
    req tfo
    lab_check "$mode: TFO request $i completes with every byte" \
      [ "$rc/$(lab_field resp "$line")" = "0/OK 100" ]
    lab_check_range "$mode: TFO request $i ms (SYN timeout)" \
      "$(lab_field ms "$line")" 900 3000
    lab_check "$mode: TFO request $i client_fail=3 (SYN retransmitted)" \
      [ "$(lab_field client_fail "$line")" = 3 ]
  done
  retrans=$(( $(lab_counter c TCPSynRetrans) - retrans0 ))
  lab_check "$mode: client TCPSynRetrans rose by $retrans (want 2)" \
    [ "$retrans" = 2 ]

  req plain
  lab_check_range "$mode: plain request passes untouched, in RTT" \
    "$(rtts "$(lab_field ms "$line")")" 1.8 2.6
done

# dropdata must pass a SYN that carries option 34 but no data: a client
# without a cookie sends exactly that. The cache is per (source, dest)
# address pair and these SYNs come from the client's same address, so
# drop the cached cookie first.
lab_c ip tcp_metrics delete "$DST" 2>/dev/null || true
req tfo
lab_check "dropdata: cookie-request SYN (option, no data) passes: client_fail=1" \
  [ "$rc/$(lab_field client_fail "$line")" = 0/1 ]
lab_check_range "dropdata: cookie-request connection, in RTT" \
  "$(rtts "$(lab_field ms "$line")")" 1.8 2.6

lab_mode none
req tfo
lab_check "mode none again: the new cookie works, syn_data=1" \
  [ "$(lab_field syn_data "$line")" = 1 ]

lab_mode rstdata || exit 99
for i in 1 2; do
  req tfo
  lab_check "rstdata: TFO request $i fails with ECONNREFUSED at the write ($line)" \
    [ "$rc/$(lab_field error "$line")" = "1/write:ECONNREFUSED" ]
  lab_check_range "rstdata: TFO request $i fails after, in RTT" \
    "$(rtts "$(lab_field ms "$line")")" 0.9 1.4
done
req msgfastopen
lab_check "rstdata: MSG_FASTOPEN fails with ECONNREFUSED too ($line)" \
  [ "$rc/$(lab_field error "$line")" = "1/sendto:ECONNREFUSED" ]
req plain
lab_check "rstdata: plain request passes ($line)" \
  [ "$rc/$(lab_field resp "$line")" = "0/OK 100" ]

lab_mode none
req tfo
lab_check "mode none again: the cookie survived the RSTs, syn_data=1" \
  [ "$(lab_field syn_data "$line")" = 1 ]

lab_finish
