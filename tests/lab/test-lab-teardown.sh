#!/bin/bash
# test-lab-teardown.sh: a lab leaves nothing behind.
#
#   - lab_down removes our namespaces, helpers and files; a second lab_down
#     is a no-op.
#   - a child bash with a lab up leaves nothing when it gets SIGTERM or
#     SIGHUP, fails under `set -e`, or exits; its exit status is kept and a
#     caller's EXIT trap set before lab_up still runs.
#   - one that is SIGKILLed leaves its lab; lab_sweep removes it.
# "Nothing" = no namespace of that lab listed, no lab-delay or lab-server
# process of it alive, no lab directory.
#
# The children start with SIGHUP and SIGTERM at their default: bash cannot
# trap a signal that was ignored when it started, exec keeps an ignored
# signal ignored, and a test run under nohup (or from a campaign started
# with it) ignores SIGHUP. Such a child rightly stays deaf to SIGHUP; that
# is not what is tested here.

set -eu
LAB_SH=$(cd -- "$(dirname -- "$0")" && pwd)/lab.sh
# shellcheck source=lab.sh
. "$LAB_SH"
lab_require

if ! env --default-signal=HUP,TERM true 2>/dev/null; then
  echo "SKIP: this test needs env --default-signal (GNU coreutils 8.31+)"
  exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tfolab-teardown.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
PORT=8005

# A process counts as gone once it is gone or a zombie.
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || true
  [ -n "$st" ] && [ "$st" != Z ]
}

# stderr: a namespace that another lab is adding or deleting right now (its
# /run/netns file not, or no longer, a mount) makes ip print "Peer netns
# reference is invalid"; it still lists every name.
ns_listed() {
  ip netns list 2>/dev/null | awk '{ print $1 }' | grep -qxF -- "$1"
}

# leftovers C S DIR PIDS...: prints what of that lab is still there.
leftovers() {
  local c=$1 s=$2 dir=$3 pid
  shift 3
  ns_listed "$c" && echo -n "ns $c; "
  ns_listed "$s" && echo -n "ns $s; "
  [ -e "$dir" ] && echo -n "dir $dir; "
  for pid in "$@"; do
    alive "$pid" && echo -n "pid $pid ($(cat /proc/$pid/comm 2>/dev/null)); "
  done
  return 0
}

# drop_lab C S DIR [PIDS...]: removes what a failed case left behind (its
# shell is dead by then), so that this test leaves nothing either way. The
# helpers go with their namespace.
drop_lab() {
  local - ns
  set +e
  for ns in "$1" "$2"; do
    ns_listed "$ns" || continue
    _lab_kill_ns "$ns"
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf -- "$3"
}

# --- lab_down in this shell ---
lab_up --rtt 20 || exit 99
lab_server_bg -p "$PORT" >/dev/null
lab_wait_port "$PORT" || exit 99
info="$LAB_C $LAB_S $LAB_DIR $LAB_DELAY_PIDS $LAB_LAST_PID"
echo "  lab: $info"
set -- $info
lab_check "lab is up: 2 namespaces, 2 lab-delay helpers, the server" \
  [ -z "$(ns_listed "$1" && ns_listed "$2" && alive "$4" && alive "$5" &&
          alive "$6" || echo missing)" ]
lab_down
left=$(leftovers $info)
lab_check "lab_down leaves nothing (${left:-nothing})" [ -z "$left" ]
lab_check "lab_down again is a no-op and succeeds" lab_down
lab_check "lab_down cleared LAB_C/LAB_S" [ -z "${LAB_C:-}${LAB_S:-}" ]

# --- a child bash that is stopped in one of several ways ---
# child NAME BODY: runs a bash that sources lab.sh, has a lab up, writes
# its traps for HUP and TERM to $WORK/NAME.traps and its lab to
# $WORK/NAME.info, then runs BODY. Sets cpid.
child() {
  local name=$1 body=$2
  rm -f "$WORK/$name.info" "$WORK/$name.traps"
  LAB_SH=$LAB_SH INFO=$WORK/$name.info TRAPS=$WORK/$name.traps PORT=$PORT \
    env --default-signal=HUP,TERM bash -c '
    set -eu
    trap "echo ran > \"$INFO.prev\"" EXIT
    . "$LAB_SH"
    lab_up --rtt 20
    lab_server_bg -p "$PORT" >/dev/null
    lab_wait_port "$PORT"
    trap -p HUP TERM > "$TRAPS"
    echo "$LAB_C $LAB_S $LAB_DIR $LAB_DELAY_PIDS $LAB_LAST_PID" > "$INFO.tmp"
    mv "$INFO.tmp" "$INFO"
    '"$body" &
  cpid=$!
}

