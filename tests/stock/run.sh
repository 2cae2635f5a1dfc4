#!/usr/bin/env bash
# make check-stock: a real Debian security fix, live, on the stock library,
# from nothing but Debian's archive (a fresh Debian 12 after apt-get update).
#
# The library: liblzma.so.5.4.1 of liblzma5 5.4.1-1+deb12u1, the version
# bookworm main carries (bookworm is LTS since 12.15: main no longer moves,
# later fixes go to bookworm-security only).  The .deb is downloaded through
# a private apt configuration (apt checks it against the signed archive
# indexes; it is never installed).  The fix: GHSA-5qpq-xqfv-j9pg, the two
# liblzma patches Debian's own next upload (5.4.1-1+deb12u2, in
# bookworm-security) adds to debian/patches: a decoder whose dictionary
# allocation failed must not be reused with a NULL dictionary.  Steps:
#   0. private apt configuration: bookworm main (binary and source) and
#      bookworm-security (source); the stock .deb, checked against its md5sums;
#   1. apt-get source of deb12u1 (the base) and deb12u2 (its new patches);
#   2. build deb12u1 as Debian does (dpkg-buildpackage -B), compare the
#      stripped library with the stock file: same bytes, same build-id; the
#      -dbgsym .deb holds the separate debug file;
#   3. base and fixed objects of the changed units with Debian's flags (from
#      the build log) plus -ffunction-sections -fdata-sections;
#   4. svc pack against the STOCK file, symbols from the debug directory;
#   5. svc build --deb of the same source package and patches: the package
#      must equal the hand-made one byte for byte (manifest and payload; the
#      signature too: signing is deterministic, RFC 6979);
#   6. a process running the stock file in a scratch root shows the bug;
#      svc install /hotpatch:enable fixes it live; svc rollback brings it back.
# Downloads and the Debian build are kept under $SVC_STOCK_CACHE (default
# .cache/stock) to make a second run fast; nothing requires them to exist.
source "$(dirname "$0")/../lib.sh"
C=${SVC_STOCK_CACHE:-$SVC_TOP/.cache/stock}/xz-utils
SRCPKG=xz-utils BINPKG=liblzma5 STOCKVER=5.4.1-1+deb12u1 FIXVER=5.4.1-1+deb12u2
LIB=lib/x86_64-linux-gnu/liblzma.so.5.4.1
FIXPATCHES="liblzma-Make-lzma_lz_decoder_init-safe-to-reinit-after-al.patch liblzma-Clean-up-after-a-filter-chain-initialization-erro.patch"
UNITS="lz/lz_decoder.c common/alone_decoder.c common/lzip_decoder.c common/microlzma_decoder.c"
TREE="$C/build/$SRCPKG-5.4.1"
n=0; ok() { n=$((n + 1)); echo "ok $n - $* ($(( $(date +%s) - T0 )) s)"; }
step() { T0=$(date +%s); }
[ "$(id -u)" = 0 ] || fail "needs root (apt-get build-dep, dpkg-buildpackage as Debian does)"
mkdir -p "$C"

# --- 0. the stock file, from the archive
step
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || fail "needs $KEYRING (package debian-archive-keyring)"
mkdir -p "$C/apt/lists/partial" "$C/apt/cache/archives/partial" "$C/deb" "$C/src"
cat >"$C/apt/sources.list" <<EOF
deb [arch=amd64 signed-by=$KEYRING] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$KEYRING] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$KEYRING] http://deb.debian.org/debian-security bookworm-security main
EOF
cat >"$C/apt/apt.conf" <<EOF
Dir::Etc::SourceList "$C/apt/sources.list";
Dir::Etc::SourceParts "$C/apt/none";
Dir::State::Lists "$C/apt/lists";
Dir::Cache "$C/apt/cache";
Acquire::Languages "none";
APT::Architectures { "amd64"; };
EOF
aptp() { APT_CONFIG="$C/apt/apt.conf" "$@"; }
if [ ! -f "$C/apt.stamp" ] || [ -n "$(find "$C/apt.stamp" -mmin +1440)" ]; then
	aptp apt-get update >"$C/apt.log" 2>&1 || fail "apt-get update (private): $(tail -n3 "$C/apt.log")"
	touch "$C/apt.stamp"
fi
DEB="$C/deb/${BINPKG}_${STOCKVER}_amd64.deb"
if [ ! -f "$DEB" ]; then
	(cd "$C/deb" && aptp apt-get download "$BINPKG=$STOCKVER") >>"$C/apt.log" 2>&1 ||
		fail "apt-get download $BINPKG=$STOCKVER: $(tail -n2 "$C/apt.log" | tr '\n' ' ')(is it still in bookworm main? apt-cache madison $BINPKG)"
