#!/bin/bash
# test-api-epoll.sh: tfo_conn_start/step/finish driven by one epoll loop
# (examples/tfo-epoll), 200 connections at once, 50 ms RTT:
#
#   - clean path, first batch: every connection gets its own answer
#     (connection i sends 20 + i bytes and must read "OK <20 + i>"); they
#     ask for cookies (cookie-requested), or use the first that came back;
#   - repeat batch: all data-acked, the server took 200 requests from SYNs,
#     and the whole batch takes about 1 RTT (well under 2 RTT);
#   - blackhole (SYNs with option 34 dropped), a fresh negative cache but
#     the kernel still holding the cookie and RTT: all fallback, the race
#     starting after 3x that RTT (not the 1 s cap), the batch under 0.45 s;
#   - blackhole, cookies flushed and a fresh negative cache: the batch still
#     completes well under 1 s (the race, not the kernel's 1 s SYN
#     timeout), all fallback, no SYN retransmitted; the next batch is all
#     skipped and takes about 2 RTT.
#
# The server is uv-server (backlog and TFO queue 4096): lab-server listens
# with a backlog of 128, and 200 SYNs at once overflow its accept queue
# (ListenOverflows), which libtfo cannot tell from a blackhole. So this test
# skips (77) when the libuv examples were not built.

set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
lab_require
EX=${top_builddir:-$LAB_BIN/../..}/examples
if [ ! -x "$EX/tfo-epoll" ]; then
  echo "SKIP: $EX/tfo-epoll not built"
  exit 77
fi
if [ ! -x "$EX/uv-server" ]; then
  echo "SKIP: $EX/uv-server not built (the libuv examples need libuv)"
  exit 77
fi

RTT=50
N=200
PORT=8120
DST=$LAB_S_IP4

lab_up --rtt "$RTT" || exit 99
lab_s_bg "$EX/uv-server" -p "$PORT" >"$LAB_DIR/server.log" 2>&1
lab_wait_port "$PORT" v4 || exit 99
echo "lab: RTT $RTT ms, $LAB_C -> $LAB_S ($DST), uv-server on $PORT, $N connections per batch"

# batch LABEL CACHE: one tfo-epoll run of $N connections; its lines in
# $LAB_DIR/LABEL.out, the summary line in $sum. Checks that every
# connection got its own answer.
batch() {
  local label=$1 cache=$2 out=$LAB_DIR/$1.out rc=0 lines ids

  lab_c env LIBTFO_CACHE="$cache" "$EX/tfo-epoll" -n "$N" -s 20 -S 1 \
    -W 5000 "$DST" "$PORT" >"$out" 2>"$LAB_DIR/$label.err" || rc=$?
  sum=$(grep '^summary ' "$out" || true)
  echo "$label: $sum"
  lab_check "$label: exit status 0 (got $rc)" test "$rc" = 0
  lab_check_range "$label: connections with the right answer" \
    "$(lab_field ok "$sum")" "$N" "$N"
  lab_check_range "$label: errors" "$(lab_field errors "$sum")" 0 0
  lines=$(grep -c '^conn=.* ok=1$' "$out" || true)
  ids=$(grep '^conn=' "$out" | awk '{ print $1 }' | sort -u | wc -l)
  lab_check_range "$label: per-connection lines with ok=1" "$lines" "$N" "$N"
  lab_check_range "$label: distinct connections reported" "$ids" "$N" "$N"
  if [ -s "$LAB_DIR/$label.err" ]; then
    echo "$label: stderr:"
    head -n 5 "$LAB_DIR/$label.err"
  fi
}

# --- clean path ----------------------------------------------------------
batch first "$LAB_DIR/cache"
# Each asks for a cookie, unless it started after the first one came back
# (one RTT into the batch: a slow loop, under ASan on a loaded machine,
# was seen to start the last 38 later) and rightly used it.
lab_check_range "first: cookie-requested" \
  "$(lab_field cookie-requested "$sum")" 1 "$N"
lab_check_range "first: cookie-requested + data-acked" \
  "$(($(lab_field cookie-requested "$sum") + $(lab_field data-acked "$sum")))" "$N" "$N"

passive0=$(lab_counter s TCPFastOpenPassive)
batch repeat "$LAB_DIR/cache"
lab_check_range "repeat: data-acked" "$(lab_field data-acked "$sum")" "$N" "$N"
# Times: bounds that hold on a loaded 2-CPU machine (200 connections
# through the userspace delay helper beside other lab tests took 365 ms
# where 51 is usual), still under the kernel's 1 s SYN timeout that a
# broken race would pay; the speed itself (about 1 RTT) is bench/run's.
lab_check_range "repeat: whole batch ms (no SYN timeout)" \
  "$(lab_field total_ms "$sum")" 45 950
passive1=$(lab_counter s TCPFastOpenPassive)
lab_check_range "repeat: server TCPFastOpenPassive rise" \
  "$((passive1 - passive0))" "$N" "$N"

# --- blackhole ---------------------------------------------------------------
lab_mode blackhole || exit 99

# settle_metrics: let the sockets of earlier batches finish closing (a
# closing socket writes its RTT back into the kernel's tcp_metrics).
settle_metrics() {
  sleep 0.3
}

# The kernel still knows the destination (cookie, RTT), the negative cache
# does not (a fresh file): the race starts after 3x the RTT the kernel
# remembers, not after the 1 s cap.
settle_metrics
batch blackhole-rtt "$LAB_DIR/cache-bh-rtt"
lab_check_range "blackhole-rtt: fallback" "$(lab_field fallback "$sum")" "$N" "$N"
fb=$(grep '^conn=' "$LAB_DIR/blackhole-rtt.out" |
  sed -n 's/.* fallback=\([0-9]*\) .*/\1/p' | lab_median)
lab_check_range "blackhole-rtt: median race delay ms (3x RTT, not the 1 s cap; a loaded ASan loop starts late)" "$fb" 140 600
lab_check_range "blackhole-rtt: whole batch ms (no SYN timeout)" \
  "$(lab_field total_ms "$sum")" 200 950

# Cookies and RTTs flushed, a fresh negative cache: nothing is known.
settle_metrics
lab_c ip tcp_metrics flush all
if [ -n "$(lab_c ip tcp_metrics show)" ]; then
  lab_fail "tcp_metrics not empty after the flush: $(lab_c ip tcp_metrics show)"
fi
retrans0=$(lab_counter c TCPSynRetrans)
batch blackhole "$LAB_DIR/cache-bh"
lab_check_range "blackhole: fallback" "$(lab_field fallback "$sum")" "$N" "$N"
# 250 ms race delay (no RTT known) + plain handshake + request: about 350.
lab_check_range "blackhole: whole batch ms (the race, well under 1 s)" \
  "$(lab_field total_ms "$sum")" 250 950
retrans1=$(lab_counter c TCPSynRetrans)
lab_check_range "blackhole: SYNs retransmitted by the kernel" \
  "$((retrans1 - retrans0))" 0 0

batch blackhole-next "$LAB_DIR/cache-bh"
lab_check_range "blackhole-next: skipped" "$(lab_field skipped "$sum")" "$N" "$N"
lab_check_range "blackhole-next: whole batch ms (no race waited for)" \
  "$(lab_field total_ms "$sum")" 90 950

lab_finish
