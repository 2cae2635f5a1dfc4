#!/usr/bin/env bash
# svc and dpkg diversions: real diversions made by dpkg-divert in a scratch
# root's dpkg database, with packages built here by dpkg-deb and installed by
# dpkg --root.  A diverted path holds the diverting package's file (or, for a
# local diversion, no package's); the divert-to path holds the original
# package's file, which every .list and .md5sums still names by the diverted
# path.  svc status and svc verify must name the right owner and compare with
# the right md5sum line.  Nothing here touches the real system's database.
source "$(dirname "$0")/lib.sh"
scratch_new divert
fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
command -v dpkg-divert >/dev/null || fail "dpkg-divert missing"
dpkg_root_init
L=/usr/lib/libgreet.so.1; D=/usr/lib/libgreet.so.1.distrib
A=/usr/lib/libaux.so.1; AO=/usr/lib/libaux.so.1.orig
V1=$(sha "$S/build/v1/libgreet.so.1"); V2=$(sha "$S/build/v2/libgreet.so.1")

# libgreet1 ships libgreet v1 and libaux (a copy of v1); greet-hardened
# ships its own libgreet.so.1 (v2) and diverts libgreet1's away, as its
# preinst would (dpkg-divert --package, --rename moves the installed file)
rm -f "$R$L"
mkdir -p "$S/p1/usr/lib" "$S/p2/usr/lib"
cp "$S/build/v1/libgreet.so.1" "$S/p1/usr/lib/libgreet.so.1"
cp "$S/build/v1/libgreet.so.1" "$S/p1/usr/lib/libaux.so.1"
cp "$S/build/v2/libgreet.so.1" "$S/p2/usr/lib/libgreet.so.1"
deb_build libgreet1 1.0 "$S/p1" "$S/libgreet1.deb"
deb_build greet-hardened 2.0 "$S/p2" "$S/greet-hardened.deb"
expect_exit 0 dpkg --root="$R" -i "$S/libgreet1.deb"
expect_exit 0 dpkg-divert --root="$R" --package greet-hardened --rename --divert "$D" --add "$L"
expect_exit 0 dpkg --root="$R" -i "$S/greet-hardened.deb"
[ "$(sha "$R$L")" = "$V2" ] && [ "$(sha "$R$D")" = "$V1" ] || fail "the diversion did not place the files"
# a local diversion: the admin keeps libaux1's file at .orig and puts a
# file of their own (the same bytes: svc's fix applies to it) in its place
expect_exit 0 dpkg-divert --root="$R" --local --rename --divert "$AO" --add "$A"
cp "$S/build/v1/libgreet.so.1" "$R$A"
printf '%s\n' "$L" "$D" greet-hardened "$A" "$AO" ":" | cmp -s - "$R/var/lib/dpkg/diversions" ||
	fail "unexpected diversions file: $(cat "$R/var/lib/dpkg/diversions")"
ok "dpkg-divert: $L diverted to $D by greet-hardened, $A locally to $AO"

# FIX-1 on greet-hardened's file (v2 -> v3), FIX-2 on libgreet1's file at
# the divert-to path (v1 -> v2), FIX-3 on the local file (v1 -> v2)
pk() { "$SVC" --quiet pack --key "$S/vendor.key" --out "$S/$1.hfx" --id "$1" --series "$2" --seq 1 \
	--target "$3=$4/libgreet.so.1:$5/libgreet.so.1"; }
pk FIX-1 hard "$L" "$S/build/v2" "$S/build/v3"
pk FIX-2 distrib "$D" "$S/build/v1" "$S/build/v2"
pk FIX-3 aux "$A" "$S/build/v1" "$S/build/v2"
for f in 1 2 3; do expect_exit 0 "$SVC" --root "$R" install "$S/FIX-$f.hfx"; done

json=$("$SVC" --root "$R" status --json)
file_json() { echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin)
f=[f for f in d["files"] if f["path"]==sys.argv[1]][0]; print(json.dumps([f["dpkg"], f["diversion"]], sort_keys=True))' "$1"; }
[ "$(file_json "$L")" = '[{"accounted": true, "md5sum": "differs", "package": "greet-hardened", "version": "2.0"}, {"by": "greet-hardened", "from": "/usr/lib/libgreet.so.1", "role": "diverted", "to": "/usr/lib/libgreet.so.1.distrib"}]' ] ||
	fail "status of the diverted path: $(file_json "$L")"
[ "$(file_json "$D")" = '[{"accounted": true, "md5sum": "differs", "package": "libgreet1", "version": "1.0"}, {"by": "greet-hardened", "from": "/usr/lib/libgreet.so.1", "role": "divert-to", "to": "/usr/lib/libgreet.so.1.distrib"}]' ] ||
	fail "status of the divert-to path: $(file_json "$D")"
