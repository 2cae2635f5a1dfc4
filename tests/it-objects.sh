#!/usr/bin/env bash
# From object files to an installed fix: svc pack --objects builds the
# hotpatch payload and the coldpatch's hash; svc install synthesizes the
# coldpatch on the target from the installed base and swaps it in only if it
# is the signed one.  The real loader runs the result.
source "$(dirname "$0")/lib.sh"
scratch_new objects
CF="-O2 -fPIC -ffunction-sections -fdata-sections -fpatchable-function-entry=16,14"
mkdir -p "$S/o"
for v in 1 2 3; do gcc $CF -DGREET_VERSION=$v -c "$FIX/libgreet.c" -o "$S/o/v$v.o"; done
gcc -shared -Wl,-soname,libgreet.so.1 -o "$R/usr/lib/libgreet.so.1" "$S/o/v1.o"
cp "$R/usr/lib/libgreet.so.1" "$S/o/base.so"
gcc -O2 -o "$R/usr/bin/greeter" "$FIX/greeter.c" -L"$S/o" -l:base.so -Wl,-rpath,'$ORIGIN/../lib'
"$SVC" --quiet keygen --out "$S/vendor"; cp "$S/vendor.pub" "$R/etc/svc/trusted/"
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
greet() { "$R/usr/bin/greeter"; }
# the program links base.so by soname libgreet.so.1: it loads $R/usr/lib/libgreet.so.1
[ "$(greet)" = "hello from base" ] || fail "fixture does not run"

expect_exit 0 "$SVC" pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series g --seq 1 \
	--target "/usr/lib/libgreet.so.1=$S/o/base.so" --objects "$S/o/v1.o:$S/o/v2.o"
echo "   $OUT"
size=$(stat -c %s "$S/FIX-1.hfx"); full=$(stat -c %s "$S/o/base.so")
[ "$size" -lt "$full" ] || fail "package ($size) not smaller than the file it replaces ($full)"
"$SVC" inspect "$S/FIX-1.hfx" | grep -q "^payload hp/0" || fail "package ships no payload"
"$SVC" inspect "$S/FIX-1.hfx" | grep -q "^cold " && fail "coldpatch shipped without --include-coldpatch"
"$SVC" inspect "$S/FIX-1.hfx" | grep -q "redirect greet entry" || fail "inspect shows no redirect"
ok "pack --objects: payload only, $size bytes for a $full-byte library"

expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx"
echo "$OUT" | grep -q synthesized || fail "coldpatch not synthesized: $OUT"
[ "$(greet)" = "hello from FIX-1" ] || fail "synthesized coldpatch does not run the fix"
"$SVC" inspect "$R/usr/lib/libgreet.so.1" | grep -q "^fixes FIX-1" || fail "lineage note missing"
[ -z "$(readelf -a "$R/usr/lib/libgreet.so.1" 2>&1 >/dev/null)" ] || fail "readelf complains"
ok "install synthesizes the signed coldpatch on the target; the loader runs it"

expect_exit 0 "$SVC" --root "$R" rollback FIX-1
[ "$(greet)" = "hello from base" ] || fail "rollback"
expect_exit 0 "$SVC" pack --key "$S/vendor.key" --out "$S/FIX-1c.hfx" --id FIX-1c --series g --seq 2 \
	--target "/usr/lib/libgreet.so.1=$S/o/base.so" --objects "$S/o/v1.o:$S/o/v2.o" --include-coldpatch
"$SVC" inspect "$S/FIX-1c.hfx" | grep -q "^cold cold/0" || fail "--include-coldpatch shipped no coldpatch"
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1c.hfx"
echo "$OUT" | grep -q synthesized && fail "synthesized although shipped"
[ "$(greet)" = "hello from FIX-1" ] || fail "shipped coldpatch does not run the fix"
ok "--include-coldpatch ships the coldpatch whole; install takes it as is"

# determinism: two packs of the same inputs, same bytes
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/again.hfx" --id FIX-1 --series g --seq 1 \
	--target "/usr/lib/libgreet.so.1=$S/o/base.so" --objects "$S/o/v1.o:$S/o/v2.o"
cmp -s "$S/FIX-1.hfx" "$S/again.hfx" || fail "pack is not deterministic"
ok "pack is deterministic"

# a data change is cold-only material: refused by name
cat >"$S/o/d1.c" <<'C'
int table[4] = { 1, 2, 3, 4 };
int get(int i) { return table[i]; }
C
sed 's/4 }/5 }/' "$S/o/d1.c" >"$S/o/d2.c"
gcc $CF -c "$S/o/d1.c" -o "$S/o/d1.o"; gcc $CF -c "$S/o/d2.c" -o "$S/o/d2.o"
gcc -shared -o "$S/o/d.so" "$S/o/d1.o"
expect_exit 1 "$SVC" pack --key "$S/vendor.key" --out "$S/D.hfx" --id D --series d --seq 1 \
	--target "/usr/lib/d.so=$S/o/d.so" --objects "$S/o/d1.o:$S/o/d2.o"
echo "$OUT" | grep -q "data change in 'table'" || fail "data change not refused by name: $OUT"
[ ! -e "$S/D.hfx" ] || fail "a refused pack wrote a package"
ok "a data change is refused by name, nothing written"
echo "it-objects: $n passed, 0 failed"
