#!/usr/bin/env bash
# svc build --deb (slow: two dpkg-buildpackage runs; part of `make
# check-stock`, callable alone): the fixture project of it-build packaged the
# Debian way (debhelper, dpkg-buildflags) is built and its .deb unpacked into
# a scratch root as the installed base (stripped by dh_strip); then
# `svc --root R build --deb X.dsc` makes the fix from the source package
# alone, and the package is byte for byte the one made by hand: objects
# compiled with dpkg-buildflags' CFLAGS plus -ffunction-sections
# -fdata-sections, then `svc pack`.  The fix then runs live.
source "$(dirname "$0")/../lib.sh"
scratch_new build-deb
FB="$SVC_TOP/tests/fixtures/build"
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
	fail "needs dpkg-dev and debhelper (sh tools/deps.sh deb)"
[ "$(id -u)" = 0 ] || fail "needs root (apt-get build-dep)"

# the source package: the fixture plus debian/, format 3.0 (native)
T="$S/svc-count-1.0"
mkdir -p "$T"; cp -a "$FB/src/." "$FB/debian" "$T/"
(cd "$S" && dpkg-source -b svc-count-1.0 >/dev/null 2>&1) || fail "dpkg-source -b"
DSC="$S/svc-count_1.0.dsc"
(cd "$T" && dpkg-buildpackage -b -uc -us >"$S/base-build.log" 2>&1) ||
	fail "the base does not build: $(tail -n3 "$S/base-build.log")"
dpkg-deb -x "$S/svc-count_1.0_amd64.deb" "$R"
readelf -S "$R/usr/lib/libcount.so.1" | grep -q "\.symtab" && fail "base not stripped by dh_strip"
"$SVC" --quiet keygen --out "$S/vendor"; cp "$S/vendor.pub" "$R/etc/svc/trusted/"
ok "the base: built by dpkg-buildpackage, installed (stripped) in a scratch root"

expect_exit 0 "$SVC" --root "$R" build --deb "$DSC" --patch "$FB/step2.patch" \
	--key "$S/vendor.key" --out "$S/DEB-1.hfx" --id DEB-1 --series count --seq 1 --keep "$S/keep"
echo "$OUT" | grep -E '^[a-z]+ +[0-9.]+s' | sed 's/^/   /'
echo "$OUT" | grep -q "^build .*target /usr/lib/libcount.so.1 (base $R/usr/lib/libcount.so.1)" ||
	fail "library not a target: $OUT"
echo "$OUT" | grep -q "^build .*target /usr/bin/counter (base $R/usr/bin/counter)" ||
	fail "program not a target: $OUT"
echo "$OUT" | grep -q "libcount.so.1 has the base's build-id" || fail "base not reproduced: $OUT"
grep -h "^arg -ffile-prefix-map=" "$S/keep/log/"*.rec | grep -q . ||
	fail "dpkg-buildflags' flags not in the recorded commands"
ok "svc build --deb: fetched, built as Debian does, base reproduced, package written"

# by hand: the same units, dpkg-buildflags' CFLAGS, old and patched, then pack
mkdir -p "$S/hand"; cp -a "$T" "$S/hand/old"; cp -a "$T" "$S/hand/new"
(cd "$S/hand/new" && patch -s -p1 <"$FB/step2.patch")
for side in old new; do
	(cd "$S/hand/$side" && CF="$(dpkg-buildflags --get CFLAGS)" &&
	 for u in lib/count lib/fmt util/ahead; do
		cc $CF -fPIC -fpatchable-function-entry=16,14 -Iinclude -ffunction-sections \
			-fdata-sections -c "$u.c" -o "$S/hand/${u#*/}.$side.o"
	 done)
done
# the installed base is stripped: the payload binds to the unstripped build
# with its build-id (what svc build uses; the debug-file lookup is issue 10's)
expect_exit 0 "$SVC" pack --key "$S/vendor.key" --out "$S/HAND-1.hfx" --id DEB-1 --series count \
	--seq 1 --target "/usr/lib/libcount.so.1=$R/usr/lib/libcount.so.1" --base-build "$T/libcount.so.1" \
	--objects "$S/hand/count.old.o:$S/hand/count.new.o" --objects "$S/hand/fmt.old.o:$S/hand/fmt.new.o" \
	--target "/usr/bin/counter=$R/usr/bin/counter" --base-build "$T/counter" \
	--objects "$S/hand/ahead.old.o:$S/hand/ahead.new.o"
