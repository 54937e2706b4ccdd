#!/bin/bash
# Daemons retrofitted by libtfo_preload.so alone (issue: shim):
# python3 -m http.server and nginx (without its fastopen option) accept TFO:
# TCPFastOpenPassive rises and repeat requests from a TFO client take about
# 1 RTT instead of 2. 50 ms RTT.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
command -v curl >/dev/null && [ -x /usr/sbin/nginx ] || {
  echo "SKIP: curl or nginx missing (scripts/deps programs)"; exit 77; }

RTT=50
lab_up --rtt "$RTT" || exit 99
shim_www
chmod 755 "$LAB_DIR" "$LAB_DIR/www"
chmod 644 "$LAB_DIR/www/blob"
printf 'hello\n' >"$LAB_DIR/www/small"
chmod 644 "$LAB_DIR/www/small"

cat >"$LAB_DIR/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $LAB_DIR/nginx.pid;
error_log $LAB_DIR/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  server {
    listen $LAB_S_IP4:8081;
    root $LAB_DIR/www;
  }
}
CONF

shim_http_bg 8080
lab_s_bg env LD_PRELOAD="$SHIM_PRELOAD" /usr/sbin/nginx -c "$LAB_DIR/nginx.conf" \
  -e "$LAB_DIR/nginx-error.log"
lab_wait_port 8080 v4 || exit 99
lab_wait_port 8081 v4 || { cat "$LAB_DIR/nginx-error.log"; exit 99; }

# The client is curl with the kernel's own TFO: only the server is ours.
get() { # PORT FILE -> "<ms> <sha256>"
  lab_c curl --tcp-fastopen -s -o "$LAB_DIR/out" -w '%{time_total}\n' \
    "http://$LAB_S_IP4:$1/$2" | awk '{ printf "%.1f ", $1 * 1000 }'
  sha256sum <"$LAB_DIR/out" | cut -d' ' -f1
}

for daemon in "python3 -m http.server:8080" "nginx:8081"; do
  name=${daemon%:*}
  port=${daemon##*:}
  lab_c ip tcp_metrics flush all # cookies are per address: start afresh
  passive0=$(lab_counter s TCPFastOpenPassive)
  get "$port" small >/dev/null # asks for the cookie
  t=()
  for i in 1 2 3 4 5; do
    out=$(get "$port" blob)
    t+=("${out%% *}")
    [ "${out#* }" = "$BLOB_SUM" ] || lab_fail "$name: body differs"
  done
  small=()
  for i in 1 2 3; do
    out=$(get "$port" small)
    small+=("${out%% *}")
  done
  passive=$(( $(lab_counter s TCPFastOpenPassive) - passive0 ))
  echo "$name: 20000 B ${t[*]} ms; 6 B ${small[*]} ms"
  lab_check_range "$name: TFO connections accepted" "$passive" 8 8
  lab_check_range "$name: repeat small request, median ms (~1 RTT)" \
    "$(printf '%s\n' "${small[@]}" | lab_median)" 45 75
done

lab_finish
