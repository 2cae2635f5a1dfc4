#!/usr/bin/env bash
# svc build end to end: a small make project (a library of two units sharing
# a header, a program) is built as the base and installed in a scratch root;
# `svc build` turns a header patch into a signed package from the source
# tree alone, and the package patches the running program live.  Then the
# refusals, each naming its cause, none writing a package: a data change, a
# failing hunk, a unit the build never compiled, another compiler.  Changed
# units also archived into a static library no target links are left out
# (issue 14); an object no link and no archive uses is refused.
source "$(dirname "$0")/lib.sh"
scratch_new build
FB="$SVC_TOP/tests/fixtures/build"
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }

# base_build [MAKE ARGS]: a fresh tree in $S/src, built; the base files in
# $S/base, the tree cleaned again for svc build (BASE_CFLAGS: the base's own)
base_build() {
	rm -rf "$S/src" "$S/base"; cp -a "$FB/src" "$S/src"; mkdir -p "$S/base"
	CFLAGS="${BASE_CFLAGS:--O2 -g}" make -s -C "$S/src" "$@" >/dev/null 2>&1 ||
		fail "fixture does not build"
	cp "$S/src/libcount.so.1" "$S/src/counter" "$S/base/"
	make -s -C "$S/src" clean >/dev/null
}
# svc_build EXIT PATCH OUT [extra args]  (BUILD: the build command)
svc_build() {
	local want=$1 patch=$2 out=$3; shift 3
	make -s -C "$S/src" clean >/dev/null   # the build runs in place: from a clean tree
	expect_exit "$want" "$SVC" build --source "$S/src" --patch "$FB/$patch" \
		--target "/usr/lib/libcount.so.1=$S/base/libcount.so.1" \
		--target "/usr/bin/counter=$S/base/counter" --build "${BUILD:-make -j2}" \
		--key "$S/vendor.key" --out "$S/$out" --id "$out" --series count --seq 1 "$@"
}

base_build
cp "$S/base/libcount.so.1" "$R/usr/lib/"; cp "$S/base/counter" "$R/usr/bin/"
"$SVC" --quiet keygen --out "$S/vendor"; cp "$S/vendor.pub" "$R/etc/svc/trusted/"
[ "$("$R/usr/bin/counter")" = "count 1 step 1 ahead 2" ] || fail "fixture does not run"

# --- the one command: build, verify, patch, changed units, compile, pack
svc_build 0 step2.patch FIX-1.hfx --keep "$S/keep"
echo "$OUT" | grep -E '^(build|verify|patch|changed|compile|pack) +[0-9.]+s' | sed 's/^/   /'
for step in build verify patch changed compile pack; do
	echo "$OUT" | grep -qE "^$step +[0-9]+\.[0-9]+s" || fail "no timed '$step' line: $OUT"
done
echo "$OUT" | grep -q "libcount.so.1 has the base's build-id" || fail "base not verified: $OUT"
echo "$OUT" | grep -q "^changed .*lib/count.o (lib/count.c)" || fail "count.c not changed: $OUT"
echo "$OUT" | grep -q "^changed .*lib/fmt.o (lib/fmt.c)" || fail "fmt.c not changed: $OUT"
echo "$OUT" | grep -q "/usr/bin/counter: main.c: 0 functions changed" ||
	fail "main.c (header included, no code changed) not seen unchanged: $OUT"
echo "$OUT" | grep -q "/usr/bin/counter: util/ahead.c: 1 function changed" ||
	fail "the program's unit from the static archive not mapped to it: $OUT"
[ -f "$S/FIX-1.hfx" ] || fail "no package"
"$SVC" inspect "$S/FIX-1.hfx" | grep -q "redirect count_next " || fail "count_next not fixed"
"$SVC" inspect "$S/FIX-1.hfx" | grep -q "redirect count_format " || fail "count_format not fixed"
"$SVC" inspect "$S/FIX-1.hfx" | grep -q "redirect count_ahead " || fail "count_ahead not fixed"
ls "$S/keep/obj/"*count.o.old.o "$S/keep/obj/"*count.o.new.o >/dev/null || fail "--keep kept no objects"
cmp -s "$FB/src/include/count.h" "$S/src/include/count.h" || fail "the source tree was patched"
ok "svc build: a header change touching three units (one in a static archive) -> both targets fixed"

