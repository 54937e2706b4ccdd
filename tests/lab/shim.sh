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

# shim_https_bg PORT DIR [ADDR]: an HTTPS server (TLS 1.3, a self-signed
# certificate made here) for the files in DIR, in the server namespace,
# given TFO by the shim alone.
shim_https_bg() {
  [ -f "$LAB_DIR/cert.pem" ] ||
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lab \
      -keyout "$LAB_DIR/key.pem" -out "$LAB_DIR/cert.pem" >/dev/null 2>&1
  cat >"$LAB_DIR/https.py" <<'PY'
import http.server, os, ssl, sys
addr, port, root, cert, key = sys.argv[1:6]
os.chdir(root)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer((addr, int(port)),
                                      http.server.SimpleHTTPRequestHandler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
  lab_s_bg env LD_PRELOAD="$SHIM_PRELOAD" "$PY" "$LAB_DIR/https.py" \
    "${3:-$LAB_S_IP4}" "$1" "$2" "$LAB_DIR/cert.pem" "$LAB_DIR/key.pem" \
    >"$LAB_DIR/https-$1.log" 2>&1
}

# shim_loop_clients: $LAB_DIR/aio.py (python asyncio, epoll) and
# $LAB_DIR/get.js (node http.get, libuv), each one HTTP/1.0 GET of URL
# printing "resp=BODY ms=MS" (ms from the connect to the end of the body;
# the interpreter's start left out), or "error=...".
#   "$PY" "$LAB_DIR/aio.py" URL        node "$LAB_DIR/get.js" URL
shim_loop_clients() {
  cat >"$LAB_DIR/aio.py" <<'PY'
import asyncio, sys, time, urllib.parse
async def main(url):
    u = urllib.parse.urlsplit(url)
    t = time.monotonic()
    r, w = await asyncio.open_connection(u.hostname, u.port or 80)
    w.write(b"GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (u.path.encode(), u.hostname.encode()))
    data = await r.read()
    w.close()
    body = data.split(b"\r\n\r\n", 1)[1].decode().strip().replace(" ", "_")
    print("resp=%s ms=%.1f" % (body, (time.monotonic() - t) * 1000))
asyncio.run(main(sys.argv[1]))
PY
  cat >"$LAB_DIR/get.js" <<'JS'
const http = require('http');
const t = process.hrtime.bigint();
http.get(process.argv[2], (res) => {
  let d = '';
  res.on('data', (c) => { d += c; });
  res.on('end', () => console.log('resp=' + d.trim().replace(/ /g, '_') +
    ' ms=' + (Number(process.hrtime.bigint() - t) / 1e6).toFixed(1)));
}).on('error', (e) => { console.log('error=' + e.code); process.exitCode = 1; });
JS
}
