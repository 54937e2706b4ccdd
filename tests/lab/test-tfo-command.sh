#!/bin/bash
# The tfo command and tfoctl service (issue 16).
#  1. tfo's answers to bad input (exit 125 and a message naming the
#     option, nothing run), COMMAND missing (127) or not runnable (126),
#     COMMAND's own status and signal, LD_PRELOAD appended once, each
#     option's variable, --print-env for a shell and for systemd, the
#     warning for a set-user-ID program (which still runs).
#  2. 50 ms RTT: `tfo curl` makes a repeat request one round trip shorter
#     than curl alone, over HTTP and over HTTPS (TLS 1.3: 3 round trips
#     become 2), and the client's TCPFastOpenActive rises.
#  3. tfoctl service enable|status|disable in a --root tree: the drop-in's
#     text, bad input refused with nothing changed, and a daemon started
#     with the drop-in's environment accepts Fast Open connections.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
TFO=$top_builddir/tools/tfo
TFOCTL=$top_builddir/tools/tfoctl
[ -x "$TFO" ] || { echo "SKIP: tools/tfo not built (--disable-preload)"; exit 77; }
for p in curl openssl "$PY"; do
  command -v "$p" >/dev/null || { echo "SKIP: $p missing (scripts/deps programs)"; exit 77; }
done
RTT=50
lab_up --rtt "$RTT" || exit 99
T=$LAB_DIR/t
mkdir -p "$T"

# run_tfo ARGS...: tfo's status in rc, its stdout in out, stderr in err.
run_tfo() {
  rc=0
  "$TFO" "$@" >"$T/out" 2>"$T/err" || rc=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}
# expect LABEL RC [GREP-ON-STDERR]
expect() {
  if [ "$rc" = "$2" ] && { [ -z "${3:-}" ] || grep -q -- "$3" <<<"$err"; }; then
    lab_pass "$1: exit $rc${3:+, says '$3'}"
  else
    lab_fail "$1: exit $rc (want $2${3:+, stderr with '$3'}): $err"
  fi
}

# ---------------------------------------------------------------- 1. tfo
touch "$T/ran"
rm -f "$T/ran"
for bad in "--qlen 0" "--qlen 65536" "--qlen 1x" "--log 4" "--ports 0" \
           "--ports 90-80" "--exclude 300.1.1.1" "--cache relative/path" \
           "--preload lib.so" "--stats=1" "--print-env=fish" "--bogus" "--qlen"; do
  # shellcheck disable=SC2086
  run_tfo $bad touch "$T/ran"
  opt=${bad%% *}
  expect "bad input '$bad'" 125 "${opt%%=*}"
  [ ! -e "$T/ran" ] || lab_fail "bad input '$bad': the command ran"
done
run_tfo
expect "no COMMAND" 125 usage
run_tfo --preload /nonexistent/libtfo_preload.so true
expect "no shim at the path" 125 /nonexistent/libtfo_preload.so
run_tfo --preload "$SHIM" no-such-command-libtfo
expect "COMMAND not found" 127 "command not found"
printf 'x\n' >"$T/notexec"
run_tfo --preload "$SHIM" "$T/notexec"
expect "COMMAND not executable" 126 "Permission denied"
run_tfo --preload "$SHIM" sh -c 'exit 7'
expect "COMMAND's own status" 7
run_tfo --preload "$SHIM" sh -c 'kill -TERM $$'
expect "COMMAND killed by a signal" 143
run_tfo --preload "$SHIM" -- sh -c 'echo "$0 $1"' a --qlen
lab_check "after --, options are COMMAND's" test "$out" = "a --qlen"

# LD_PRELOAD: appended after what is there, once.
libc=$(ldd /bin/true | awk '/libc\.so/ { print $3 }')
rc=0
out=$(LD_PRELOAD=$libc "$TFO" --preload "$SHIM" sh -c 'echo "$LD_PRELOAD"') || rc=$?
lab_check "LD_PRELOAD appended to the program's" test "$out" = "$libc:$SHIM"
out=$(LD_PRELOAD="$libc $SHIM" "$TFO" --preload "$SHIM" sh -c 'echo "$LD_PRELOAD"')
lab_check "LD_PRELOAD: the shim not listed twice" test "$out" = "$libc $SHIM"
run_tfo --preload "$SHIM" --no-client --no-server --qlen 77 --ports 80,443 \
  --exclude 10.0.0.0/8 --cache off --log 0 --stats env
