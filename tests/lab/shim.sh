# shim.sh -- helpers for lab tests of libtfo_preload.so, on top of lab.sh.
#
#   SHIM                  the built shim
#   shim_c CMD...         CMD in the client namespace under the shim, with
#                         this test's own negative cache ($LAB_DIR/cache)
#   shim_www              a directory with a 20000-byte file, "blob", served
#                         by shim_http_bg; BLOB_SUM is its sha256
#   shim_http_bg PORT     python3 -m http.server in the server namespace,
#                         given TFO by the shim alone (a legacy daemon)
SHIM=${top_builddir:-$(cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)}/preload/.libs/libtfo_preload.so
PY=/usr/bin/python3

# A shim built with -fsanitize=address (CI's sanitizer pass) can only be
# preloaded into a program that is not with the sanitizer's runtime first;
# leak reports would be about the host program, not us.
SHIM_PRELOAD=$SHIM
if [ -e "$SHIM" ] && ldd "$SHIM" 2>/dev/null | grep -q libasan; then
  SHIM_PRELOAD="$(ldd "$SHIM" | awk '/libasan/ { print $3 }') $SHIM"
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0
fi

shim_c() {
  lab_c env LD_PRELOAD="$SHIM_PRELOAD" LIBTFO_CACHE="${SHIM_CACHE:-$LAB_DIR/cache}" "$@"
}

shim_www() {
  mkdir -p "$LAB_DIR/www"
  head -c 20000 /dev/urandom >"$LAB_DIR/www/blob"
  BLOB_SUM=$(sha256sum <"$LAB_DIR/www/blob" | cut -d' ' -f1)
}

shim_http_bg() {
  lab_s_bg env LD_PRELOAD="$SHIM_PRELOAD" "$PY" -m http.server -b "${2:-$LAB_S_IP4}" \
    -d "$LAB_DIR/www" "$1" >"$LAB_DIR/http-$1.log" 2>&1
}
