# api.sh -- helpers for lab tests of the libtfo C API, on top of lab.sh.
# Source after lab.sh; needs $top_builddir (set by make check).
#
#   api_client ARGS...     examples/tfo-client in the client namespace, with
#                          this test's own negative cache file
#                          ($API_CACHE, default $LAB_DIR/cache)
#   api_fresh NAME         forget the client's TFO cookies and use a new
#                          cache file NAME: a scenario starts from nothing
#   api_resp LINE          the response the client printed (resp="...")
#   api_expect LABEL LINE OUTCOME [MS_LO MS_HI] [BYTES]
#                          PASS if the line shows OUTCOME, a time within
#                          MS_LO..MS_HI and the server's "OK BYTES"

TFO_CLIENT=${top_builddir:-$(cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)}/examples/tfo-client

api_client() {
  lab_c env LIBTFO_CACHE="${API_CACHE:-$LAB_DIR/cache}" "$TFO_CLIENT" "$@"
}

api_resp() {
  printf '%s\n' "$1" | sed -n 's/.*resp="\([^"]*\)".*/\1/p'
}

api_expect() {
  local label=$1 line=$2 want=$3 lo=${4:-} hi=${5:-} bytes=${6:-} got ms
  got=$(lab_field outcome "$line")
  ms=$(lab_field ms "$line")
  if [ "$got" = "$want" ]; then
    lab_pass "$label: outcome $got"
  else
    lab_fail "$label: outcome '$got', want $want (line: $line)"
  fi
  [ -n "$lo" ] && lab_check_range "$label: ms" "$ms" "$lo" "$hi"
  if [ -n "$bytes" ]; then
    if [ "$(api_resp "$line")" = "OK $bytes" ]; then
      lab_pass "$label: server got all $bytes bytes"
    else
      lab_fail "$label: server answered '$(api_resp "$line")', want 'OK $bytes'"
    fi
  fi
}

api_fresh() {
  lab_c ip tcp_metrics flush all 2>/dev/null || true
  API_CACHE=$LAB_DIR/cache-$1
}
