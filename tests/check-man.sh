#!/bin/bash
# A manual page for every exported name, as c-ares has: each function
# libtfo.so and libtfo-uv.so export has man/NAME.3 (a page, or a .so link
# to the page that documents it), installed by make install; that page's
# NAME section lists it; and no page names a function the libraries do not
# export (a page left behind by a rename).
set -u
lib="$top_builddir/lib/.libs"
man="$top_srcdir/man"
fail=0
bad() { echo "FAIL $*"; fail=1; }

exports() { nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u; }
# The page NAME.3 stands for: itself, or the one its .so line names.
target() {
  local f=$man/$1.3 so
  so=$(sed -n '1s/^\.so man3\/\(.*\)$/\1/p' "$f")
  if [ -n "$so" ]; then echo "$man/$so"; else echo "$f"; fi
}
# The names a page's NAME section lists (before " \- ").
names() {
  awk '/^\.SH NAME/ { on = 1; next } /^\.SH/ { on = 0 } on' "$1" |
    tr '\n' ' ' | sed 's/\\-.*//; s/,/ /g' | tr -s ' ' '\n' | grep -v '^$'
}

[ -e "$lib/libtfo.so" ] || { echo "FAIL libtfo.so not built"; exit 1; }
all=$(exports "$lib/libtfo.so")
[ -e "$lib/libtfo-uv.so" ] && all=$(printf '%s\n%s\n' "$all" "$(exports "$lib/libtfo-uv.so")")
n=0
for sym in $all; do
  n=$((n + 1))
  if [ ! -e "$man/$sym.3" ]; then bad "$sym: no man/$sym.3"; continue; fi
  t=$(target "$sym")
  [ -e "$t" ] || { bad "$sym: man/$sym.3 links to a missing $t"; continue; }
  names "$t" | grep -qx "$sym" || bad "$sym: $(basename "$t")'s NAME does not list it"
  grep -Eq "(^|[[:space:]])man/$sym\.3([[:space:]]|$)" "$top_srcdir/Makefile.am" ||
    bad "$sym: man/$sym.3 is not in Makefile.am's dist_man_MANS"
done
echo "checked $n exported functions"
for f in "$man"/*.3; do
  grep -q '^\.so ' "$f" && continue
  for nm in $(names "$f"); do
    # libtfo-uv's pages, when it was not built (no libuv).
    [ ! -e "$lib/libtfo-uv.so" ] && [ "${nm#tfo_uv_}" != "$nm" ] && continue
    grep -qx "$nm" <<<"$all" || bad "$(basename "$f") names $nm, which no library exports"
  done
done
[ $fail = 0 ] && echo "PASS every exported function has its page"
exit $fail
