#!/usr/bin/env bash
# make check-stock: a real Debian security fix, live, on the stock library.
#
# The library: libpng16-16 1.6.39-2+deb12u4 as installed from its .deb
# (checked against dpkg's md5sums).  The fix: CVE-2026-34757 (use after free
# in png_set_PLTE/tRNS/hIST), which Debian added in 1.6.39-2+deb12u5's own
# debian/patches.  bookworm main serves the deb12u5 source; its series minus
# the patches deb12u5 added is deb12u4's.  Steps:
#   1. apt-get source (private apt configuration, deb-src for bookworm main);
#   2. build deb12u4 as Debian does (dpkg-buildpackage), compare the stripped
#      library with the stock file: same bytes, same build-id; the -dbgsym
#      .deb holds the separate debug file;
#   3. base and fixed objects of pngset.c with Debian's flags (from the build
#      log) plus -ffunction-sections -fdata-sections;
#   4. svc pack against the STOCK file, symbols from the debug directory;
#   5. a process running the stock file in a scratch root shows the bug;
#      svc install /hotpatch:enable fixes it live; svc rollback brings it back.
# The source and the build are cached under $SVC_STOCK_CACHE (default
# .cache/stock); timings are printed per step.
source "$(dirname "$0")/../lib.sh"
C=${SVC_STOCK_CACHE:-$SVC_TOP/.cache/stock}
SRCPKG=libpng1.6 SRCVER=1.6.39-2+deb12u5
BINPKG=libpng16-16 STOCKVER=1.6.39-2+deb12u4
LIB=usr/lib/x86_64-linux-gnu/libpng16.so.16.39.0
NEWPATCHES="CVE-2026-34757-part1.patch CVE-2026-34757-part2.patch CVE-2026-33416-regression-fix.patch CVE-2026-33416-regression-fix-test.patch"
FIXPATCHES="CVE-2026-34757-part1.patch CVE-2026-34757-part2.patch"
TREE="$C/build/$SRCPKG-1.6.39"
n=0; ok() { n=$((n + 1)); echo "ok $n - $* ($(( $(date +%s) - T0 )) s)"; }
step() { T0=$(date +%s); }
mkdir -p "$C"

# --- 0. the stock file
have=$(dpkg-query -W -f='${Version}' "$BINPKG" 2>/dev/null || true)
if [ "$have" != "$STOCKVER" ]; then
	echo "check-stock: needs $BINPKG $STOCKVER installed (the stock file), found '${have:-none}'" >&2
	exit 1
fi
sum=$(awk -v f="$LIB" '$2 == f { print $1 }' "/var/lib/dpkg/info/$BINPKG:amd64.md5sums")
[ "$(md5sum <"/$LIB" | cut -d' ' -f1)" = "$sum" ] || fail "/$LIB differs from its .deb's md5sum"
scratch_new stock
mkdir -p "$R/usr/lib/x86_64-linux-gnu" "$R/usr/bin"
cp "/$LIB" "$R/$LIB"
ln -s libpng16.so.16.39.0 "$R/usr/lib/x86_64-linux-gnu/libpng16.so.16"

# --- 1. source
step
if [ ! -f "$C/src.stamp" ]; then
	mkdir -p "$C/apt/lists/partial" "$C/apt/cache/archives/partial" "$C/src"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$C/apt/sources.list"
	APT="-o Dir::Etc::SourceList=$C/apt/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$C/apt/lists -o Dir::Cache=$C/apt/cache -o Debug::NoLocking=1"
	apt-get $APT update >"$C/apt.log" 2>&1 || fail "apt-get update: $(tail -3 "$C/apt.log")"
	(cd "$C/src" && apt-get $APT source --download-only "$SRCPKG=$SRCVER") >>"$C/apt.log" 2>&1 ||
		fail "apt-get source $SRCPKG=$SRCVER: $(tail -3 "$C/apt.log")"
	touch "$C/src.stamp"
fi
ok "source $SRCPKG $SRCVER (Debian's patches: $(ls "$C/src"/*.debian.tar.xz | xargs -n1 basename))"

# --- 2. Debian's build of the stock version
step
if [ ! -f "$C/build.stamp" ]; then
	rm -rf "$C/build"; mkdir -p "$C/build"
	(cd "$C/build" && dpkg-source --skip-patches -x "$C/src/${SRCPKG}_$SRCVER.dsc" >/dev/null)
	for p in $NEWPATCHES; do sed -i "/^$p\$/d" "$TREE/debian/patches/series"; done
	for p in $(grep -v '^#' "$TREE/debian/patches/series"); do
		patch -d "$TREE" -p1 -s <"$TREE/debian/patches/$p" || fail "patch $p"
	done
	(cd "$TREE" && nice env DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
		dpkg-buildpackage -b -uc -us) >"$C/build.log" 2>&1 || fail "dpkg-buildpackage: $(tail -5 "$C/build.log")"
	echo "$(( $(date +%s) - T0 ))" >"$C/build.stamp"
