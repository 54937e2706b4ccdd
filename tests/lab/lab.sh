# lab.sh -- the libtfo network lab. Source it from bash (tests, demo,
# benchmarks); it needs root.
#
# A lab is two network namespaces joined by a veth pair:
#
#   client  $LAB_C  veth0  198.18.0.1/24  2001:2::1/64
#   server  $LAB_S  veth0  198.18.0.2/24  2001:2::2/64
#
# Nothing is added to the root namespace: no interface, no rule, no sysctl.
# The kernel has no netem, so RTT is emulated by lab-delay, a userspace
# NFQUEUE helper: one per namespace, each holding what arrives on its veth0
# for RTT/2 (see _lab_start_delay for why ingress only). Middlebox modes
# (lab_mode) are iptables rules on the server's ingress, after the delay.
#
#   lab_up [--rtt MS] [--mode MODE] [--client-bit-off] [--server-bit-off]
#   lab_mode none|blackhole|dropdata|strip|rstdata|sticky
#   lab_c CMD... / lab_s CMD...         run in the client/server namespace
#   lab_c_bg CMD... / lab_s_bg CMD...   same, in the background; sets
#                                       LAB_LAST_PID (do not call these in
#                                       $(...): the pid would be lost)
#   lab_wait_port PORT [v4|v6]          wait until the server ns listens
#   lab_counters c|s                    TcpExt FastOpen counters, "Name value"
#   lab_counter c|s NAME                one counter (TcpExt, Tcp, Ip, ...)
#   lab_down                            tear everything down (idempotent)
#   lab_sweep [MIN_AGE_S]               remove labs left by dead shells
#   lab_require                         exit 77 (skip) if the lab cannot run
#   lab_client ARGS... / lab_server_bg ARGS...
#                                       lab-client in the client ns /
#                                       lab-server in the server ns (bg)
#   lab_field KEY LINE                  value of KEY=... in a result line
#   lab_median                          median of the numbers on stdin
#   lab_pass MSG / lab_fail MSG         print PASS:/FAIL: lines, count them
#   lab_check_range LABEL VALUE LO HI   PASS if LO <= VALUE <= HI
#   lab_check LABEL CMD...              PASS if CMD succeeds
#   lab_finish                          print the count, exit 0 or 1
#
# lab_up installs EXIT/INT/TERM/HUP traps that call lab_down and keep the
# script's exit status (a caller's earlier EXIT trap still runs). A trap runs
# only when the foreground command returns, so keep foreground commands
# short (everything in this lab is bounded; prefer `sleep 0.1` loops).
# A signal that was ignored when the shell started cannot be trapped: it
# stays ignored, and the lab stays up until the script ends some other way.
# nohup ignores HUP, and so does everything started under it; a background
# job of a script ignores INT. To make such a signal count again, start the
# script with `env --default-signal=HUP,INT`.
#
# Binaries (lab-delay, lab-server, lab-client) come from $LAB_BIN; default
# $top_builddir/tests/lab when top_builddir is set, else the first of this
# file's folder, ., ./tests/lab that has them.
# Files of a lab (helper logs, whatever a test puts there) live in $LAB_DIR,
# removed by lab_down unless LAB_KEEP_DIR is set.

if [ -z "${LAB_BIN:-}" ]; then
  if [ -n "${top_builddir:-}" ]; then
    LAB_BIN=$top_builddir/tests/lab
  else
    # This file's folder; in a VPATH build that is the source tree, so also
    # try where automake runs tests from (the build folder of this
    # directory, or the top one).
    for LAB_BIN in "$(dirname -- "${BASH_SOURCE[0]}")" . tests/lab; do
      [ -x "$LAB_BIN/lab-delay" ] && break
    done
    [ -x "$LAB_BIN/lab-delay" ] || LAB_BIN=$(dirname -- "${BASH_SOURCE[0]}")
  fi
fi
# Absolute, so that it survives a cd in the caller.
LAB_BIN=$(cd -- "$LAB_BIN" 2>/dev/null && pwd || printf '%s\n' "$LAB_BIN")

LAB_C_IP4=198.18.0.1
LAB_S_IP4=198.18.0.2
LAB_C_IP6=2001:2::1
LAB_S_IP6=2001:2::2
export LAB_BIN LAB_C_IP4 LAB_S_IP4 LAB_C_IP6 LAB_S_IP6

