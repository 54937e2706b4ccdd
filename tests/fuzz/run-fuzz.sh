#!/bin/bash
# Builds the libFuzzer harnesses of tests/fuzz/ with clang (ASan + UBSan)
# and runs each for FUZZ_SECONDS (default 30), FUZZ_JOBS (default: the
# number of CPUs) at a time, from the seeds
# in tests/fuzz/corpus/<name>/. Prints, per harness, its executions and
# crashes; exits non-zero if any harness crashed, failed a check, or could
# not be built.
#
#   tests/fuzz/run-fuzz.sh [NAME...]     (default: every harness)
#   FUZZ_SECONDS=60 FUZZ_DIR=/tmp/fz tests/fuzz/run-fuzz.sh cache
#
# The harnesses compile the lib/ sources they need directly; config.h comes
# from configure, so a minimal one is generated here. New corpus entries and
# crash artifacts go to $FUZZ_DIR (default build-fuzzers/), never into the
# source tree. Reproduce a crash: $FUZZ_DIR/fuzz-NAME $FUZZ_DIR/crash-...
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
secs=${FUZZ_SECONDS:-30}
out=${FUZZ_DIR:-$top/build-fuzzers}
CC=${FUZZ_CC:-clang}
all=(env keyfile cache tfoctl)
names=("${@:-${all[@]}}")

if ! command -v "$CC" >/dev/null ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' |
     "$CC" -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
  echo "run-fuzz: $CC with -fsanitize=fuzzer is needed (Debian: apt-get install clang libclang-rt-dev)" >&2
  exit 1
fi
mkdir -p "$out"
printf '#define _GNU_SOURCE 1\n#define PACKAGE_VERSION "fuzz"\n' >"$out/config.h"

# shellcheck disable=SC2054 # the commas belong to -fsanitize=
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer -I"$out" -I"$top/lib" -I"$top/include" -I"$top/tools")
L=$top/lib
srcs() {
  case $1 in
    env) echo "$L/env.c $L/filter.c $L/log.c" ;;
    keyfile) echo "$L/key.c" ;;
    cache) echo "$L/cache.c $L/log.c $L/env.c $L/sys.c" ;; # not clock.c: the harness has the clock
    tfoctl) echo "$L"/*.c ;; # tools/ link most of lib/
  esac
}
libs() {
  case $1 in
    tfoctl) pkg-config --libs libmnl 2>/dev/null || echo -lmnl; echo -lpthread ;;
    *) echo -lpthread ;;
  esac
}
# Per harness: the longest input, and libFuzzer options.
maxlen() {
  case $1 in
    keyfile) echo 5000 ;; # past TFO__KEY_FILE_MAX (4096)
    cache) echo 1700 ;;   # header + 24 slot records
    *) echo 4096 ;;
  esac
}

fail=0
for n in "${names[@]}"; do
  [ -f "$top/tests/fuzz/fuzz-$n.c" ] || { echo "run-fuzz: no harness fuzz-$n.c"; fail=1; continue; }
  # shellcheck disable=SC2046
  if ! "$CC" "${cflags[@]}" -o "$out/fuzz-$n" "$top/tests/fuzz/fuzz-$n.c" \
       $(srcs "$n") $(libs "$n") 2>"$out/build-$n.log"; then
    cat "$out/build-$n.log"; echo "run-fuzz: $n: build failed"; fail=1
  fi
done
[ $fail = 0 ] || exit 1

# As many at a time as there are CPUs, so that each gets a whole one and
# the figures mean the same on any machine.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
pids=() rcs=()
k=0
for n in "${names[@]}"; do
  if [ $k -ge "$jobs" ]; then
    wait "${pids[k - jobs]}"; rcs[k - jobs]=$?
  fi
  k=$((k + 1))
  rm -f "$out/crash-$n-"* "$out/leak-$n-"* "$out/timeout-$n-"* "$out/oom-$n-"*
  mkdir -p "$out/corpus-$n" "$out/tmp"
  ( cd "$out" && TMPDIR=$out/tmp ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
      ./fuzz-"$n" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -max_len="$(maxlen "$n")" -print_final_stats=1 \
      -artifact_prefix="$out/" "corpus-$n" "$top/tests/fuzz/corpus/$n" \
      >"$out/fuzz-$n.log" 2>&1 ) &
  pids+=($!)
done
i=0
for n in "${names[@]}"; do
  if [ -z "${rcs[i]:-}" ]; then wait "${pids[i]}"; rcs[i]=$?; fi
  rc=${rcs[i]}; i=$((i + 1))
  done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$out/fuzz-$n.log" | tail -n 1)
  crashes=$(grep -cE '^(==[0-9]+==ERROR|.*deadly signal|SUMMARY: )' "$out/fuzz-$n.log")
  if [ "$rc" = 0 ] && [ -n "$done_line" ]; then
    runs=$(echo "$done_line" | awk '{print $2}')
    echo "fuzz $n: $runs executions in ${secs} s, 0 crashes ($done_line)"
  else
    echo "fuzz $n: FAILED (exit $rc, $crashes error reports); log $out/fuzz-$n.log:"
    grep -E -A 25 'ERROR|deadly signal|runtime error' "$out/fuzz-$n.log" | head -n 60
    ls "$out"/crash-* "$out"/timeout-* "$out"/oom-* "$out"/leak-* 2>/dev/null
    fail=1
  fi
done
rm -rf "$out/tmp" # the harnesses' scratch files, should one have been killed
exit $fail
