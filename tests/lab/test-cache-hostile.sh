#!/bin/bash
# test-cache-hostile.sh: the negative cache file under attack or damage,
# through the public API in real connections (examples/tfo-client with
# LIBTFO_CACHE, -K for what the cache holds; tfoctl --cache for listing).
# tests/unit/test-cache.c checks the same cases on the internal API; this
# checks what a program sees: never a crash or a hang, a file that is not
# safe is never obeyed (its "skip TFO" entry is ignored, the file is left
# untouched, a private table is used instead), a damaged file of ours is
# rebuilt, and every connection still gets its answer.
#
# The "skip" entry is real: learnt through a blackholing middlebox, then
# copied into each hostile file. Cases: world- and group-writable, foreign
# owner, symlink, hard link, FIFO, directory (not trusted); truncated,
# garbage, empty, another version (rebuilt); an entry stamped in the future
# (ignored), a skip period past the cap (clamped to a day); 8 processes
# writing the file at once.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/api.sh"
lab_require
TFOCTL=$top_builddir/tools/tfoctl
if [ ! -x "$TFO_CLIENT" ] || [ ! -x "$TFOCTL" ]; then
  echo "SKIP: tfo-client or tfoctl not built"; exit 77
fi

PORT=8240
DST=$LAB_S_IP4
SIZE=$((1048576 + 64)) # TFO__CACHE_FILE_SIZE
lab_up --rtt 2 || exit 99
lab_server_bg -p "$PORT" -q 64 >"$LAB_DIR/server.log"
lab_wait_port "$PORT" v4 || exit 99
D=$LAB_DIR/h
mkdir -m 700 "$D"

# client CACHE ARGS...: tfo-client with that cache file, bounded; its
# stderr (libtfo's complaints) in $LAB_DIR/err. Prints the output, and
# "status=N" when it failed.
client() {
  local cache=$1 rc=0
  shift
  lab_c env LIBTFO_CACHE="$cache" timeout 20 "$TFO_CLIENT" "$@" \
    2>"$LAB_DIR/err" || rc=$?
  [ $rc = 0 ] || echo "status=$rc"
}
outcome() { lab_field outcome "$1"; }

# --- the entry: learnt through a blackhole ---------------------------------
lab_mode blackhole
line=$(client "$D/orig" -K "$DST" "$PORT")
lab_check "blackhole: learnt, skip=1 ($line)" grep -q 'cache=blackhole skip=1' <<<"$line"
lab_mode none
line=$(client "$D/orig" -K "$DST" "$PORT")
lab_check "control: a safe file's skip entry is obeyed ($(outcome "$line"))" \
  test "$(outcome "$line")" = skipped
cp -p "$D/orig" "$D/master" # the entry, kept pristine

fresh() { rm -rf "${D:?}/$1"; cp -p "$D/master" "$D/$1"; }

# untrusted LABEL PATH [FILE-THAT-MUST-NOT-CHANGE]
untrusted() {
  local label=$1 path=$2 keep=${3:-} out
  out=$(client "$path" -K "$DST" "$PORT")
  case $(outcome "$out") in
  data-acked|cookie-requested) lab_pass "$label: not obeyed, TFO tried ($(outcome "$out"))" ;;
  *) lab_fail "$label: outcome '$(outcome "$out")' (output: $out)" ;;
  esac
  lab_check "$label: the connection got its answer" grep -q 'resp="OK 6"' <<<"$out"
  lab_check "$label: a private table holds what happened" \
    grep -Eq 'cache=(data-acked|cookie-granted) skip=0' <<<"$out"
  lab_check "$label: libtfo said why ($(head -c 150 "$LAB_DIR/err"))" \
    grep -Eq 'not trusted|symbolic link|private table' "$LAB_DIR/err"
  if [ -n "$keep" ]; then
    lab_check "$label: the file is left as it was" cmp -s "$keep" "$D/master"
  fi
}

fresh ww; chmod 0666 "$D/ww"
untrusted "world-writable" "$D/ww" "$D/ww"
fresh gw; chmod 0620 "$D/gw"
untrusted "group-writable" "$D/gw" "$D/gw"
fresh foreign; chown 65534:65534 "$D/foreign"
untrusted "owned by nobody" "$D/foreign" "$D/foreign"
fresh target; ln -sfn "$D/target" "$D/link"
untrusted "symlink to a good file" "$D/link" "$D/target"
fresh hl; ln -f "$D/hl" "$D/hl2"
untrusted "second hard link" "$D/hl" "$D/hl"
rm -f "$D/fifo"; mkfifo -m 0600 "$D/fifo"
untrusted "FIFO (no hang)" "$D/fifo"
rm -rf "$D/dir"; mkdir -m 0700 "$D/dir"
untrusted "directory" "$D/dir"