# Queue number of lab-delay. Queues are per network namespace, so every lab
# can use the same number.
_LAB_QUEUE=0
_LAB_PIDS=()
_LAB_TRAPS=
_LAB_PREV_EXIT=


_lab_err() {
  printf 'lab: %s\n' "$*" >&2
}


# Run a command; on failure say what failed and return 1.
_lab_do() {
  "$@" && return 0
  _lab_err "failed: $*"
  return 1
}


# Bounded poll: _lab_until TRIES INTERVAL CMD... ; 0 once CMD succeeds.
_lab_until() {
  local tries=$1 interval=$2 i
  shift 2
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep "$interval"
  done
  return 1
}


_lab_ns() {
  _lab_need_up || return 1
  case ${1:-} in
  c) printf '%s\n' "$LAB_C" ;;
  s) printf '%s\n' "$LAB_S" ;;
  *) _lab_err "expected c or s, got '${1:-}'"; return 1 ;;
  esac
}


# Write sysctls in a namespace: _lab_sysctl NS key=value...
# Goes through /proc/sys, which shows the namespace of the writer.
_lab_sysctl() {
  local ns=$1
  shift
  ip netns exec "$ns" sh -c '
    for kv in "$@"; do
      k=${kv%%=*}
      printf "%s\n" "${kv#*=}" > "/proc/sys/$(printf %s "$k" | tr . /)" || exit 1
    done' sh "$@"
}


# A pid is alive unless it is gone or a zombie (a zombie has exited; its
# parent just has not reaped it yet). No fork: this runs in wait loops.
_lab_pid_alive() {
  local stat
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}


_lab_need_up() {
  if [ -z "${LAB_C:-}" ] || [ -z "${LAB_S:-}" ]; then
    _lab_err "no lab is up (call lab_up first)"
    return 1
  fi
}


_lab_on_exit() {
  local rc=$?
  trap - EXIT
  lab_down
  if [ -n "$_LAB_PREV_EXIT" ]; then
    eval "$_LAB_PREV_EXIT"
  fi
  exit "$rc"
}


_lab_on_signal() {
  # 128 + signal number, like a shell killed by it. The EXIT trap then runs
  # lab_down (a no-op by then) and keeps this status.
  trap - "$1"
  lab_down
  exit "$2"
}


_lab_install_traps() {
  local prev

  # Per shell: a subshell inherits the variable but not the traps.
  [ "$_LAB_TRAPS" = "${BASHPID:-$$}" ] && return 0
  _LAB_TRAPS=${BASHPID:-$$}

  # Keep a caller's EXIT trap: `trap -p` prints "trap -- 'cmd' EXIT".
  prev=$(trap -p EXIT)
  if [ -n "$prev" ]; then
    eval "prev=( $prev )"
    _LAB_PREV_EXIT=${prev[2]}
  fi

  trap _lab_on_exit EXIT
  trap '_lab_on_signal INT 130' INT
  trap '_lab_on_signal TERM 143' TERM
  trap '_lab_on_signal HUP 129' HUP
}


lab_require() {
  local t

  if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the network lab needs root"
    exit 77
  fi
  for t in ip iptables ip6tables iptables-restore ip6tables-restore ipset ss awk stat \
           mktemp sleep; do
    if ! command -v "$t" >/dev/null 2>&1; then
      echo "SKIP: the network lab needs '$t'"
      exit 77
    fi
  done
  for t in lab-delay lab-server lab-client; do
    if [ ! -x "$LAB_BIN/$t" ]; then
      echo "SKIP: $LAB_BIN/$t is missing (build it, or set LAB_BIN)"
      exit 77
    fi
  done
  if ! ip netns add "tfolab-${BASHPID:-$$}-p" 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here"
    exit 77
  fi
  ip netns del "tfolab-${BASHPID:-$$}-p" 2>/dev/null || true
}


