#!/bin/bash
# test-keys.sh: server keys, per listener and per namespace (10 ms RTT).
#
#   farm      two tfo_listen listeners given the same 32-byte key file
#             (tfoctl key generate --backup --out) accept each other's
#             cookies; a third with another key refuses them
#             (TCPFastOpenPassiveFail) and hands out its own.
#   rotate    a listener's key file rotated (tfoctl key rotate --file) and
#             applied live (tfo_set_key on SIGHUP): a client holding a
#             cookie of the old key still gets TFO, counted as
#             TCPFastOpenPassiveAltKey, and receives a new cookie, which
#             then works without the backup.
#   sysctl    the same with the namespace's key (tfoctl key set / rotate
#             --persist into a temporary sysctl.d): old cookies pass as
#             AltKey; once the backup is dropped (key set, primary only) an
#             old cookie fails: the backup was what carried it.
#   bad input every key subcommand refuses it with exit 2 (or 1 for a
#             failure), a message, and the key and files unchanged.

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require

H=$LAB_BIN/listen-helper
CTL=${top_builddir:-$LAB_BIN/../..}/tools/tfoctl
for b in "$H" "$CTL"; do
  [ -x "$b" ] || { echo "SKIP: $b is missing"; exit 77; }
done

lab_up --rtt 10 || exit 99
echo "lab: RTT 10 ms, $LAB_C -> $LAB_S"
DST=$LAB_S_IP4
SD=$LAB_DIR/sysctl.d
mkdir -p "$SD"

listener() { # NAME ARGS...: as in test-listen.sh; pid in $LAB_LAST_PID
  local name=$1 i
  shift
  lab_s_bg "$H" -t 40 "$@" >"$LAB_DIR/$name.log" 2>"$LAB_DIR/$name.err"
  for ((i = 0; i < 100; i++)); do
    first=$(head -n 1 "$LAB_DIR/$name.log")
    [ -n "$first" ] && break
    sleep 0.05
  done
  echo "  [$name] $first"
}

# req PORT: one kernel-TFO request; the server's verdict in $syn.
req() {
  line=$(lab_client -m tfo -s 20 "$DST" "$1")
  syn=$(lab_field syn_data "$line")
  echo "  -> :$1 $line"
}

cookie() { # the client's cached cookie for $DST
  lab_c "$CTL" --json cookies list |
    sed -n "s/.*\"address\":\"$DST\",[^}]*\"cookie\":\"\([0-9a-f]*\)\".*/\1/p"
}

alt() { lab_counter s TCPFastOpenPassiveAltKey; }
pfail() { lab_counter s TCPFastOpenPassiveFail; }
mode() { stat -c %a "$1"; }
ok() { eval "$1"; } # lab_check LABEL ok 'CMD && CMD'


# --- farm: one 32-byte key, two listeners ---------------------------------
lab_check "tfoctl key generate --backup --out: exit 0" \
  "$CTL" key generate --backup --out "$LAB_DIR/farm.key"
lab_check "the farm key file is mode $(mode "$LAB_DIR/farm.key") (want 600)" \
  [ "$(mode "$LAB_DIR/farm.key")" = 600 ]
lab_check "it holds a primary and a backup key" \
  grep -Eq '^net\.ipv4\.tcp_fastopen_key = ([0-9a-f]{8}-){3}[0-9a-f]{8},([0-9a-f]{8}-){3}[0-9a-f]{8}$' \
  "$LAB_DIR/farm.key"
"$CTL" key generate --out "$LAB_DIR/other.key" >/dev/null
listener a -p 8200 -k "$LAB_DIR/farm.key"
listener b -p 8201 -k "$LAB_DIR/farm.key"
listener c -p 8202 -k "$LAB_DIR/other.key"

lab_c "$CTL" cookies flush >/dev/null
req 8200
lab_check "farm A, first request: cookie request, syn_data=0" [ "$syn" = 0 ]
req 8200
lab_check "farm A, second: syn_data=1" [ "$syn" = 1 ]
c_a=$(cookie)
req 8201
lab_check "farm B accepts the cookie A granted: syn_data=1 (cookie $c_a)" [ "$syn" = 1 ]
lab_check "and B granted no other cookie ($(cookie))" [ "$(cookie)" = "$c_a" ]
f0=$(pfail)
req 8202
lab_check "listener C (another key) refuses it: syn_data=0, PassiveFail +$(( $(pfail) - f0 ))" \
  [ "$syn/$(( $(pfail) - f0 ))" = 0/1 ]