for kv in LIBTFO_CLIENT=0 LIBTFO_SERVER=0 LIBTFO_QLEN=77 LIBTFO_PORTS=80,443 \
          LIBTFO_EXCLUDE=10.0.0.0/8 LIBTFO_CACHE=off LIBTFO_LOG=0 LIBTFO_STATS=1 \
          "LD_PRELOAD=$SHIM"; do
  lab_check "option sets $kv" grep -qxF "$kv" <<<"$out"
done
rc=0
LIBTFO_QLEN=5 "$TFO" --preload "$SHIM" env >"$T/out" || rc=$?
lab_check "a variable no option names passes as it is" grep -qx LIBTFO_QLEN=5 "$T/out"

# --print-env: for a shell (eval), for a unit file.
out=$(env -u LD_PRELOAD bash -c 'eval "$("$1" --preload "$2" --qlen 9 --exclude "10.0.0.0/8 192.0.2.1" --print-env)" &&
  echo "$LD_PRELOAD|$LIBTFO_QLEN|$LIBTFO_EXCLUDE"' _ "$TFO" "$SHIM")
lab_check "--print-env: a shell takes it" test "$out" = "$SHIM|9|10.0.0.0/8 192.0.2.1"
run_tfo --preload "$SHIM" --cache '/run/a%b' --print-env=systemd
lab_check "--print-env=systemd" test "$out" = "Environment=\"LD_PRELOAD=$SHIM\"
Environment=\"LIBTFO_CACHE=/run/a%%b\""
run_tfo --preload "$SHIM" --print-env true
expect "--print-env with a COMMAND" 125 "takes no COMMAND"

# A set-user-ID program owned by someone else: the loader will drop the
# shim; tfo says so and runs it.
install -o nobody -m 4755 /bin/true "$T/suid-true"
run_tfo --preload "$SHIM" "$T/suid-true"
expect "set-user-ID COMMAND: runs, with a warning" 0 "set-user-ID"
install -o root -g nogroup -m 2755 /bin/true "$T/sgid-true"
run_tfo --preload "$SHIM" "$T/sgid-true"
expect "set-group-ID COMMAND: runs, with a warning" 0 "set-group-ID"
run_tfo --preload "$SHIM" /bin/true
lab_check "an ordinary COMMAND: no warning" test -z "$err"

# ---------------------------------------------------------- 2. in the lab
shim_www
shim_http_bg 8080
shim_https_bg 8443 "$LAB_DIR/www"
lab_wait_port 8080 v4 || exit 99
lab_wait_port 8443 v4 || exit 99
# curl_ms URL [tfo ARGS...]: one request's time_total in ms; the body checked.
curl_ms() {
  local url=$1
  shift
  lab_c "$@" curl -k -s -o "$T/body" -w '%{time_total}\n' "$url" |
    awk '{ printf "%.1f\n", $1 * 1000 }'
  [ "$(sha256sum <"$T/body" | cut -d' ' -f1)" = "$BLOB_SUM" ] ||
    lab_fail "$url: body differs (${*:-plain})"
}
for scheme in http https; do
  if [ $scheme = http ]; then url=http://$LAB_S_IP4:8080/blob
  else url=https://$LAB_S_IP4:8443/blob; fi
  lab_c ip tcp_metrics flush all
  base=()
  for i in 1 2 3 4 5; do base+=("$(curl_ms "$url")"); done
  tfo_run=("$TFO" --preload "$SHIM" --cache "$LAB_DIR/cache")
  a0=$(lab_counter c TCPFastOpenActive)
  curl_ms "$url" "${tfo_run[@]}" >/dev/null # the cookie
  got=()
  for i in 1 2 3 4 5; do got+=("$(curl_ms "$url" "${tfo_run[@]}")"); done
  a1=$(lab_counter c TCPFastOpenActive)
  bmin=$(printf '%s\n' "${base[@]}" | sort -n | head -n 1)
  gmin=$(printf '%s\n' "${got[@]}" | sort -n | head -n 1)
  echo "$scheme: curl ${base[*]} ms; tfo curl, repeats ${got[*]} ms"
  # The least of each: load only adds to a run. ~1 RTT saved (50 ms); a
  # 2-CPU machine running four lab tests at once was seen to give 83 ms
  # (TLS's CPU time in the runs compared), so 20..100: not 0, not 2 RTT.
  lab_check_range "$scheme: round trip saved by tfo curl (ms, ~1 RTT)" \
    "$(awk -v a="$bmin" -v b="$gmin" 'BEGIN { printf "%.1f", a - b }')" 20 100
  lab_check_range "$scheme: TCPFastOpenActive rise" "$((a1 - a0))" 5 5
done
out=$(lab_c "$TFO" --preload "$SHIM" --cache "$LAB_DIR/cache" --stats \
  curl -s -o /dev/null "http://$LAB_S_IP4:8080/blob" 2>&1)
lab_check "tfo --stats: the shim's line, data-acked" \
  grep -q 'attempts=1 data_acked=1 ' <<<"$out"

# -------------------------------------------------------- 3. tfoctl service
R=$LAB_DIR/root
D=$R/etc/systemd/system/lab-www.service.d
mkdir -p "$R"
svc() {
  rc=0
  "$TFOCTL" "$@" >"$T/out" 2>"$T/err" || rc=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}
svc service enable lab-www --root "$R" --preload "$SHIM"
expect "service enable without etc/systemd/system" 1 "is systemd installed"
lab_check "... created nothing" test -z "$(ls -A "$R")"
mkdir -p "$R/etc/systemd/system"
svc service enable lab-www --root "$R" --preload "$SHIM" --no-client --qlen 64
expect "service enable" 0
lab_check "... tells to reload and restart" grep -q 'systemctl daemon-reload && systemctl restart lab-www.service' <<<"$out"
lab_check "drop-in: the shim and the settings" test "$(grep -v '^#' "$D/libtfo.conf")" = "[Service]
Environment=\"LD_PRELOAD=$SHIM\"
Environment=\"LIBTFO_CLIENT=0\"
Environment=\"LIBTFO_QLEN=64\""
sum=$(sha256sum <"$D/libtfo.conf")
for bad in "enable a/b" "enable x.socket" "enable lab-www --qlen 0" \
           "enable lab-www --root relative" "enable lab-www --bogus" \
           "enable" "frobnicate lab-www" "status lab-www --qlen 5" \
           "enable lab-www other-unit"; do
  # shellcheck disable=SC2086
  svc service $bad --root "$R" --preload "$SHIM"
  expect "service $bad" 2
done
lab_check "bad input left the drop-in as it was" test "$(sha256sum <"$D/libtfo.conf")" = "$sum"
svc service status lab-www --root "$R"
expect "service status (enabled)" 0
svc --json service status lab-www.service --root "$R"
lab_check "service status --json" grep -qF '"unit":"lab-www.service","enabled":true' <<<"$out"

# The drop-in's environment, as systemd would give it to the daemon: the
# listener gets a TFO queue (LIBTFO_QLEN=64) from the shim.
mapfile -t envs < <(sed -n 's/^Environment="\(.*\)"$/\1/p' "$D/libtfo.conf")
lab_s_bg env "${envs[@]}" "$PY" -m http.server -b "$LAB_S_IP4" -d "$LAB_DIR/www" 8090 \
  >"$LAB_DIR/http-8090.log" 2>&1
lab_wait_port 8090 v4 || exit 99
p0=$(lab_counter s TCPFastOpenPassive)
for i in 1 2 3; do curl_ms "http://$LAB_S_IP4:8090/blob" "${tfo_run[@]}" >/dev/null; done
p1=$(lab_counter s TCPFastOpenPassive)
lab_check_range "daemon under the drop-in's environment: TCPFastOpenPassive rise" "$((p1 - p0))" 2 3

svc service disable lab-www --root "$R"
expect "service disable" 0
lab_check "... the drop-in and its directory are gone" test ! -e "$D"
svc service status lab-www --root "$R"
expect "service status (not enabled)" 1
svc service disable lab-www --root "$R"
expect "service disable again: nothing to do" 0 ""
mkdir -p "$D"
touch "$D/operator.conf"
svc service enable lab-www --root "$R" --preload "$SHIM"
svc service disable lab-www --root "$R"
lab_check "disable keeps the operator's own drop-ins" test -e "$D/operator.conf"

lab_finish