# lab_sweep [MIN_AGE_S]: remove tfolab-PID-* namespaces (and their
# processes, and /tmp/tfolab-PID.* folders) whose PID is dead. With
# MIN_AGE_S, only those at least that old: lab_up sweeps with 30 so that it
# never races a test that is looking at a lab it has just killed.
lab_sweep() {
  local - ns pid dir min_age=${1:-0} now born
  set +e

  now=$(date +%s)
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
    case $ns in
    tfolab-*-?) ;;
    *) continue ;;
    esac
    pid=${ns#tfolab-}
    pid=${pid%-?}
    case $pid in
    ''|*[!0-9]*) continue ;;
    esac
    _lab_pid_alive "$pid" && continue
    if [ "$min_age" -gt 0 ]; then
      born=$(stat -c %Y "/run/netns/$ns" 2>/dev/null) || born=0
      [ $((now - born)) -lt "$min_age" ] && continue
    fi
    _lab_kill_ns "$ns"
    ip netns del "$ns" 2>/dev/null
  done

  for dir in "${TMPDIR:-/tmp}"/tfolab-*.*; do
    [ -d "$dir" ] || continue
    pid=${dir##*/tfolab-}
    pid=${pid%%.*}
    case $pid in
    ''|*[!0-9]*) continue ;;
    esac
    _lab_pid_alive "$pid" && continue
    if [ "$min_age" -gt 0 ]; then
      born=$(stat -c %Y "$dir" 2>/dev/null) || born=0
      [ $((now - born)) -lt "$min_age" ] && continue
    fi
    rm -rf -- "$dir"
  done
  return 0
}


# Kill every process in a namespace: TERM, a bounded wait, then KILL.
_lab_kill_ns() {
  local ns=$1 pids i

  pids=$(ip netns pids "$ns" 2>/dev/null)
  [ -n "$pids" ] || return 0
  kill -TERM $pids 2>/dev/null
  for ((i = 0; i < 40; i++)); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] || return 0
    sleep 0.05
  done
  kill -KILL $pids 2>/dev/null
  return 0
}


lab_down() {
  local - ns pid i
  set +e

  # Processes first (lab-delay among them: on TERM it releases what it
  # holds), so nothing keeps a namespace alive after its name is gone.
  for ns in "${LAB_C:-}" "${LAB_S:-}"; do
    [ -n "$ns" ] && _lab_kill_ns "$ns"
  done

  # Our background jobs: normally gone with their namespace; reap them, and
  # kill any that never got into one.
  for pid in "${_LAB_PIDS[@]}"; do
    if _lab_pid_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null
      for ((i = 0; i < 20; i++)); do
        _lab_pid_alive "$pid" || break
        sleep 0.05
      done
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  _LAB_PIDS=()

  for ns in "${LAB_C:-}" "${LAB_S:-}"; do
    [ -n "$ns" ] || continue
    ip netns del "$ns" 2>/dev/null
    # A namespace still listed means deletion failed: retry, bounded.
    for ((i = 0; i < 20; i++)); do
      ip netns list 2>/dev/null | awk '{ print $1 }' | grep -qxF -- "$ns" || break
      sleep 0.05
      ip netns del "$ns" 2>/dev/null
    done
  done

  if [ -n "${LAB_DIR:-}" ] && [ -d "$LAB_DIR" ]; then
    if [ -n "${LAB_KEEP_DIR:-}" ]; then
      _lab_err "kept $LAB_DIR"
    else
      rm -rf -- "$LAB_DIR"
    fi
  fi

  unset LAB_C LAB_S LAB_DIR LAB_RTT LAB_MODE LAB_DELAY_PIDS LAB_LAST_PID
  return 0
}


lab_c() {
  _lab_need_up || return 1
  ip netns exec "$LAB_C" "$@"
}


lab_s() {
  _lab_need_up || return 1
  ip netns exec "$LAB_S" "$@"
}


lab_c_bg() {
  _lab_need_up || return 1
  ip netns exec "$LAB_C" "$@" &
  LAB_LAST_PID=$!
  _LAB_PIDS+=("$LAB_LAST_PID")
}


lab_s_bg() {
  _lab_need_up || return 1
  ip netns exec "$LAB_S" "$@" &
  LAB_LAST_PID=$!
  _LAB_PIDS+=("$LAB_LAST_PID")
}


_lab_listening() {
  [ -n "$(ip netns exec "$LAB_S" ss -Hltn $1 "sport = :$2" 2>/dev/null)" ]
}


