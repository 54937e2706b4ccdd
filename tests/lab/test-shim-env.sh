#!/bin/bash
# libtfo_preload.so's configuration and manners (issue: shim): every
# LIBTFO_* variable does what libtfo_preload.8 says, a malformed value is
# reported once, by name, and ignored; listeners that chose their own TFO
# queue are left alone; getpeername() answers while the SYN is held;
# programs doing TFO themselves and non-TCP traffic are untouched.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }

lab_up --rtt 10 || exit 99
lab_server_bg -p 8000 -q 16 >"$LAB_DIR/server.log"
lab_wait_port 8000 v4 || exit 99
URL=http://$LAB_S_IP4:8000/

# --- listeners: the TFO queue length after listen(), per setting.
qlen() { # ENV... -> the listener's TCP_FASTOPEN after listen()
  lab_s env LD_PRELOAD="$SHIM_PRELOAD" "$@" "$PY" -c '
import socket, sys
own = int(sys.argv[1])
s = socket.socket()
if own:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, own)
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN))' "${OWN:-0}" 2>"$LAB_DIR/err"
}
lab_check_range "listener, defaults: qlen" "$(qlen X=1)" 256 256
lab_check_range "listener, LIBTFO_QLEN=77" "$(qlen LIBTFO_QLEN=77)" 77 77
lab_check_range "listener, LIBTFO_SERVER=0" "$(qlen LIBTFO_SERVER=0)" 0 0
lab_check_range "listener, LIBTFO_DISABLE=1" "$(qlen LIBTFO_DISABLE=1)" 0 0
lab_check_range "listener with its own TFO queue (5) kept" "$(OWN=5 qlen X=1)" 5 5
lab_check_range "listener, LIBTFO_QLEN=abc: default" "$(qlen LIBTFO_QLEN=abc)" 256 256
lab_check "LIBTFO_QLEN=abc reported once, by name" \
  test "$(grep -c "LIBTFO_QLEN='abc'" "$LAB_DIR/err")" = 1

# --- clients: does a connection use TFO (TCPFastOpenActive rises)? The
# lab server answers "OK <n>", HTTP/0.9 to curl.
curl_shim() { # ENV... ; prints the rise of TCPFastOpenActive
  local a0
  a0=$(lab_counter c TCPFastOpenActive)
  shim_c "$@" curl --http0.9 -s -o /dev/null "$URL" 2>>"$LAB_DIR/err" ||
    echo "curl failed: $?" >&2
  echo $(( $(lab_counter c TCPFastOpenActive) - a0 ))
}
curl_shim X=1 >/dev/null # the cookie
: >"$LAB_DIR/err"
lab_check_range "client, defaults: TFO used" "$(curl_shim X=1)" 1 1
lab_check_range "client, LIBTFO_DISABLE=1: untouched" "$(curl_shim LIBTFO_DISABLE=1)" 0 0
lab_check_range "client, LIBTFO_CLIENT=0: untouched" "$(curl_shim LIBTFO_CLIENT=0)" 0 0
lab_check_range "client, LIBTFO_PORTS=1-100: port 8000 untouched" \
  "$(curl_shim LIBTFO_PORTS=1-100)" 0 0
lab_check_range "client, LIBTFO_PORTS='80 7000-8000': TFO used" \
  "$(curl_shim LIBTFO_PORTS='80 7000-8000')" 1 1
lab_check_range "client, LIBTFO_EXCLUDE=198.18.0.0/15: untouched" \
  "$(curl_shim LIBTFO_EXCLUDE=198.18.0.0/15)" 0 0
lab_check_range "client, LIBTFO_EXCLUDE=2001:db8::/32,10.0.0.0/8: TFO used" \
  "$(curl_shim LIBTFO_EXCLUDE=2001:db8::/32,10.0.0.0/8)" 1 1
lab_check "no complaint about well-formed settings" test ! -s "$LAB_DIR/err"
lab_check_range "client, LIBTFO_PORTS=http (malformed): all ports, TFO used" \
  "$(curl_shim LIBTFO_PORTS=http)" 1 1
lab_check "LIBTFO_PORTS=http reported once, by name" \
  test "$(grep -c "LIBTFO_PORTS='http'" "$LAB_DIR/err")" = 1
: >"$LAB_DIR/err"
curl_shim LIBTFO_LOG=7 LIBTFO_DISABLE=maybe >/dev/null
lab_check "LIBTFO_LOG=7 and LIBTFO_DISABLE=maybe reported by name" \
  test "$(grep -c -e "LIBTFO_LOG='7'" -e "LIBTFO_DISABLE='maybe'" "$LAB_DIR/err")" = 2
: >"$LAB_DIR/err"
curl_shim LIBTFO_STATS=1 >/dev/null
lab_check "LIBTFO_STATS=1: one summary line ($(cat "$LAB_DIR/err"))" \
  grep -q 'attempts=1 data_acked=1 cookie_requested=0' "$LAB_DIR/err"

# --- getpeername while the SYN is held, then the exchange itself.
out=$(shim_c "$PY" -c '
import socket, sys
s = socket.socket()
s.connect((sys.argv[1], 8000))
peer = s.getpeername()
s.sendall(b"GET\n")
print(peer[0], peer[1], s.recv(100).decode().strip())' "$LAB_S_IP4" 2>&1)
lab_check "getpeername() before the first write: $out" \
  test "$out" = "$LAB_S_IP4 8000 OK 4"

# --- programs that do TFO themselves keep working, with TFO.
a0=$(lab_counter c TCPFastOpenActive)
shim_c curl --http0.9 --tcp-fastopen -s -o /dev/null "$URL"
out=$(shim_c "$PY" -c '
import socket, sys
s = socket.socket()
s.sendto(b"GET\n", socket.MSG_FASTOPEN, (sys.argv[1], 8000))
print(s.recv(100).decode().strip())' "$LAB_S_IP4")
lab_check "sendto(MSG_FASTOPEN) under the shim: $out" test "$out" = "OK 4"
lab_check_range "curl --tcp-fastopen and MSG_FASTOPEN under the shim: TFO used" \
  "$(( $(lab_counter c TCPFastOpenActive) - a0 ))" 2 2

# --- UDP and AF_UNIX pass straight through.
lab_s_bg "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
while True:
    d, a = s.recvfrom(100)
    s.sendto(d.upper(), a)'
sleep 0.3
out=$(shim_c "$PY" -c '
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
u.connect((sys.argv[1], 9999))
u.send(b"udp")
a, b = socket.socketpair()
a.sendall(b"unix")
print(u.recv(10).decode(), b.recv(10).decode())' "$LAB_S_IP4")
lab_check "UDP and AF_UNIX under the shim: $out" test "$out" = "UDP unix"

lab_finish
