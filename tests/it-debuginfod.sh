#!/usr/bin/env bash
# Symbols of a stripped base from a real debuginfod server: the test packs
# the debug file of a library into a -dbgsym .deb (dpkg-deb), serves the
# directory with `debuginfod -U` on a free port, and `svc pack` finds the
# symbols through DEBUGINFOD_URLS, with the client cache in the scratch dir.
# Without the server the same fix is refused (a changed static function has
# no symbol in the stripped file), never packed without its redirect.
source "$(dirname "$0")/lib.sh"
scratch_new debuginfod
ST="$SVC_TOP/tests/fixtures/stock"
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
cd "$S/build"
for f in 0 1; do gcc -O2 -g -fPIC -ffunction-sections -fdata-sections -DFIX=$f -c "$ST/lib.c" -o lib_$f.o; done
gcc -O2 -g -fPIC -c "$ST/lib.c" -o lib_base.o
gcc -O2 -g -fPIC -c "$ST/other.c" -o other.o
gcc -O2 -g -fPIC -c "$ST/third.c" -o third.o
gcc -shared -Wl,--build-id -Wl,--version-script="$ST/vs.map" -o libst.so lib_base.o other.o third.o
objcopy --only-keep-debug libst.so libst.debug
strip --remove-section=.comment --strip-unneeded -o "$R/usr/lib/libst.so" libst.so
id=$(readelf -n "$R/usr/lib/libst.so" | sed -n 's/.*Build ID: *//p')
[ -n "$id" ] || fail "no build-id in the fixture"

mkdir -p "$S/deb/DEBIAN" "$S/deb/usr/lib/debug/.build-id/${id:0:2}" "$S/debs" "$S/none"
cp libst.debug "$S/deb/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
cat >"$S/deb/DEBIAN/control" <<CTL
Package: libst-dbgsym
Version: 1.0-1
Architecture: amd64
Maintainer: svc tests <tests@invalid>
Description: debug symbols of the test library
CTL
dpkg-deb --root-owner-group -Zgzip --build "$S/deb" "$S/debs/libst-dbgsym_1.0-1_amd64.deb" >/dev/null
"$SVC" --quiet keygen --out "$S/vendor"
pack() {
	"$SVC" pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series st --seq 1 \
		--target "/usr/lib/libst.so=$R/usr/lib/libst.so" \
		--objects "$S/build/lib_0.o:$S/build/lib_1.o" --debug-dir "$S/none" "$@"
}

# without a server: refused by name, nothing written
unset DEBUGINFOD_URLS
expect_exit 1 pack
echo "$OUT" | grep -q "not found in the base build (stripped" || fail "no-symbol refusal not said: $OUT"
[ ! -e "$S/FIX-1.hfx" ] || fail "a package was written"
ok "stripped base, no debug file: refused ($(echo "$OUT" | head -c 100)...)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
debuginfod -U -p "$port" -d "$S/debuginfod.sqlite" -t 0 -g 0 "$S/debs" >"$S/debuginfod.log" 2>&1 &
STARTED_PIDS+=("$!")
url="http://127.0.0.1:$port"
for i in $(seq 1 600); do
	curl -sf -o /dev/null "$url/buildid/$id/debuginfo" && break
	sleep 0.1
done
curl -sf -o /dev/null "$url/buildid/$id/debuginfo" || fail "debuginfod did not serve $id: $(tail -5 "$S/debuginfod.log")"
ok "debuginfod -U serves the .deb's debug file on port $port (after $i polls)"

export DEBUGINFOD_URLS="$url" DEBUGINFOD_CACHE_PATH="$S/cache"
expect_exit 0 pack
echo "$OUT" | grep -q "symbols from debuginfod $S/cache/" || fail "symbols not from debuginfod: $OUT"
echo "$OUT" | grep -q "1 left alone (only __LINE__ moved)" || fail "__LINE__-only function not reported: $OUT"
"$SVC" inspect "$S/FIX-1.hfx" | grep -q "redirect stat_fn" || fail "no redirect of the static stat_fn"
ok "svc pack through debuginfod: $(echo "$OUT" | tail -1)"

# svc links neither libdebuginfod nor libcurl (svc boot runs at early boot):
# the library is loaded where symbols are fetched, and when it is absent
# (hidden here by /dev/null mounted over it, in a mount namespace of this
# command only) pack says so in one line naming it, and writes nothing
ldd "$SVC" | grep -E "libdebuginfod|libcurl" && fail "svc links libdebuginfod or libcurl"
lib=$(ldconfig -p | sed -n 's/^[[:space:]]*libdebuginfod\.so\.1 .*=> //p' | head -n1)
[ -n "$lib" ] && [ -e "$lib" ] || fail "ldconfig knows no libdebuginfod.so.1"
rm -f "$S/FIX-1.hfx"
expect_exit 1 unshare --mount --propagation private sh -c 'mount --bind /dev/null "$0" && exec "$@"' \
	"$lib" "$SVC" pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series st --seq 1 \
	--target "/usr/lib/libst.so=$R/usr/lib/libst.so" \
	--objects "$S/build/lib_0.o:$S/build/lib_1.o" --debug-dir "$S/none"
echo "$OUT" | grep -q "libdebuginfod.so.1 (Debian package libdebuginfod1) is not usable" ||
	fail "a missing libdebuginfod is not named: $OUT"
[ "$(echo "$OUT" | wc -l)" = 1 ] || fail "not one line: $OUT"
[ ! -e "$S/FIX-1.hfx" ] || fail "a package was written"
ok "svc links no libdebuginfod/libcurl; without it, one line: ...$(echo "$OUT" | grep -o "debuginfod (http.*" | head -c 160)"