# v4 looks at AF_INET listeners, v6 at AF_INET6 ones (a dual-stack [::]
# listener counts as v6 only), none at either.
lab_wait_port() {
  local port=${1:-} fam

  _lab_need_up || return 1
  if ! [[ $port =~ ^[0-9]+$ ]]; then
    _lab_err "usage: lab_wait_port PORT [v4|v6]"
    return 1
  fi

  case ${2:-} in
  v4) fam=-4 ;;
  v6) fam=-6 ;;
  '') fam= ;;
  *) _lab_err "lab_wait_port: family must be v4 or v6"; return 1 ;;
  esac

  if ! _lab_until 100 0.05 _lab_listening "$fam" "$port"; then
    _lab_err "nothing listens on port $port in $LAB_S after 5 s"
    return 1
  fi
}


# Print "Name value" for every counter of /proc/net/netstat and
# /proc/net/snmp of a namespace. Lines come in pairs, names then values,
# each starting with the same "Prefix:".
_lab_all_counters() {
  local ns
  ns=$(_lab_ns "$1") || return 1
  ip netns exec "$ns" cat /proc/net/netstat /proc/net/snmp | awk '
    $1 != prev { for (i = 2; i <= NF; i++) name[i] = $i; prev = $1; next }
    { for (i = 2; i <= NF; i++) print name[i], $i; prev = "" }'
}


lab_counters() {
  _lab_all_counters "$1" | awk '
    $1 ~ /^TCPFastOpen/ || $1 == "TCPSynRetrans" || $1 == "TCPOrigDataSent"'
}


lab_counter() {
  local v
  v=$(_lab_all_counters "$1" | awk -v n="${2:-}" '
    $1 == n { print $2; exit }')
  if [ -z "$v" ]; then
    _lab_err "no counter '${2:-}' (usage: lab_counter c|s NAME)"
    return 1
  fi
  printf '%s\n' "$v"
}


# lab_kv KEY FILE: the value of the first KEY=... in FILE, empty if none
# (no fork: a loaded machine, and waits call it in loops).
lab_kv() {
  local line w
  [ -r "$2" ] || return 0
  while read -r line; do
    for w in $line; do
      if [[ $w == "$1="* ]]; then
        printf '%s\n' "${w#*=}"
        return 0
      fi
    done
  done <"$2"
}

# Value of KEY in a lab-client/lab-server line: lab_field ms "ms=51.2 ..."
# Quotes around a value are dropped.
lab_field() {
  printf '%s\n' "$2" | awk -v k="$1" '{
    for (i = 1; i <= NF; i++)
      if (index($i, k "=") == 1) {
        v = substr($i, length(k) + 2)
        # A quoted value may hold blanks: rejoin up to the closing quote.
        if (v ~ /^"/) {
          while (v !~ /.+"$/ && i < NF) v = v " " $(++i)
          gsub(/"/, "", v)
        }
        print v
        exit
      }
  }'
}


lab_median() {
  sort -g | awk '{ v[NR] = $1 }
    END {
      if (NR == 0) exit 1
      if (NR % 2) print v[(NR + 1) / 2]
      else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}


# Rules that match a SYN carrying payload: _lab_syn_payload_rules 4|6 TARGET.
# The length match sees the whole IP packet, so "has payload" depends on the
# TCP header length: one rule per data offset (5..15 words), the offset read
# with u32. IPv4 without IP options (Linux sends none); IPv6 with TCP right
# after the fixed header (no extension headers).
_lab_syn_payload_rules() {
  local fam=$1 target=$2 doff ip hdr u32

  for ((doff = 5; doff <= 15; doff++)); do
    if [ "$fam" = 4 ]; then
      ip=20
      u32="0>>24&0xF=5&&32>>28=$doff"
    else
      ip=40
      u32="4>>8&0xFF=6&&52>>28=$doff"
    fi
    hdr=$((ip + 4 * doff))
    printf -- '-A TFOLAB_MODE -p tcp --syn -m u32 --u32 %s -m length --length %d:65535 -j %s\n' \
      "$u32" $((hdr + 1)) "$target"
  done
}


# iptables-restore input for one family and mode. Declaring our chains with
# --noflush empties them (and only them); the hooks into INPUT/PREROUTING
# are added once by lab_up.
_lab_mode_ruleset() {
  local fam=$1 mode=$2

  echo '*filter'
  echo ':TFOLAB_MODE - [0:0]'
  case $mode in
  blackhole)
    # Option 34, and 254: the kernel retries a cookie request that got no
    # answer in the old experimental format (kind 254, magic 0xF989). A box
    # that drops one drops the other.
    echo '-A TFOLAB_MODE -p tcp --syn -m tcp --tcp-option 34 -j DROP'
    echo '-A TFOLAB_MODE -p tcp --syn -m tcp --tcp-option 254 -j DROP' ;;
  dropdata)
    _lab_syn_payload_rules "$fam" DROP ;;
  rstdata)
    _lab_syn_payload_rules "$fam" 'REJECT --reject-with tcp-reset' ;;
  sticky)
    # Drops SYNs carrying option 34 (or 254) like blackhole, and from then
    # on every SYN from the same source address and port: the kernel's
    # own retransmission (no option) dies too. Only a new source port gets
    # through.
    echo "-A TFOLAB_MODE -p tcp --syn -m set --match-set tfolab_sticky$fam src,src -j DROP"
    for o in 34 254; do
      echo "-A TFOLAB_MODE -p tcp --syn -m tcp --tcp-option $o -j SET --add-set tfolab_sticky$fam src,src --exist"
      echo "-A TFOLAB_MODE -p tcp --syn -m tcp --tcp-option $o -j DROP"
    done ;;
  esac
  echo 'COMMIT'
  echo '*mangle'
  echo ':TFOLAB_MODE - [0:0]'
  if [ "$mode" = strip ]; then
    # 254 too: see blackhole.
    echo '-A TFOLAB_MODE -p tcp --syn -j TCPOPTSTRIP --strip-options 34,254'
  fi
  echo 'COMMIT'
}