fi
scratch_new stock
dpkg-deb -x "$DEB" "$S/stockdeb"; dpkg-deb -e "$DEB" "$S/stockctl"
sum=$(awk -v f="$LIB" '$2 == f { print $1 }' "$S/stockctl/md5sums")
[ -n "$sum" ] && [ "$(md5sum <"$S/stockdeb/$LIB" | cut -d' ' -f1)" = "$sum" ] ||
	fail "$LIB differs from the md5sums of $(basename "$DEB")"
mkdir -p "$R/lib/x86_64-linux-gnu" "$R/usr/bin"
cp -a "$S/stockdeb/lib/x86_64-linux-gnu/." "$R/lib/x86_64-linux-gnu/"
ok "stock $BINPKG $STOCKVER from the archive: /$LIB (md5sum as the .deb says)"

# --- 1. source: the base and Debian's next upload
step
for v in "$STOCKVER" "$FIXVER"; do
	if [ ! -f "$C/src/${SRCPKG}_$v.dsc" ]; then
		(cd "$C/src" && aptp apt-get source --download-only "$SRCPKG=$v") >>"$C/apt.log" 2>&1 ||
			fail "apt-get source $SRCPKG=$v: $(tail -n2 "$C/apt.log" | tr '\n' ' ')"
	fi
done
rm -rf "$S/fixdeb"; mkdir -p "$S/fixdeb"
tar -C "$S/fixdeb" -xf "$C/src/${SRCPKG}_$FIXVER.debian.tar.xz" debian/patches
for p in $FIXPATCHES; do
	grep -qx "$p" "$S/fixdeb/debian/patches/series" || fail "$p not in $FIXVER's series"
	tar -xOf "$C/src/${SRCPKG}_$STOCKVER.debian.tar.xz" debian/patches/series | grep -qx "$p" &&
		fail "$p is already in $STOCKVER: not a fix of the stock file"
	cp "$S/fixdeb/debian/patches/$p" "$S/$p"
done
ok "source $SRCPKG $STOCKVER (base) and $FIXVER's new patches: $FIXPATCHES"

# --- 2. Debian's build of the stock version
step
if [ ! -f "$C/build.stamp" ]; then
	rm -rf "$C/build"; mkdir -p "$C/build"
	(cd "$C/build" && dpkg-source -x "$C/src/${SRCPKG}_$STOCKVER.dsc" >/dev/null 2>&1)
	(cd "$TREE" && nice env DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
		dpkg-buildpackage -B -uc -us) >"$C/build.log" 2>&1 || fail "dpkg-buildpackage: $(tail -n5 "$C/build.log")"
	echo "$(( $(date +%s) - T0 ))" >"$C/build.stamp"
fi
echo "   dpkg-buildpackage took $(cat "$C/build.stamp") s$([ "$(( $(date +%s) - T0 ))" -lt 5 ] && echo ", cached")"
built="$TREE/debian/$BINPKG/$LIB"
bid() { readelf -n "$1" | sed -n 's/.*Build ID: *//p'; }
echo "   stock build-id $(bid "$R/$LIB"), rebuilt $(bid "$built")"
cmp -s "$built" "$R/$LIB" || fail "the rebuilt $LIB differs from the stock file"
dbg=$(ls "$C/build/$BINPKG-dbgsym_"*.deb)
dpkg-deb -x "$dbg" "$S/dbgroot"
ok "dpkg-buildpackage reproduces the stock file byte for byte; debug file from $(basename "$dbg")"

# --- 3. base and fixed objects of the changed units, Debian's flags
step
rm -rf "$S/tree" "$S/fixed"; cp -a "$TREE" "$S/tree"; cp -a "$TREE" "$S/fixed"
for p in $FIXPATCHES; do patch -d "$S/fixed" -p1 -s <"$S/$p" || fail "patch $p"; done
OBJS=()
# the pairs in svc build's canonical order, by object path (liblzma_la-UNIT.o)
for u in $(for u in $UNITS; do echo "$(basename "$u") $u"; done | LC_ALL=C sort | cut -d' ' -f2); do
	cmd=$(grep -m1 "^libtool: compile: .* -c \\.\\./\\.\\./\\.\\./\\.\\./src/liblzma/$u .*-fPIC" "$C/build.log" |
		sed 's/^libtool: compile: *//; s/ -o [^ ]*$//')
	[ -n "$cmd" ] || fail "no shared-library compile line for $u in the build log"
	o=$(basename "$u" .c)
	(cd "$S/tree/debian/normal-build/src/liblzma" && $cmd -ffunction-sections -fdata-sections -o "$S/$o.old.o") ||
		fail "base object $u"
	(cd "$S/fixed/debian/normal-build/src/liblzma" && $cmd -ffunction-sections -fdata-sections -o "$S/$o.new.o") ||
		fail "fixed object $u"
	OBJS+=(--objects "$S/$o.old.o:$S/$o.new.o")
done
ok "base and fixed objects of $UNITS: ${cmd:0:50}... -ffunction-sections -fdata-sections"