# the recorded commands are the build's own, the record names the header
rec=$(grep -l "^source lib/count.c" "$S/keep/log/"*.rec)
grep -qx "arg -MD" "$rec" || fail "record lost the build's own -MD: $rec"
grep -qx "input $S/src/include/count.h" "$rec" || fail "record lacks the header input"
grep -qx "output $S/src/lib/count.o" "$rec" || fail "record output wrong"
grep -l "^kind link" "$S/keep/log/"*.rec | xargs grep -qx "output $S/src/libcount.so.1" ||
	fail "the library's link not recorded"
grep -l "^kind archive" "$S/keep/log/"*.rec | xargs grep -qx "input $S/src/util/ahead.o" ||
	fail "the archive's members not recorded"
# the assert text carries the same file name in old and new objects
strings "$S/keep/obj/"*count.o.new.o | grep -q "lib/count.c" || fail "__FILE__ lost in the new object"
strings "$S/keep/obj/"*count.o.new.o | grep -q "$S/keep/new" && fail "the copy's path leaked into the new object"
ok "compile log: the build's own command, its header inputs, links and archives; __FILE__ as in the base"

# --- installed live into a running program: its behaviour changes
start_bg "$S/c.out" "$R/usr/bin/counter" 20; C=$BGPID
wait_line "$S/c.out" "step 1 ahead" || fail "counter not at base"
# counter maps both targets (its library and itself): the library's fix goes
# in live; the same fix id in a second file of one process cannot (the
# in-process state knows a fix by id), so that file is refused by name and
# the exit says restart required -- never a "patched" that changed nothing
expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable
echo "$OUT" | grep -q "^patched pid $C" || fail "running counter not patched: $OUT"
echo "$OUT" | grep -q "NOT PATCHED: pid $C .*usr/bin/counter.*another file of this process" ||
	fail "the second file of one process not named: $OUT"
wait_line "$S/c.out" "step 2 ahead" || fail "counter did not change: $(tail -n1 "$S/c.out")"
a=$(tail -n1 "$S/c.out" | cut -d' ' -f2); sleep 0.2; last=$(tail -n1 "$S/c.out")
b=$(echo "$last" | cut -d' ' -f2)
[ $((b - a)) -gt 0 ] && [ $(((b - a) % 2)) = 0 ] || fail "counts do not step by 2: $a -> $b"
"$SVC" --root "$R" status >"$S/st.out" 2>&1 || true
grep -E "^/usr/bin/counter +FIX-1.hfx +NO +$C\(counter:base\)" "$S/st.out" >/dev/null ||
	fail "status must not call the program converged: $(cat "$S/st.out")"
kill -0 "$C" || fail "counter died"
[ "$("$R/usr/bin/counter")" = "count 2 step 2 ahead 4" ] || fail "a new process does not run the fix"
stop_pid "$C"
ok "installed /hotpatch:enable on a running program: it counts by 2, its own file refused by name (exit 3, not converged); new processes run both fixes"

# --- refusals: each names its cause and writes nothing
svc_build 1 data.patch D.hfx
echo "$OUT" | grep -q "data change in 'count_base'" || fail "data change not refused by name: $OUT"
[ ! -e "$S/D.hfx" ] || fail "refused build wrote a package"
ok "a data change is refused by name"

svc_build 1 badhunk.patch H.hfx
echo "$OUT" | grep -q "badhunk.patch: does not apply to $S/src: .*FAILED" || fail "failing hunk: $OUT"
[ ! -e "$S/H.hfx" ] || fail "refused build wrote a package"
echo "$OUT" | tail -n1 | sed "s/^/   /"
ok "a failing hunk is refused, naming the patch"

svc_build 1 unbuilt.patch U.hfx
echo "$OUT" | grep -q "lib/extra.c: changed by the patch, but the build never compiled it" ||
	fail "unbuilt unit: $OUT"
ok "a unit the build never compiled is refused by name"

# issue 14: the changed units also go into a static archive no target links
# (as Debian's xz-utils builds liblzma): those objects are left out, said so
BUILD='make -j2 EXTRA=libcount.a' svc_build 0 step2.patch A.hfx
for o in count fmt; do
	echo "$OUT" | grep -q " lib/$o.c: changed, but $S/src/static/$o.o goes into no target: left out" ||
		fail "static/$o.o not left out by name: $OUT"