lab_mode() {
  local mode=${1:-}

  case $mode in
  none|blackhole|dropdata|strip|rstdata|sticky) ;;
  *) _lab_err "usage: lab_mode none|blackhole|dropdata|strip|rstdata|sticky"
     return 1 ;;
  esac
  _lab_need_up || return 1

  # sticky's memory of source ports: ipset sets, new with each lab_mode.
  if [ "$mode" = sticky ]; then
    _lab_do ip netns exec "$LAB_S" ipset create -exist tfolab_sticky4 \
      hash:ip,port family inet timeout 600 &&
    _lab_do ip netns exec "$LAB_S" ipset create -exist tfolab_sticky6 \
      hash:ip,port family inet6 timeout 600 &&
    _lab_do ip netns exec "$LAB_S" ipset flush tfolab_sticky4 &&
    _lab_do ip netns exec "$LAB_S" ipset flush tfolab_sticky6 || return 1
  fi

  _lab_mode_ruleset 4 "$mode" |
    _lab_do ip netns exec "$LAB_S" iptables-restore -w 5 --noflush ||
    return 1
  _lab_mode_ruleset 6 "$mode" |
    _lab_do ip netns exec "$LAB_S" ip6tables-restore -w 5 --noflush ||
    return 1

  LAB_MODE=$mode
  export LAB_MODE
}


# MAC address of veth0 in a namespace.
_lab_mac() {
  ip -n "$1" -o link show dev veth0 |
    awk '{ for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1) }'
}


_lab_setup_ns() {
  local ns=$1 fo=$2

  # Before the veth exists, so it inherits "no DAD" for its link-local
  # address too; no router solicitations to add noise.
  _lab_do _lab_sysctl "$ns" \
    net.ipv4.tcp_fastopen="$fo" \
    net.ipv4.tcp_fastopen_blackhole_timeout_sec=0 \
    net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.accept_dad=0 \
    net.ipv6.conf.default.router_solicitations=0 || return 1
}


_lab_addr_ns() {
  local ns=$1 ip4=$2 ip6=$3

  _lab_do ip -n "$ns" link set lo up &&
  _lab_do ip -n "$ns" addr add "$ip4/24" dev veth0 &&
  _lab_do ip -n "$ns" addr add "$ip6/64" dev veth0 nodad &&
  _lab_do ip -n "$ns" link set veth0 up
}