# --- 4. the package, against the stock file
step
"$SVC" --quiet keygen --out "$S/vendor"
mkdir -p "$R/etc/svc/trusted"; cp "$S/vendor.pub" "$R/etc/svc/trusted/"
PKGID=GHSA-5qpq-xqfv-j9pg
expect_exit 0 "$SVC" pack --key "$S/vendor.key" --out "$S/$PKGID.hfx" --id "$PKGID" \
	--series liblzma --seq 1 --target "/$LIB=$R/$LIB" "${OBJS[@]}" \
	--debug-dir "$S/dbgroot/usr/lib/debug" --no-debuginfod
echo "$OUT" | sed 's/^/   /'
echo "$OUT" | grep -q "symbols from debug file by build-id" || fail "symbols not from the debug file"
"$SVC" inspect "$S/$PKGID.hfx" >"$S/inspect.out"
grep -q "redirect lzma_lz_decoder_init" "$S/inspect.out" || fail "lzma_lz_decoder_init not redirected: $(cat "$S/inspect.out")"
grep -q "redirect alone_decode" "$S/inspect.out" || fail "alone_decode not redirected"
ok "svc pack: payload for the stock file"

# --- 5. the same through svc build --deb: equal to the hand-made package
step
PATCHARGS=(); for p in $FIXPATCHES; do PATCHARGS+=(--patch "$S/$p"); done
export DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)"
expect_exit 0 nice "$SVC" --root "$R" build --deb "$C/src/${SRCPKG}_$STOCKVER.dsc" "${PATCHARGS[@]}" \
	--key "$S/vendor.key" --out "$S/BUILD.hfx" --id "$PKGID" --series liblzma --seq 1 --keep "$S/keep"
unset DEB_BUILD_OPTIONS
echo "$OUT" | grep -E '^[a-z]+ +[0-9.]+s' | sed 's/^/   /'
echo "$OUT" | grep -q "^build .*target /$LIB (base $R/$LIB)" || fail "the library not a target: $OUT"
echo "$OUT" | grep -q "^verify .*/$LIB: .* has the base's build-id" || fail "base not reproduced by svc build: $OUT"
"$SVC" inspect "$S/BUILD.hfx" >"$S/inspect-build.out"
diff "$S/inspect.out" "$S/inspect-build.out" >"$S/inspect.diff" ||
	fail "svc build --deb and the hand-made package differ: $(head -n 20 "$S/inspect.diff")"
cmp "$S/BUILD.hfx" "$S/$PKGID.hfx" || fail "the packages differ (manifest and payload agree)"
ok "svc build --deb $SRCPKG $STOCKVER + $FIXVER's patches: the package equals the hand-made one byte for byte"

# --- 6. live on a process running the stock file
step
gcc -O2 -I"$S/tree/src/liblzma/api" -o "$R/usr/bin/lzreinit" "$SVC_TOP/tests/stock/lzreinit.c" \
	-L"$R/lib/x86_64-linux-gnu" -l:liblzma.so.5 -Wl,-rpath,'$ORIGIN/../../lib/x86_64-linux-gnu'
"$R/usr/bin/lzreinit" 20 >"$S/p.out" 2>&1 &
P=$!; STARTED_PIDS+=("$P")
grep -q "$R/$LIB" "/proc/$P/maps" 2>/dev/null || sleep 0.5
grep -q "$R/$LIB" "/proc/$P/maps" || fail "the process does not map the stock file"
for i in $(seq 100); do grep -q "reinit BAD" "$S/p.out" && break; sleep 0.05; done
grep -q "reinit BAD" "$S/p.out" || fail "the stock library does not show the bug: $(tail -n1 "$S/p.out")"
ok "process $P runs the stock file: $(tail -n1 "$S/p.out")"

step
expect_exit 0 "$SVC" --root "$R" install "$S/$PKGID.hfx" /hotpatch:enable
echo "$OUT" | sed 's/^/   /'
echo "$OUT" | grep -q "^patched pid $P" || fail "process not patched: $OUT"
: >"$S/p.out"; sleep 0.3
kill -0 "$P" || fail "the process died"
grep -q "reinit BAD" "$S/p.out" && fail "still buggy after the live fix: $(grep BAD "$S/p.out" | tail -n1)"
grep -q "reinit ok" "$S/p.out" || fail "no output after the fix"
ok "live fix: $(tail -n1 "$S/p.out")"

step
expect_exit 0 "$SVC" --root "$R" rollback "$PKGID"
echo "$OUT" | sed 's/^/   /'
: >"$S/p.out"; sleep 0.3
kill -0 "$P" || fail "the process died on rollback"
grep -q "reinit BAD" "$S/p.out" || fail "rollback did not restore the stock code: $(tail -n1 "$S/p.out")"
cmp -s "$S/stockdeb/$LIB" "$R/$LIB" || fail "the file on disk is not the stock file after rollback"
ok "rollback: the stock code and file are back: $(tail -n1 "$S/p.out")"
echo "check-stock: $n passed, 0 failed"