done
R2="$S/root2"; mkdir -p "$R2/usr/lib" "$R2/usr/bin" "$R2/etc/svc/trusted"
cp "$S/base/libcount.so.1" "$R2/usr/lib/"; cp "$S/base/counter" "$R2/usr/bin/"
cp "$S/vendor.pub" "$R2/etc/svc/trusted/"
expect_exit 0 "$SVC" --root "$R2" install "$S/A.hfx"
[ "$("$R2/usr/bin/counter")" = "count 2 step 2 ahead 4" ] ||
	fail "the package does not fix the targets: $("$R2/usr/bin/counter")"
ok "changed units also archived into a static library no target links: left out by name, the targets fixed"

# an object no link and no archive uses is still an error, naming it
BUILD='make -j2 EXTRA=stray/count.o' svc_build 1 step2.patch S.hfx
echo "$OUT" | grep -q "lib/count.c: changed, but no recorded link or archive uses $S/src/stray/count.o" ||
	fail "an object nothing uses: $OUT"
[ ! -e "$S/S.hfx" ] || fail "refused build wrote a package"
ok "a changed object no link and no archive uses is refused by name"

# the tree in another directory: other debug paths, other build-ids, the same
# code: base verification compares the functions with the base's bytes
make -s -C "$S/src" clean >/dev/null
mv "$S/src" "$S/src.moved"; mkdir "$S/src"; mv "$S/src.moved" "$S/src/deeper"
S_SRC="$S/src/deeper"
expect_exit 0 "$SVC" build --source "$S_SRC" --patch "$FB/step2.patch" \
	--target "/usr/lib/libcount.so.1=$S/base/libcount.so.1" --target "/usr/bin/counter=$S/base/counter" \
	--build 'make -j2' --key "$S/vendor.key" --out "$S/M.hfx" --id M --series count --seq 1
echo "$OUT" | grep -q "has build-id .*, the base .*: its functions are checked" || fail "build-id: $OUT"
echo "$OUT" | grep -q "libcount.so.1: DW_AT_producer: the base's (1, from $S/base/libcount.so.1) are among this build's: 'GNU C" ||
	fail "producers not compared: $OUT"
echo "$OUT" | grep -qE "^pack .* 3 base functions verified against the base" || fail "not verified: $OUT"
rm -rf "$S/src"
ok "a tree built elsewhere (other build-ids, same code): verified function by function"

# the base built with -O1, stripped as dh_strip does (no .comment either),
# its debug info split off (compressed) and found by .gnu_debuglink: the
# producers differ in -O; refused naming both before any function is compared
BASE_CFLAGS="-O1 -g" base_build
for f in libcount.so.1 counter; do
	objcopy --only-keep-debug --compress-debug-sections "$S/base/$f" "$S/base/$f.debug"
	objcopy --remove-section=.comment --strip-unneeded --add-gnu-debuglink="$S/base/$f.debug" "$S/base/$f"
done
readelf -S "$S/base/libcount.so.1" | grep -qE "\.debug_info|\.comment" && fail "base not stripped"
svc_build 1 step2.patch P.hfx
echo "$OUT" | grep -q "libcount.so.1: built by another compiler or flags: the base (DW_AT_producer of $S/base/libcount.so.1.debug) by 'GNU C[0-9]* [0-9.]* .*-O1.*', this build by 'GNU C[0-9]* [0-9.]* .*-O2" ||
	fail "-O1 base (split debug info): $OUT"
[ ! -e "$S/P.hfx" ] || fail "refused build wrote a package"
echo "$OUT" | tail -n1 | cut -c1-200 | sed "s/^/   /"
ok "a base built with other flags (DW_AT_producer of its split debug file) is refused, naming both"

# no debug info for the base anywhere: base verification names the function
BASE_CFLAGS="-O1" base_build
svc_build 1 step2.patch O.hfx
echo "$OUT" | grep -q "producers not compared (no debug info in the base nor a debug file of it)" ||
	fail "producers without debug info: $OUT"
echo "$OUT" | grep -q "does not match the base build: 'count_next'" || fail "-O1 base: $OUT"
[ ! -e "$S/O.hfx" ] || fail "refused build wrote a package"
echo "$OUT" | tail -n1 | sed "s/^/   /"
ok "a build that does not reproduce the base's code is refused, naming the function"

base_build CC=clang
svc_build 1 step2.patch W.hfx
echo "$OUT" | grep -q "libcount.so.1: built by another compiler: the base by '.*clang" ||
	fail "other compiler: $OUT"
[ ! -e "$S/W.hfx" ] || fail "refused build wrote a package"
echo "$OUT" | tail -n1 | sed "s/^/   /"
ok "a base built by another compiler is refused, naming both"
echo "it-build: $n passed, 0 failed"