# rebuilt LABEL PATH: ours but damaged: rebuilt to a valid table, the old
# entry gone, the new one kept for the next process.
rebuilt() {
  local label=$1 path=$2 out
  out=$(client "$path" -K "$DST" "$PORT")
  case $(outcome "$out") in
  data-acked|cookie-requested) lab_pass "$label: old entry gone, TFO tried ($(outcome "$out"))" ;;
  *) lab_fail "$label: outcome '$(outcome "$out")' (output: $out)" ;;
  esac
  lab_check "$label: the connection got its answer" grep -q 'resp="OK 6"' <<<"$out"
  lab_check_range "$label: file size after" "$(stat -c %s "$path")" "$SIZE" "$SIZE"
  out=$(client "$path" -K "$DST" "$PORT")
  lab_check "$label: the next process finds the new entry" \
    grep -Eq 'cache=(data-acked|cookie-granted) skip=0' <<<"$out"
}

fresh trunc; truncate -s 1000 "$D/trunc"
rebuilt "truncated" "$D/trunc"
fresh half; truncate -s $((SIZE / 2)) "$D/half"
rebuilt "half a file" "$D/half"
rm -f "$D/junk"; head -c "$SIZE" /dev/urandom >"$D/junk"; chmod 0600 "$D/junk"
rebuilt "garbage of the right size" "$D/junk"
rm -f "$D/empty"; : >"$D/empty"; chmod 0600 "$D/empty"
rebuilt "empty file" "$D/empty"
fresh future; printf '\002' | dd of="$D/future" bs=1 seek=8 conv=notrunc status=none
rebuilt "another (future) format version" "$D/future"

# Forged times in the entry's slot (the only slot in use): w[5] expires,
# w[6] updated, ms since the epoch, native byte order.
# shellcheck disable=SC2317 # called through lab_check
forge() { # FILE EXPIRES_DELTA_MS UPDATED_DELTA_MS
  python3 - "$@" <<'PY'
import struct, sys, time
path, dexp, dupd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1000)
with open(path, 'r+b') as f:
    data = bytearray(f.read())
    n = 0
    for off in range(64, len(data), 64):
        w = list(struct.unpack_from('<8Q', data, off))
        if (w[0] >> 48) & 0xff:
            w[5], w[6] = now + dexp, now + dupd
            struct.pack_into('<8Q', data, off, *w)
            n += 1
    f.seek(0); f.write(data)
sys.exit(0 if n == 1 else 1)
PY
}
fresh stamp
lab_check "forged an entry updated 10 days ahead" \
  forge "$D/stamp" $((20 * 86400000)) $((10 * 86400000))
line=$(client "$D/stamp" -K "$DST" "$PORT")
lab_check "entry from the future: ignored, TFO tried ($(outcome "$line"))" \
  grep -Eq 'outcome=(data-acked|cookie-requested)' <<<"$line"
fresh long
lab_check "forged a skip of 30 days" forge "$D/long" $((30 * 86400000)) 0
exp=$(lab_c "$TFOCTL" --json --cache "$D/long" cache list |
  python3 -c 'import json,sys; print(max(e["expires_ms"] for e in json.load(sys.stdin)))')
now=$(date +%s%3N)
lab_check_range "skip of 30 days clamped: hours left" \
  "$(( (exp - now) / 3600000 ))" 0 24
line=$(client "$D/long" "$DST" "$PORT")
lab_check "clamped entry still obeyed for now ($(outcome "$line"))" \
  test "$(outcome "$line")" = skipped

# --- 8 processes writing one file at once -------------------------------
for i in 1 2 3 4 5 6 7 8; do
  lab_server_bg -p $((PORT + i)) -q 64 >"$LAB_DIR/server-$i.log"
done
for i in 1 2 3 4 5 6 7 8; do lab_wait_port $((PORT + i)) v4 || exit 99; done
pids=()
for i in 1 2 3 4 5 6 7 8; do
  lab_c env LIBTFO_CACHE="$D/shared" timeout 60 "$TFO_CLIENT" -n 30 \
    "$DST" $((PORT + i)) >"$LAB_DIR/conc-$i.out" 2>"$LAB_DIR/conc-$i.err" &
  pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
lab_check_range "8 concurrent writers: processes that failed" "$bad" 0 0
ok=$(cat "$LAB_DIR"/conc-*.out | grep -c 'resp="OK 6"' || true)
lab_check_range "8 concurrent writers: connections answered" "$ok" 240 240
acked=$(cat "$LAB_DIR"/conc-*.out | grep -c 'outcome=data-acked' || true)
lab_check_range "8 concurrent writers: TFO data acked" "$acked" 200 240
list=$(lab_c "$TFOCTL" --cache "$D/shared" cache list)
echo "$list"
n=$(grep -c "^$DST:" <<<"$list" || true)
lab_check_range "8 concurrent writers: destinations in the file" "$n" 8 8
lab_check "8 concurrent writers: none skipped" bash -c "! grep -q ' skip ' <<<\"\$1\"" _ "$list"
lab_check_range "8 concurrent writers: file size" "$(stat -c %s "$D/shared")" "$SIZE" "$SIZE"
lab_check "8 concurrent writers: no complaint from libtfo" \
  bash -c '! cat "$@" | grep -q .' _ "$LAB_DIR"/conc-*.err

lab_finish