[ "$(file_json "$A")" = '[null, {"by": null, "from": "/usr/lib/libaux.so.1", "role": "diverted", "to": "/usr/lib/libaux.so.1.orig"}]' ] ||
	fail "status of the locally diverted path: $(file_json "$A")"
ok "status --json: the diverted path is greet-hardened's, the divert-to path libgreet1's, the local one no package's"

expect_exit 0 "$SVC" --root "$R" status
echo "$OUT" | grep -qF "dpkg: greet-hardened 2.0, md5sum differs: svc's coldpatch of FIX-1" || fail "status: $OUT"
echo "$OUT" | grep -qF "diversion: $L -> $D by greet-hardened: the file here is greet-hardened's, the packaged one is $D" ||
	fail "status: $OUT"
echo "$OUT" | grep -qF "dpkg: libgreet1 1.0, md5sum differs: svc's coldpatch of FIX-2" || fail "status: $OUT"
echo "$OUT" | grep -qF "diversion: $L -> $D by greet-hardened: the file here is libgreet1's $L" || fail "status: $OUT"
echo "$OUT" | grep -qF "diversion: $A -> $AO (local): the file here is no package's, the packaged one is $AO" ||
	fail "status: $OUT"
ok "status names the diversion of each file and whose file it is"

expect_exit 0 "$SVC" --root "$R" verify
echo "$OUT" | grep -qx "$L" && echo "$OUT" | grep -qx "$D" || fail "verify does not list both packaged files: $OUT"
echo "$OUT" | grep -qx "$A" && fail "verify lists the local file: $OUT"
echo "$OUT" | grep -q "^3 serviced files, 2 owned by dpkg, 2 not as dpkg installed them: all accounted for by svc" ||
	fail "verify: $OUT"
ok "verify: both packaged files differ as svc's coldpatches; the local file is no package's business"

# the md5sum line compared is the owner's: greet-hardened's file back to
# its own bytes matches greet-hardened's line (libgreet1's line for the same
# name would not)
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
json=$("$SVC" --root "$R" status --json)
file_json "$L" | grep -q '"md5sum": "matches", "package": "greet-hardened"' || fail "after rollback: $(file_json "$L")"
ok "after rollback greet-hardened's file matches greet-hardened's md5sum"

# apt/dpkg upgrades libgreet1: dpkg puts its new file at the divert-to path,
# over FIX-2's coldpatch; reconcile sees libgreet1's md5sum vouch for it
mkdir -p "$S/p3/usr/lib"
cp "$S/build/v3/libgreet.so.1" "$S/p3/usr/lib/libgreet.so.1"
cp "$S/build/v3/libgreet.so.1" "$S/p3/usr/lib/libaux.so.1"
deb_build libgreet1 1.1 "$S/p3" "$S/libgreet1_1.1.deb"
expect_exit 0 dpkg --root="$R" -i "$S/libgreet1_1.1.deb"
[ "$(sha "$R$D")" = "$(sha "$S/build/v3/libgreet.so.1")" ] && [ "$(sha "$R$L")" = "$V2" ] ||
	fail "dpkg did not honour the diversion"
expect_exit 0 "$SVC" --root "$R" reconcile
echo "$OUT" | grep -q "^FIX-2: superseded: libgreet1 1.1 replaced .*$D" || fail "reconcile: $OUT"
echo "$OUT" | grep -qE "FIX-(1|3)" && fail "reconcile touched another fix: $OUT"
json=$("$SVC" --root "$R" status --json)
file_json "$D" | grep -q '"md5sum": "matches", "package": "libgreet1", "version": "1.1"' || fail "after upgrade: $(file_json "$D")"
ok "dpkg upgrades libgreet1 at the divert-to path: reconcile marks FIX-2 superseded by libgreet1 1.1"

# a change svc does not account for, at the divert-to path: named by verify
cp "$S/build/v1/libgreet.so.1" "$R$D"
expect_exit 3 "$SVC" --root "$R" verify
echo "$OUT" | grep -qF "dpkg: libgreet1 1.1, md5sum differs: NOT accounted for by svc" || fail "verify: $OUT"
ok "verify: exit 3 for libgreet1's file changed behind svc's back at the divert-to path"

# without the diversions file nothing is diverted: the lists alone decide
# again (both name $L; $D is no package's)
mv "$R/var/lib/dpkg/diversions" "$S/diversions"
json=$("$SVC" --root "$R" status --json)
file_json "$D" | grep -q '^\[null, null\]$' || fail "without diversions: $(file_json "$D")"
# a diversions file dpkg did not write: no owner is guessed, status still works
printf '%s\n' "$L" "$D" >"$R/var/lib/dpkg/diversions"
json=$("$SVC" --root "$R" status --json)
for p in "$L" "$D" "$A"; do
	file_json "$p" | grep -q '^\[null, null\]$' || fail "torn diversions: $p: $(file_json "$p")"
done
ok "a truncated diversions file: no owner guessed, status still answers"