fi
echo "   dpkg-buildpackage took $(cat "$C/build.stamp") s$([ "$(( $(date +%s) - T0 ))" -lt 5 ] && echo ", cached")"
built="$TREE/debian/$BINPKG/$LIB"
id() { readelf -n "$1" | sed -n 's/.*Build ID: *//p'; }
echo "   stock build-id $(id "$R/$LIB"), rebuilt $(id "$built")"
cmp -s "$built" "$R/$LIB" || fail "the rebuilt $LIB differs from the stock file"
dbg=$(ls "$C/build/$BINPKG-dbgsym_"*.deb)
dpkg-deb -x "$dbg" "$S/dbgroot"
ok "dpkg-buildpackage reproduces the stock file byte for byte; debug file from $(basename "$dbg")"

# --- 3. base and fixed objects of the changed unit, Debian's flags
step
cmd=$(grep -m1 "^libtool: compile: .* -c pngset.c .*-fPIC" "$C/build.log" | sed 's/^libtool: compile: *//; s/ -o [^ ]*$//')
[ -n "$cmd" ] || fail "no compile line for pngset.c in the build log"
rm -rf "$S/tree"; cp -a "$TREE" "$S/tree"
(cd "$S/tree" && $cmd -ffunction-sections -fdata-sections -o "$S/old.o") || fail "base object"
for p in $FIXPATCHES; do patch -d "$S/tree" -p1 -s <"$TREE/debian/patches/$p" || fail "patch $p"; done
(cd "$S/tree" && $cmd -ffunction-sections -fdata-sections -o "$S/new.o") || fail "fixed object"
ok "pngset.o base and fixed: ${cmd:0:60}... -ffunction-sections -fdata-sections"

# --- 4. the package, against the stock file
step
"$SVC" --quiet keygen --out "$S/vendor"
mkdir -p "$R/etc/svc/trusted"; cp "$S/vendor.pub" "$R/etc/svc/trusted/"
expect_exit 0 "$SVC" pack --key "$S/vendor.key" --out "$S/CVE-2026-34757.hfx" --id CVE-2026-34757 \
	--series libpng --seq 1 --target "/$LIB=$R/$LIB" --objects "$S/old.o:$S/new.o" \
	--debug-dir "$S/dbgroot/usr/lib/debug" --no-debuginfod
echo "$OUT" | sed 's/^/   /'
echo "$OUT" | grep -q "symbols from debug file by build-id" || fail "symbols not from the debug file"
"$SVC" inspect "$S/CVE-2026-34757.hfx" | grep -q "redirect png_set_PLTE" || fail "png_set_PLTE not redirected"
ok "svc pack: payload for the stock file"

# --- 5. live on a process running the stock file
step
gcc -O2 -I"$S/tree" -o "$R/usr/bin/pngalias" "$SVC_TOP/tests/stock/pngalias.c" \
	-L"$R/usr/lib/x86_64-linux-gnu" -l:libpng16.so.16 -Wl,-rpath,'$ORIGIN/../lib/x86_64-linux-gnu'
"$R/usr/bin/pngalias" 20 >"$S/p.out" 2>&1 &
P=$!; STARTED_PIDS+=("$P")
grep -q "$R/$LIB" "/proc/$P/maps" 2>/dev/null || sleep 0.5
grep -q "$R/$LIB" "/proc/$P/maps" || fail "the process does not map the stock file"
for i in $(seq 100); do grep -q "palette BAD" "$S/p.out" && break; sleep 0.05; done
grep -q "palette BAD" "$S/p.out" || fail "the stock library does not show the bug: $(tail -1 "$S/p.out")"
ok "process $P runs the stock file: $(tail -1 "$S/p.out")"

step
expect_exit 0 "$SVC" --root "$R" install "$S/CVE-2026-34757.hfx" /hotpatch:enable
echo "$OUT" | sed 's/^/   /'
echo "$OUT" | grep -q "^patched pid $P" || fail "process not patched: $OUT"
: >"$S/p.out"; sleep 0.3
kill -0 "$P" || fail "the process died"
grep -q "palette BAD" "$S/p.out" && fail "still buggy after the live fix: $(grep BAD "$S/p.out" | tail -1)"
grep -q "palette ok" "$S/p.out" || fail "no output after the fix"
ok "live fix: $(tail -1 "$S/p.out")"

step
expect_exit 0 "$SVC" --root "$R" rollback CVE-2026-34757
echo "$OUT" | sed 's/^/   /'
: >"$S/p.out"; sleep 0.3
kill -0 "$P" || fail "the process died on rollback"
grep -q "palette BAD" "$S/p.out" || fail "rollback did not restore the stock code: $(tail -1 "$S/p.out")"
cmp -s "/$LIB" "$R/$LIB" || fail "the file on disk is not the stock file after rollback"
ok "rollback: the stock code and file are back: $(tail -1 "$S/p.out")"