cmp "$S/DEB-1.hfx" "$S/HAND-1.hfx" || fail "svc build --deb and the hand-made package differ"
ok "the package equals the hand-made one, byte for byte"

# NAME=VERSION: the same source package served by a local source archive
# (dpkg-scansources index), reached through a scratch apt configuration
# passed in APT_CONFIG: the machine's own apt configuration is never read
# for sources nor changed; its dpkg status stays the one build-dep checks.
etc_apt() { find /etc/apt -type f -exec sha256sum {} + | sort; }
etc_apt >"$S/etc-apt.before"
mkdir -p "$S/archive" "$S/apt/lists/partial" "$S/apt/cache/archives/partial"
cp "$DSC" "$S/svc-count_1.0.tar."* "$S/archive/"
(cd "$S/archive" && dpkg-scansources . 2>/dev/null | gzip -9n >Sources.gz)
zcat "$S/archive/Sources.gz" | grep -qx "Package: svc-count" || fail "dpkg-scansources indexed nothing"
echo "deb-src [trusted=yes] file:$S/archive ./" >"$S/apt/sources.list"
cat >"$S/apt/apt.conf" <<CONF
Dir::Etc::SourceList "$S/apt/sources.list";
Dir::Etc::SourceParts "$S/apt/none";
Dir::State::Lists "$S/apt/lists";
Dir::Cache "$S/apt/cache";
CONF
export APT_CONFIG="$S/apt/apt.conf"
apt-get update >"$S/apt/update.log" 2>&1 || fail "apt-get update (scratch): $(tail -n1 "$S/apt/update.log")"
[ "$(apt-get source --print-uris svc-count=1.0 | grep -c "file:$S/archive")" -ge 2 ] ||
	fail "the scratch apt configuration does not serve svc-count 1.0"
for bad in "nosuchpkg-svc=1.0:no source package 'nosuchpkg-svc'" \
	"nosuchpkg-svc:source package for nosuchpkg-svc" \
	"svc-count=9.9:carry svc-count 1.0, not version '9.9'"; do
	expect_exit 1 "$SVC" --root "$R" build --deb "${bad%%:*}" --patch "$FB/step2.patch" \
		--key "$S/vendor.key" --out "$S/BAD.hfx" --id BAD-1 --series count --seq 1
	[ "$(echo "$OUT" | wc -l)" = 1 ] || fail "not one line for ${bad%%:*}: $OUT"
	echo "$OUT" | grep -q "${bad#*:}" || fail "the line does not name ${bad#*:}: $OUT"
	[ ! -e "$S/BAD.hfx" ] || fail "a package was written for ${bad%%:*}"
	echo "   ${bad%%:*}: $OUT"
done
ok "a missing source package and a missing version: one line naming it, exit 1, no package"

expect_exit 0 "$SVC" --root "$R" build --deb svc-count=1.0 --patch "$FB/step2.patch" \
	--key "$S/vendor.key" --out "$S/NAME-1.hfx" --id DEB-1 --series count --seq 1 --keep "$S/keep-name"
echo "$OUT" | grep -E '^[a-z]+ +[0-9.]+s' | sed 's/^/   /'
grep -q "file:$S/archive" "$S/keep-name/deb.log" || fail "not fetched from the local archive: $(cat "$S/keep-name/deb.log")"
cmp "$S/NAME-1.hfx" "$S/DEB-1.hfx" || fail "svc build --deb NAME=VERSION differs from the .dsc build"
unset APT_CONFIG
etc_apt | cmp -s - "$S/etc-apt.before" || fail "the machine's /etc/apt changed"
ok "svc build --deb svc-count=1.0: apt-get source from the local archive, a signed package equal to the .dsc one"

start_bg "$S/c.out" "$R/usr/bin/counter" 20; C=$BGPID
wait_line "$S/c.out" "step 1 ahead" || fail "counter not at base"
# counter maps both targets: the library's fix goes in live, the program's
# own file is refused by name (one fix id in two files of one process), exit 3
expect_exit 3 "$SVC" --root "$R" install "$S/DEB-1.hfx" /hotpatch:enable
echo "$OUT" | grep -q "NOT PATCHED: pid $C .*another file of this process" ||
	fail "the second file of one process not named: $OUT"
wait_line "$S/c.out" "step 2 ahead" || fail "counter did not change: $(tail -n1 "$S/c.out")"
stop_pid "$C"
ok "installed live: the running program counts by 2 (its own file named for a restart, exit 3)"
echo "build-deb: $n passed, 0 failed"
