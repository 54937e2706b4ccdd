#!/bin/bash
# What a connection costs in system calls (issue 15). bench/connrate runs
# N cycles of socket, connect, write, read to EOF, close against a server
# of its own (connrate -S) over loopback in the lab's client namespace,
# with a cookie held, under strace -c: the difference between 1050 and 50
# cycles, per cycle, so that start-up cancels out.
# - Plainly: 6 (socket, connect, write, read, read, close); counted
#   without the reads (4), whose number is the server's timing.
# - Under the shim, the program's thread: at most 2 more (setting
#   TCP_FASTOPEN_CONNECT, and one tcp_info when the handshake has ended);
#   nothing asks the kernel what the program told it (socket type, file
#   flags), nothing checks the cache file, no duplicate, no wake-up.
# - Every thread (strace -f: the shim's keeper too): at most 2.5 more (the
#   keeper looks every 25 ms while SYNs are held: a few hundredths, more
#   on a loaded machine; a wake-up per connection would be 1 or more).
# - tfo_connect_send: at most 3 more (a non-blocking socket made blocking
#   for its caller, and its SO_COOKIE for tfo_result).
# The figures are counts, not times: the same on any machine.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
CR=$top_builddir/bench/connrate
[ -x "$CR" ] || { echo "SKIP: $CR not built"; exit 77; }
[ -e "$SHIM" ] || { echo "SKIP: $SHIM not built"; exit 77; }
command -v strace >/dev/null || { echo "SKIP: strace missing (scripts/deps lab)"; exit 77; }

lab_up || exit 99
lab_c_bg "$CR" -S >"$LAB_DIR/serve.out" 2>&1
_lab_until 100 0.05 grep -q '^port=' "$LAB_DIR/serve.out" || {
  echo "connrate -S did not start"; exit 99; }
PORT=$(sed -n 's/^port=//p' "$LAB_DIR/serve.out")

# calls FILE: the calls on strace -c's total line, less the reads: how
# many reads see the answer and the end is the server's timing (the answer
# and its FIN arrive together or apart), the same with the shim or without.
calls() {
  awk '$NF == "total" { t = $4 } $NF == "read" && $1 ~ /^[0-9.]+$/ { r = $4 }
    END { print t - r }' "$1"
}
# per_cycle HOW [-f]: system calls per cycle; the breakdown goes to the log.
per_cycle() {
  local how=$1 f=${2:-} n env=(env LIBTFO_CACHE="$LAB_DIR/cache")
  [ "$how" = shim ] && env+=(LD_PRELOAD="$SHIM_PRELOAD")
  # A cookie, then a data-acked connection: where later ones start from.
  lab_c "${env[@]}" "$CR" -m "${how/shim/plain}" -p "$PORT" -n 5 >/dev/null
  for n in 50 1050; do
    lab_c "${env[@]}" strace $f -c -o "$LAB_DIR/$how$f-$n" \
      "$CR" -m "${how/shim/plain}" -p "$PORT" -n $n >/dev/null
  done
  awk -v tag="$how${f:+ (every thread)}" '
    FNR == 1 { file++ }
    $NF != "total" && $1 ~ /^[0-9.]+$/ && NF >= 5 { c[file, $NF] = $4; names[$NF] = 1 }
    END {
      s = ""
      for (k in names) { d = (c[2, k] - c[1, k]) / 1000; if (d > 0.0005 || d < -0.0005) s = s " " k "=" sprintf("%.3f", d) }
      print "  " tag ":" s
    }' "$LAB_DIR/$how$f-50" "$LAB_DIR/$how$f-1050" >&2
  awk -v a="$(calls "$LAB_DIR/$how$f-50")" -v b="$(calls "$LAB_DIR/$how$f-1050")" \
    'BEGIN { printf "%.2f\n", (b - a) / 1000 }'
}

plain=$(per_cycle plain)
shim=$(per_cycle shim)
shim_all=$(per_cycle shim -f)
api=$(per_cycle api)
echo "figure: system calls per cycle, reads left out: plain $plain, shim $shim (every thread $shim_all), tfo_connect_send $api"

lab_check_range "plain: system calls per cycle, reads left out" "$plain" 3.99 4.01
lab_check_range "shim, the program's thread: system calls per cycle (plain $plain + 2 at most)" \
  "$shim" "$plain" "$(awk -v p="$plain" 'BEGIN { print p + 2 }')"
lab_check_range "shim, every thread: system calls per cycle (plain $plain + 2.5 at most)" \
  "$shim_all" "$plain" "$(awk -v p="$plain" 'BEGIN { print p + 2.5 }')"
lab_check_range "tfo_connect_send: system calls per cycle (plain $plain + 3 at most)" \
  "$api" "$plain" "$(awk -v p="$plain" 'BEGIN { print p + 3 }')"
lab_check "every cycle of the shim's runs made a TFO connection (server: TCPFastOpenPassive)" \
  [ "$(lab_counter c TCPFastOpenPassive)" -ge 2200 ]

lab_finish