# Start lab-delay in namespace NS (c or s), holding what arrives on its
# veth0 for DELAY ms: _lab_start_delay c|s DELAY
#
# Each side delays its *ingress* only. Delaying the client's egress in
# OUTPUT would be simpler, but a packet held there is still charged to its
# socket, and TCP Small Queues then stalls the sender: a 1 MB upload at
# 50 ms RTT took 4.5 s instead of 0.43 s. On ingress (veth has already
# orphaned the skb) nothing is charged to the sender.
_lab_start_delay() {
  local side=$1 delay=$2 ns ready ipt pid

  ns=$(_lab_ns "$side") || return 1
  ready=$LAB_DIR/delay-$side.ready
  # The emulated wire keeps its timing whatever else the machine runs (a
  # starved delay made the RTT a client sees the scheduler's, and fired
  # TFO's race on clean paths): SCHED_FIFO where allowed. It sleeps in
  # ppoll between packets.
  local rt=()
  chrt -f 10 true 2>/dev/null && rt=(chrt -f 10)
  # $LAB_DELAY_ARGS: extra options, e.g. -v (stats into delay-c|s.log).
  ip netns exec "$ns" "${rt[@]}" "$LAB_BIN/lab-delay" -q "$_LAB_QUEUE" -d "$delay" \
    -r "$ready" ${LAB_DELAY_ARGS:-} 2>"$LAB_DIR/delay-$side.log" &
  pid=$!
  _LAB_PIDS+=("$pid")
  LAB_DELAY_PIDS="${LAB_DELAY_PIDS:+$LAB_DELAY_PIDS }$pid"
  export LAB_DELAY_PIDS

  # A rule whose queue has no listener drops every packet: bind first.
  if ! _lab_until 100 0.05 test -s "$ready"; then
    _lab_err "lab-delay ($side) not ready in 5 s: $(cat "$LAB_DIR/delay-$side.log")"
    return 1
  fi
  if ! _lab_pid_alive "$pid"; then
    _lab_err "lab-delay ($side) died: $(cat "$LAB_DIR/delay-$side.log")"
    return 1
  fi

  # raw PREROUTING: the first hook a received packet meets, so the delay
  # acts like the wire, before the middlebox rules of lab_mode.
  for ipt in iptables ip6tables; do
    {
      echo '*raw'
      echo "-A PREROUTING -i veth0 -j NFQUEUE --queue-num $_LAB_QUEUE"
      echo 'COMMIT'
    } | _lab_do ip netns exec "$ns" "$ipt-restore" -w 5 --noflush ||
      return 1
  done
}


lab_up() {
  if [ -n "${LAB_C:-}" ]; then
    _lab_err "lab_up: a lab is already up ($LAB_C); lab_down first"
    return 1
  fi
  # A half-built lab is torn down at once, not left for the EXIT trap.
  _lab_up "$@" && return 0
  lab_down
  return 1
}


