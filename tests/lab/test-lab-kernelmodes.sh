#!/bin/bash
# test-lab-kernelmodes.sh: the lab's kernel-mode switches.
#
#   --client-bit-off  client ns net.ipv4.tcp_fastopen=0: TCP_FASTOPEN_CONNECT
#                     and MSG_FASTOPEN fail with EOPNOTSUPP; plain works.
#   --server-bit-off  server ns net.ipv4.tcp_fastopen=1: the listener's
#                     TCP_FASTOPEN succeeds but does nothing. TFO requests
#                     get no cookie (client_fail=1, none in tcp_metrics),
#                     never syn_data, and every byte is delivered. The
#                     server still counts the cookie requests
#                     (TCPFastOpenCookieReqd), it just grants none.
# Also: the root namespace's tcp_fastopen sysctl is left alone.

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require

RTT=20
PORT=8004
root_fo=$(cat /proc/sys/net/ipv4/tcp_fastopen)

# req MODE: one request; its result line in $line, exit status in $rc.
req() {
  rc=0
  line=$(lab_client -m "$1" "$LAB_S_IP4" "$PORT" 2>>"$LAB_DIR/client.err") ||
    rc=$?
  echo "  $1: $line (exit $rc)"
}

# --- client bit off ---
lab_up --rtt "$RTT" --client-bit-off || exit 99
lab_server_bg -p "$PORT" -q 16 >"$LAB_DIR/server.log"
lab_wait_port "$PORT" v4 || exit 99
echo "lab: --client-bit-off, RTT $RTT ms, $LAB_C -> $LAB_S"

c_fo=$(lab_c cat /proc/sys/net/ipv4/tcp_fastopen)
s_fo=$(lab_s cat /proc/sys/net/ipv4/tcp_fastopen)
lab_check "client-bit-off: tcp_fastopen client=$c_fo server=$s_fo (want 0 3)" \
  [ "$c_fo/$s_fo" = 0/3 ]

req tfo
lab_check "client-bit-off: TCP_FASTOPEN_CONNECT fails with EOPNOTSUPP ($line)" \
  [ "$rc/$(lab_field error "$line")" = 1/setsockopt:EOPNOTSUPP ]
req msgfastopen
lab_check "client-bit-off: MSG_FASTOPEN fails with EOPNOTSUPP ($line)" \
  [ "$rc/$(lab_field error "$line")" = 1/sendto:EOPNOTSUPP ]
req plain
lab_check "client-bit-off: plain request works ($line)" \
  [ "$rc/$(lab_field resp "$line")" = "0/OK 16" ]
lab_down

# --- server bit off ---
lab_up --rtt "$RTT" --server-bit-off || exit 99
lab_server_bg -p "$PORT" -q 16 >"$LAB_DIR/server.log"
lab_wait_port "$PORT" v4 || exit 99
echo "lab: --server-bit-off, RTT $RTT ms, $LAB_C -> $LAB_S"

c_fo=$(lab_c cat /proc/sys/net/ipv4/tcp_fastopen)
s_fo=$(lab_s cat /proc/sys/net/ipv4/tcp_fastopen)
lab_check "server-bit-off: tcp_fastopen client=$c_fo server=$s_fo (want 3 1)" \
  [ "$c_fo/$s_fo" = 3/1 ]

for i in 1 2 3; do
  req tfo
  lab_check "server-bit-off: TFO request $i delivers every byte, no cookie: syn_data=0 client_fail=1" \
    [ "$rc/$(lab_field resp "$line")/$(lab_field syn_data "$line")/$(lab_field client_fail "$line")" = "0/OK 16/0/1" ]
done
req msgfastopen
lab_check "server-bit-off: MSG_FASTOPEN request delivers every byte, syn_data=0" \
  [ "$rc/$(lab_field resp "$line")/$(lab_field syn_data "$line")" = "0/OK 16/0" ]

metrics=$(lab_c ip tcp_metrics show "$LAB_S_IP4" 2>/dev/null || true)
echo "  tcp_metrics: ${metrics:-(none)}"
lab_check "server-bit-off: no Fast Open cookie in the client's tcp_metrics" \
  eval '! printf "%s" "$metrics" | grep -q fo_cookie'
passive=$(lab_counter s TCPFastOpenPassive)
reqd=$(lab_counter s TCPFastOpenCookieReqd)
# The server still counts each cookie request it saw (4), it just grants none.
lab_check "server-bit-off: server TCPFastOpenPassive=$passive CookieReqd=$reqd (want 0 4)" \
  [ "$passive/$reqd" = 0/4 ]
took=$(grep -c 'syn_data=1' "$LAB_DIR/server.log" || true)
lab_check "server-bit-off: server log shows no SYN data taken ($took)" \
  [ "$took" = 0 ]
lab_down

now_fo=$(cat /proc/sys/net/ipv4/tcp_fastopen)
lab_check "root namespace tcp_fastopen untouched ($root_fo -> $now_fo)" \
  [ "$root_fo" = "$now_fo" ]

lab_finish