lab_check "C handed out its own cookie ($(cookie) != $c_a)" [ "$(cookie)" != "$c_a" ]
req 8202
lab_check "C's own cookie works at C: syn_data=1" [ "$syn" = 1 ]

# --- rotate a listener's key, live ----------------------------------------
"$CTL" key generate --out "$LAB_DIR/rot.key" >/dev/null
k1=$(sed -n 's/^net\.ipv4\.tcp_fastopen_key = //p' "$LAB_DIR/rot.key")
listener r -p 8203 -k "$LAB_DIR/rot.key"
rpid=$LAB_LAST_PID
lab_c "$CTL" cookies flush "$DST" >/dev/null
req 8203
req 8203
lab_check "rotation: before, the client has TFO with key 1: syn_data=1" [ "$syn" = 1 ]
c1=$(cookie)
lab_check "tfoctl key rotate --file: exit 0" "$CTL" key rotate --file "$LAB_DIR/rot.key"
k2=$(sed -n 's/^net\.ipv4\.tcp_fastopen_key = //p' "$LAB_DIR/rot.key")
lab_check "the file now holds a new primary and key 1 as backup ($k2), mode $(mode "$LAB_DIR/rot.key")" \
  ok '[ "${k2#*,}/$(mode "$LAB_DIR/rot.key")" = "$k1/600" ] && [ "${k2%,*}" != "$k1" ]'
kill -HUP "$rpid"
for ((i = 0; i < 100; i++)); do
  grep -q '^rekey' "$LAB_DIR/r.log" && break
  sleep 0.05
done
lab_check "the listener applied it with tfo_set_key: $(grep '^rekey' "$LAB_DIR/r.log")" \
  grep -q '^rekeyed len=32$' "$LAB_DIR/r.log"
a0=$(alt)
req 8203
da=$(( $(alt) - a0 ))
lab_check "after rotate, the old cookie still gets TFO: syn_data=1, PassiveAltKey +$da (want 1)" \
  [ "$syn/$da" = 1/1 ]
c2=$(cookie)
lab_check "and the client received a new cookie ($c1 -> $c2)" ok '[ -n "$c2" ] && [ "$c2" != "$c1" ]'
a0=$(alt)
req 8203
da=$(( $(alt) - a0 ))
lab_check "the new cookie works under the new primary: syn_data=1, PassiveAltKey +$da (want 0)" \
  [ "$syn/$da" = 1/0 ]

# --- the namespace's key: tfoctl key set / rotate ---------------------------
listener n -p 8204
K1=01234567-89abcdef-fedcba98-76543210
lab_check "tfoctl key set K1 in the server namespace" lab_s "$CTL" key set "$K1"
show=$(lab_s "$CTL" --json key show)
lab_check "key show: primary K1, no backup ($show)" \
  [ "$show" = "{\"set\":true,\"primary\":\"$K1\",\"backup\":null}" ]
lab_c "$CTL" cookies flush "$DST" >/dev/null
req 8204
req 8204
lab_check "namespace key K1: TFO works (syn_data=1)" [ "$syn" = 1 ]
c1=$(cookie)
lab_check "tfoctl key rotate --persist (into a temporary sysctl.d)" \
  lab_s "$CTL" key rotate --persist --sysctl-dir "$SD"
show=$(lab_s "$CTL" --json key show)
echo "  key show: $show"
lab_check "after rotate: K1 is the backup, a new primary" \
  grep -q "\"backup\":\"$K1\"" <<<"$show"
p2=$(sed -n 's/.*"primary":"\([^"]*\)".*/\1/p' <<<"$show")
lab_check "persisted: $SD/60-libtfo-fastopen-key.conf mode $(mode "$SD/60-libtfo-fastopen-key.conf") holds $p2,$K1" \
  ok 'grep -qx "net.ipv4.tcp_fastopen_key = $p2,$K1" "$SD/60-libtfo-fastopen-key.conf" &&
      [ "$(mode "$SD/60-libtfo-fastopen-key.conf")" = 600 ]'