# await_info NAME: bounded wait for the child's lab; sets info. 60 s at
# least: the child's lab_up, lab_server_bg and lab_wait_port have bounds of
# their own and fail by themselves first (a child that dies ends the wait);
# on a loaded 2-CPU machine with other labs running they took up to 15 s.
await_info() {
  local i
  info=
  for ((i = 0; i < 600; i++)); do
    if [ -s "$WORK/$1.info" ]; then
      info=$(cat "$WORK/$1.info")
      return 0
    fi
    alive "$cpid" || break
    sleep 0.1
  done
  return 1
}

# await_exit: bounded wait for the child; sets status (or 999 if stuck).
# 30 s at least: more than the bounded waits of lab_down add up to (loaded,
# a child exited in up to 3.5 s).
await_exit() {
  local i
  for ((i = 0; i < 300; i++)); do
    alive "$cpid" || break
    sleep 0.1
  done
  status=0
  if alive "$cpid"; then
    kill -KILL "$cpid" 2>/dev/null || true
    { wait "$cpid"; } 2>/dev/null || true
    status=999
    return 0
  fi
  # Braces: the shell's "Killed" job report goes to /dev/null too.
  { wait "$cpid"; } 2>/dev/null || status=$?
}

# give_up LABEL: the child's lab did not come up in time. Fail, stop the
# child (its traps take down what it has; a child still in lab_up must not
# idle on with a lab) and drop whatever is left.
give_up() {
  local dir
  lab_fail "$1: lab did not come up"
  kill -TERM "$cpid" 2>/dev/null || true
  await_exit
  for dir in "${TMPDIR:-/tmp}/tfolab-$cpid".*; do
    drop_lab "tfolab-$cpid-c" "tfolab-$cpid-s" "$dir"
  done
}

# trapped SIG: lab_up's trap for SIG is set in the child (not so if SIG was
# ignored when the child started).
trapped() {
  grep -qF -- "'_lab_on_signal $1 " "$WORK/$1.traps"
}

# Signals: the child idles in short sleeps, so its trap runs promptly.
for sig in TERM HUP; do
  child "$sig" 'while :; do sleep 0.1; done'
  if ! await_info "$sig"; then
    give_up "SIG$sig child"
    continue
  fi
  lab_check "SIG$sig child: lab_up trapped SIG$sig" trapped "$sig"
  kill "-$sig" "$cpid"
  await_exit
  want=$((128 + $(kill -l "$sig")))
  left=$(leftovers $info)
  lab_check "SIG$sig child: exit status $status (want $want)" [ "$status" = "$want" ]
  lab_check "SIG$sig child: leaves nothing (${left:-nothing})" [ -z "$left" ]
  lab_check "SIG$sig child: its own EXIT trap still ran" \
    [ -s "$WORK/$sig.info.prev" ]
  if [ -n "$left" ]; then
    drop_lab $info
  fi
done

# set -e and a failing command.
child false 'false; echo unreachable'
if await_info false; then
  await_exit
  left=$(leftovers $info)
  lab_check "set -e + false child: exit status $status (want 1)" [ "$status" = 1 ]
  lab_check "set -e + false child: leaves nothing (${left:-nothing})" [ -z "$left" ]
  if [ -n "$left" ]; then
    drop_lab $info
  fi
else
  give_up "set -e + false child"
fi

# A plain exit with a status.
child exit3 'exit 3'
if await_info exit3; then
  await_exit
  left=$(leftovers $info)
  lab_check "exit 3 child: exit status $status (want 3)" [ "$status" = 3 ]
  lab_check "exit 3 child: leaves nothing (${left:-nothing})" [ -z "$left" ]
  lab_check "exit 3 child: its own EXIT trap still ran" \
    [ -s "$WORK/exit3.info.prev" ]
  if [ -n "$left" ]; then
    drop_lab $info
  fi
else
  give_up "exit 3 child"
fi

# SIGKILL: no trap can run; the lab stays until lab_sweep.
child kill 'while :; do sleep 0.1; done'
if await_info kill; then
  kill -KILL "$cpid"
  await_exit
  left=$(leftovers $info)
  lab_check "SIGKILL child: its lab is left behind (${left:-nothing})" \
    [ -n "$left" ]
  lab_sweep
  left=$(leftovers $info)
  lab_check "lab_sweep removes it (${left:-nothing})" [ -z "$left" ]
  if [ -n "$left" ]; then
    drop_lab $info
  fi
else
  give_up "SIGKILL child"
fi

lab_finish
