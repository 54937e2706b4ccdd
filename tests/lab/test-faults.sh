#!/bin/bash
# Faults (issue: hardening), a first part of the matrix, 20 ms RTT:
#   - the server restarts with a new key: clients hold cookies it no longer
#     accepts (API and shim): every byte delivered once, the data not acked
#     that one time, then TFO again with the new cookie;
#   - the server's TFO queue overflows (TCPFastOpenListenOverflow): every
#     connection still answered, each request delivered exactly once.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/api.sh"
. "$here/shim.sh"
lab_require
EPOLL=$top_builddir/examples/tfo-epoll
UVSRV=$top_builddir/examples/uv-server
TFOCTL=$top_builddir/tools/tfoctl
[ -x "$UVSRV" ] || { echo "SKIP: uv-server not built (no libuv)"; exit 77; }

lab_up --rtt 20 || exit 99

# --- a new server key, as after a restart of a server that keeps none.
lab_server_bg -p 8201 -q 16 >"$LAB_DIR/server.log"
lab_wait_port 8201 v4 || exit 99
key_now() { lab_s "$TFOCTL" key generate; }
lab_s "$TFOCTL" key set "$(key_now)" >/dev/null
line=$(api_client -s 300 "$LAB_S_IP4" 8201)
line=$(api_client -s 300 "$LAB_S_IP4" 8201)
api_expect "new key: before, with a good cookie" "$line" data-acked "" "" 300
fail0=$(lab_counter s TCPFastOpenPassiveFail)
lab_s "$TFOCTL" key set "$(key_now)" >/dev/null
line=$(api_client -s 300 "$LAB_S_IP4" 8201)
api_expect "new key: API, first call with the old cookie" "$line" data-not-acked 35 70 300
lab_check_range "new key: server refused the old cookie (TCPFastOpenPassiveFail rise)" \
  "$(( $(lab_counter s TCPFastOpenPassiveFail) - fail0 ))" 1 1
line=$(api_client -s 300 "$LAB_S_IP4" 8201)
api_expect "new key: API, next call with the new cookie" "$line" data-acked 15 35 300
# The shim, the same way: the server logs each request's byte count once.
lab_s "$TFOCTL" key set "$(key_now)" >/dev/null
n0=$(grep -c 'bytes=' "$LAB_DIR/server.log")
for i in 1 2; do
  out=$(shim_c "$PY" -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 8201), timeout=5)
s.sendall(b"y" * 299 + b"\n")
print(s.recv(100).decode().strip())' "$LAB_S_IP4")
  lab_check "new key: shim, call $i answered ($out)" test "$out" = "OK 300"
done
lab_check_range "new key: the server got each request once" \
  "$(( $(grep -c 'bytes=' "$LAB_DIR/server.log") - n0 ))" 2 2

# --- the TFO queue overflows: qlen 2, 100 TFO connections at once.
lab_s_bg "$UVSRV" -a "$LAB_S_IP4" -p 8202 -q 2 -b 4096 >"$LAB_DIR/uv.log" 2>&1
lab_wait_port 8202 v4 || exit 99
API_CACHE=$LAB_DIR/cache-overflow
lab_c env LIBTFO_CACHE="$API_CACHE" "$EPOLL" -q -n 1 "$LAB_S_IP4" 8202 >/dev/null
ov0=$(lab_counter s TCPFastOpenListenOverflow)
out=$(lab_c env LIBTFO_CACHE="$API_CACHE" "$EPOLL" -q -n 100 -S 7 "$LAB_S_IP4" 8202 || true)
echo "overflow: $out"
lab_check "overflow: 100 connections, every answer right" \
  grep -q 'conns=100 ok=100 errors=0' <<<"$out"
lab_check_range "overflow: TCPFastOpenListenOverflow rise" \
  "$(( $(lab_counter s TCPFastOpenListenOverflow) - ov0 ))" 1 100
lab_check_range "overflow: connections that still carried data in the SYN" \
  "$(sed -n 's/.*data-acked=\([0-9]*\).*/\1/p' <<<"$out")" 1 99

lab_finish