_lab_up() {
  local rtt=0 mode=none cfo=3 sfo=3 id ns cmac smac ipt delay

  while [ $# -gt 0 ]; do
    case $1 in
    --rtt) rtt=${2:-}; shift 2 || { _lab_err "--rtt needs a value"; return 1; } ;;
    --rtt=*) rtt=${1#*=}; shift ;;
    --mode) mode=${2:-}; shift 2 || { _lab_err "--mode needs a value"; return 1; } ;;
    --mode=*) mode=${1#*=}; shift ;;
    --client-bit-off) cfo=0; shift ;;
    --server-bit-off) sfo=1; shift ;;
    *) _lab_err "lab_up: unknown option '$1'"; return 1 ;;
    esac
  done

  if ! [[ $rtt =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    _lab_err "lab_up: --rtt wants milliseconds, got '$rtt'"
    return 1
  fi
  _lab_install_traps
  lab_sweep 30

  # $BASHPID, not $$: a subshell gets a lab of its own.
  id=${BASHPID:-$$}
  LAB_C=tfolab-$id-c
  LAB_S=tfolab-$id-s
  export LAB_C LAB_S
  LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tfolab-$id.XXXXXX") || return 1
  export LAB_DIR

  for ns in "$LAB_C" "$LAB_S"; do
    # We are alive and have no lab, so a namespace with our name is stale:
    # left by a dead shell that had our pid.
    if [ -e "/run/netns/$ns" ]; then
      _lab_kill_ns "$ns"
      ip netns del "$ns" 2>/dev/null
    fi
    # ip netns add can race with another lab on the first mount of
    # /run/netns; a retry settles it.
    _lab_until 3 0.1 ip netns add "$ns" 2>/dev/null ||
      _lab_do ip netns add "$ns" || return 1
  done

  _lab_setup_ns "$LAB_C" "$cfo" || return 1
  _lab_setup_ns "$LAB_S" "$sfo" || return 1

  _lab_do ip -n "$LAB_C" link add veth0 type veth peer name veth0 \
    netns "$LAB_S" || return 1
  _lab_addr_ns "$LAB_C" "$LAB_C_IP4" "$LAB_C_IP6" || return 1
  _lab_addr_ns "$LAB_S" "$LAB_S_IP4" "$LAB_S_IP6" || return 1

  # Static neighbours: no ARP/ND round trip (which lab-delay would slow
  # for IPv6) in front of the first connection.
  cmac=$(_lab_mac "$LAB_C")
  smac=$(_lab_mac "$LAB_S")
  _lab_do ip -n "$LAB_C" neigh replace "$LAB_S_IP4" lladdr "$smac" \
    dev veth0 nud permanent &&
  _lab_do ip -n "$LAB_C" neigh replace "$LAB_S_IP6" lladdr "$smac" \
    dev veth0 nud permanent &&
  _lab_do ip -n "$LAB_S" neigh replace "$LAB_C_IP4" lladdr "$cmac" \
    dev veth0 nud permanent &&
  _lab_do ip -n "$LAB_S" neigh replace "$LAB_C_IP6" lladdr "$cmac" \
    dev veth0 nud permanent || return 1

  # Hooks for the middlebox chains on the server's ingress; lab_mode fills
  # them.
  for ipt in iptables ip6tables; do
    {
      echo '*filter'
      echo ':TFOLAB_MODE - [0:0]'
      echo '-A INPUT -i veth0 -j TFOLAB_MODE'
      echo 'COMMIT'
      echo '*mangle'
      echo ':TFOLAB_MODE - [0:0]'
      echo '-A PREROUTING -i veth0 -j TFOLAB_MODE'
      echo 'COMMIT'
    } | _lab_do ip netns exec "$LAB_S" "$ipt-restore" -w 5 --noflush ||
      return 1
  done
  lab_mode "$mode" || return 1

  LAB_RTT=$rtt
  export LAB_RTT
  if [ "$rtt" != 0 ] && [[ ! $rtt =~ ^0+(\.0+)?$ ]]; then
    delay=$(awk -v r="$rtt" 'BEGIN { printf "%.3f", r / 2 }')
    _lab_start_delay c "$delay" || return 1
    _lab_start_delay s "$delay" || return 1
  fi
  return 0
}


lab_client() {
  lab_c "$LAB_BIN/lab-client" "$@"
}


lab_server_bg() {
  lab_s_bg "$LAB_BIN/lab-server" "$@"
}


# --- Test helpers: automake-style results (exit 0 pass, 1 fail). ---

_LAB_NPASS=0
_LAB_NFAIL=0


lab_pass() {
  printf 'PASS: %s\n' "$*"
  _LAB_NPASS=$((_LAB_NPASS + 1))
}


lab_fail() {
  printf 'FAIL: %s\n' "$*"
  _LAB_NFAIL=$((_LAB_NFAIL + 1))
}


# lab_check_range LABEL VALUE LO HI: numeric, inclusive; a VALUE that is
# not a number fails.
lab_check_range() {
  local label=$1 value=$2 lo=$3 hi=$4

  if awk -v v="$value" -v lo="$lo" -v hi="$hi" 'BEGIN {
       exit !(v ~ /^-?[0-9]+(\.[0-9]*)?$/ && v + 0 >= lo + 0 && v + 0 <= hi + 0)
     }'; then
    lab_pass "$label = $value (want $lo..$hi)"
  else
    lab_fail "$label = $value (want $lo..$hi)"
  fi
}


lab_check() {
  local label=$1
  shift
  if "$@"; then
    lab_pass "$label"
  else
    lab_fail "$label"
  fi
}


lab_finish() {
  printf '%s: %d passed, %d failed\n' \
    "${LAB_TEST_NAME:-$(basename -- "$0")}" "$_LAB_NPASS" "$_LAB_NFAIL"
  [ "$_LAB_NFAIL" -eq 0 ] && [ "$_LAB_NPASS" -gt 0 ] && exit 0
  exit 1
}