a0=$(alt)
req 8204
da=$(( $(alt) - a0 ))
lab_check "namespace rotate: old cookie gets TFO, PassiveAltKey +$da (want 1), syn_data=$syn" \
  [ "$syn/$da" = 1/1 ]
c2=$(cookie)
lab_check "new cookie received ($c1 -> $c2)" [ "$c2" != "$c1" ]
a0=$(alt)
req 8204
lab_check "new cookie under the new primary: syn_data=1, no AltKey" \
  [ "$syn/$(( $(alt) - a0 ))" = 1/0 ]
# Control: the persisted file is a key file too; set a fresh primary with no
# backup: a cookie of the previous primary now fails.
K3=0badc0de-00000001-00000002-00000003
lab_s "$CTL" key set "$K3" >/dev/null
f0=$(pfail)
req 8204
lab_check "without a backup, the last cookie is refused: syn_data=0, PassiveFail +$(( $(pfail) - f0 ))" \
  [ "$syn/$(( $(pfail) - f0 ))" = 0/1 ]
lab_check "the persisted sysctl.d file is a valid key file for tfo_listen" \
  lab_s "$H" -p 8299 -k "$SD/60-libtfo-fastopen-key.conf" -t 1

# --- bad input: exit code, message, nothing changed -----------------------
before=$(lab_s "$CTL" --json key show)
cp "$LAB_DIR/other.key" "$LAB_DIR/open.key"
chmod 640 "$LAB_DIR/open.key"
sum_open=$(md5sum <"$LAB_DIR/open.key")
expect() { # WANT_RC LABEL CMD...
  local want=$1 label=$2 rc=0 err
  shift 2
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  lab_check "$label: exit $rc (want $want): ${err%%$'\n'*}" \
    ok '[ "$rc" = "$want" ] && [ -n "$err" ]'
}
expect 2 "key set 1234" lab_s "$CTL" key set 1234
expect 2 "key set with a 7-digit group" lab_s "$CTL" key set 0123456-89abcdef-fedcba98-76543210
expect 2 "key set all zeros" lab_s "$CTL" key set 00000000-00000000-00000000-00000000
expect 2 "key set KEY,garbage" lab_s "$CTL" key set "$K1,zz"
expect 2 "key set KEY with trailing junk" lab_s "$CTL" key set "${K1}x"
expect 2 "key set --file group-readable" lab_s "$CTL" key set --file "$LAB_DIR/open.key"
expect 2 "key set KEY and --file" lab_s "$CTL" key set "$K1" --file "$LAB_DIR/other.key"
expect 2 "key set, nothing" lab_s "$CTL" key set
expect 1 "key set --persist into a missing directory (rolled back)" \
  lab_s "$CTL" key set "$K1" --persist --sysctl-dir "$LAB_DIR/missing"
expect 2 "key rotate --file group-readable" "$CTL" key rotate --file "$LAB_DIR/open.key"
expect 2 "key rotate --file missing" "$CTL" key rotate --file "$LAB_DIR/none.key"
expect 2 "key rotate --file with --persist" "$CTL" key rotate --file "$LAB_DIR/rot.key" --persist
expect 2 "key generate --persist" "$CTL" key generate --persist
expect 2 "key generate --out without a file" "$CTL" key generate --out
expect 2 "key show extra" lab_s "$CTL" key show extra
expect 2 "key frob" "$CTL" key frob
expect 2 "key (no subcommand)" "$CTL" key
lab_check "after all that the namespace key is unchanged" \
  [ "$(lab_s "$CTL" --json key show)" = "$before" ]
lab_check "the refused key file is unchanged" \
  [ "$(md5sum <"$LAB_DIR/open.key")/$(mode "$LAB_DIR/open.key")" = "$sum_open/640" ]
lab_check "no file appeared in the missing directory" [ ! -e "$LAB_DIR/missing" ]

lab_finish
