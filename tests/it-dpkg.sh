#!/usr/bin/env bash
# svc and the package manager: a real local apt repository (two versions of a
# package built here with dpkg-deb, indexed by dpkg-scanpackages, a file:
# source in a scratch apt configuration) installed into the scratch root with
# apt-get and dpkg --root; its libraries serviced by svc, hot and cold; then
# apt upgrades the package, and the apt hook (tools/apt/80svc.in) runs
# svc reconcile.  Nothing here touches the real system's dpkg database.
source "$(dirname "$0")/lib.sh"
scratch_new dpkg
hot_fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
command -v dpkg-scanpackages >/dev/null || fail "dpkg-scanpackages missing (sh tools/deps.sh base)"

# --- the package: libcalc1 1.0 (libcalc v1 + libpark v1) and 2.0 (v3 + v2,
# new builds: not the content of any svc fix)
mkdir -p "$S/repo"
# the fixture's base builds are what 1.0 ships (the fixes apply to them)
mkdir -p "$S/pkg-1.0/usr/lib" "$S/pkg-2.0/usr/lib"
mv "$R/usr/lib/libcalc.so.1" "$R/usr/lib/libpark.so.1" "$S/pkg-1.0/usr/lib/"
deb_build libcalc1 1.0 "$S/pkg-1.0" "$S/repo/libcalc1_1.0_amd64.deb"
gcc -shared -Wl,-soname,libcalc.so.1 -o "$S/pkg-2.0/usr/lib/libcalc.so.1" "$S/o/calc3.o"
gcc -shared -Wl,-soname,libpark.so.1 -o "$S/pkg-2.0/usr/lib/libpark.so.1" "$S/o/park2.o"
deb_build libcalc1 2.0 "$S/pkg-2.0" "$S/repo/libcalc1_2.0_amd64.deb"
(cd "$S/repo" && dpkg-scanpackages -m . /dev/null >Packages 2>/dev/null)

# --- a scratch apt: its own sources, lists, cache, dpkg database = $R's
A="$S/apt"
mkdir -p "$A/apt.conf.d" "$A/preferences.d" "$A/sources.list.d" "$A/lists/partial" \
	"$A/cache/archives/partial"
dpkg_root_init
echo "deb [trusted=yes] file:$S/repo ./" >"$A/sources.list"
cat >"$A/apt.conf" <<EOF
Dir::Etc::sourcelist "$A/sources.list";
Dir::Etc::sourceparts "$A/sources.list.d";
Dir::Etc::parts "$A/apt.conf.d";
Dir::Etc::preferencesparts "$A/preferences.d";
Dir::State::lists "$A/lists";
Dir::State::status "$R/var/lib/dpkg/status";
Dir::Cache "$A/cache";
Dir::Cache::archives "$A/cache/archives";
APT::Sandbox::User "root";
DPkg::Options:: "--root=$R";
EOF
# the shipped hook, pointed at this build and this root
sed -e "s|@BINDIR@/svc --wait|$SVC --root $R --wait|" -e "s|@BINDIR@|$SVC_TOP/build|g" \
	"$SVC_TOP/tools/apt/80svc.in" >"$A/apt.conf.d/80svc"
export APT_CONFIG="$A/apt.conf"
apt-get -q update >"$S/update.log" 2>&1 || fail "apt-get update of the scratch repository failed"
expect_exit 0 apt-get -q install -y libcalc1=1.0
[ "$(sha "$R/usr/lib/libcalc.so.1")" = "$(sha "$S/o/libcalc.so.1")" ] || fail "apt did not install 1.0"
ok "apt installs libcalc1 1.0 from a local file: repository into the scratch root"

# --- service it: libcalc hot (FIX-1), libpark cold while in use (FIX-2, pending)
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-2.hfx" --id FIX-2 --series park --seq 1 \
	--target "/usr/lib/libpark.so.1=$S/o/libpark.so.1" --objects "$S/o/park1.o:$S/o/park2.o"
start_bg "$S/w1.out" "$R/usr/bin/worker" 1 50; W1=$BGPID
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable
wait_line "$S/w1.out" "calc v2" || fail "worker not patched"
start_bg "$S/w2.out" "$R/usr/bin/worker" 1 50; W2=$BGPID
wait_line "$S/w2.out" "calc v2" || fail "a new worker does not run the coldpatch"
start_bg "$S/park.out" "$R/usr/bin/parker"; PARK=$BGPID
expect_exit 3 "$SVC" --root "$R" install "$S/FIX-2.hfx"
ls -A "$R/usr/lib" | grep -q '^\.libcalc\.so\.1\.svc-.*\.orig$' || fail "no backup of libcalc"
ls -A "$R/usr/lib" | grep -q '^\.libpark\.so\.1\.svc-.*\.new$' || fail "FIX-2 not staged"
ls "$R/var/lib/svc/payloads" | grep -q '^FIX-1\.' || fail "FIX-1's payload not kept"

json=$("$SVC" --root "$R" status --json)
echo "$json" | grep -q '"path":"/usr/lib/libcalc.so.1"[^]]*"dpkg":{"package":"libcalc1","version":"1.0","md5sum":"differs","accounted":true}' ||
	fail "status does not explain libcalc's md5sum: $json"
echo "$json" | grep -q '"path":"/usr/lib/libpark.so.1"[^]]*"dpkg":{"package":"libcalc1","version":"1.0","md5sum":"matches"' ||
	fail "status: libpark (swap pending) should match dpkg: $json"
"$SVC" --root "$R" status | grep -q "dpkg: libcalc1 1.0, md5sum differs: svc's coldpatch of FIX-1" ||
	fail "status text does not explain the mismatch"
expect_exit 0 "$SVC" --root "$R" verify
echo "$OUT" | grep -q "^/usr/lib/libcalc.so.1" || fail "verify does not list libcalc: $OUT"
echo "$OUT" | grep -q "all accounted for by svc" || fail "verify: $OUT"
dpkg --root="$R" --verify libcalc1 | grep -q "usr/lib/libcalc.so.1" || fail "dpkg --verify sees no change"
ok "status names the owning package; verify explains dpkg's mismatch as FIX-1's coldpatch"

# --- apt upgrades the package; its hook runs svc reconcile
expect_exit 0 apt-get -q install -y libcalc1
echo "$OUT" | grep -q "Unpacking libcalc1 (2.0) over (1.0)" || fail "apt did not upgrade: $OUT"
echo "$OUT" | grep -q "FIX-1: superseded: libcalc1 2.0 replaced $R/usr/lib/libcalc.so.1" ||
	fail "the hook did not reconcile: $OUT"
echo "$OUT" | grep -q "cancelled pending transaction [0-9]* (install FIX-2)" || fail "FIX-2 not cancelled: $OUT"
echo "$OUT" | grep -q "pid $W1 (worker) still runs the replaced $R/usr/lib/libcalc.so.1 (FIX-1, fixed in memory)" ||
	fail "W1 not named: $OUT"
echo "$OUT" | grep -q "pid $W2 (worker) still runs the replaced $R/usr/lib/libcalc.so.1 (FIX-1, coldpatch)" ||
	fail "W2 not named: $OUT"
echo "$OUT" | grep -q "pid $PARK (parker) still runs the replaced $R/usr/lib/libpark.so.1 (not fixed)" ||
	fail "parker not named: $OUT"
ok "apt upgrade: the hook marks FIX-1 and FIX-2 superseded, cancels FIX-2, names every old process"

json=$("$SVC" --root "$R" status --json)
echo "$json" | grep -q '"id":"FIX-1"[^}]*"state":"superseded","superseded_by":{"package":"libcalc1","version":"2.0"}' ||
	fail "status: FIX-1 not superseded: $json"
echo "$json" | grep -q '"id":"FIX-2"[^}]*"state":"superseded"' || fail "status: FIX-2 not superseded: $json"
echo "$json" | grep -q '"path":"/usr/lib/libcalc.so.1"[^]]*"md5sum":"matches"' || fail "status: md5sum: $json"
ls -A "$R/usr/lib" | grep -q 'svc-' && fail "backups or staged files left: $(ls -A "$R/usr/lib")"
[ -z "$(ls -A "$R/var/lib/svc/payloads")" ] || fail "payloads left: $(ls "$R/var/lib/svc/payloads")"
[ -z "$(ls -A "$R/var/lib/svc/pending")" ] || fail "pending records left: $(ls "$R/var/lib/svc/pending")"
wait_line "$S/w1.out" "calc v2" || fail "W1 lost its in-memory fix"
ok "status: superseded with package and version; no backup, staged file, payload or pending record left"

before=$(tree_state "$R")
expect_exit 3 "$SVC" --root "$R" reconcile
echo "$OUT" | grep -q "pid $W1 (worker) still runs" || fail "re-run does not name W1: $OUT"
echo "$OUT" | grep -qE "superseded:|removed|cancelled" && fail "re-run changed something: $OUT"
[ "$before" = "$(tree_state "$R")" ] || fail "re-run changed the tree"
stop_pid "$W1"; stop_pid "$W2"; stop_pid "$PARK"
expect_exit 0 "$SVC" --root "$R" reconcile
[ -z "$OUT" ] || fail "reconcile with nothing to do printed: $OUT"
expect_exit 1 "$SVC" --root "$R" rollback FIX-1
echo "$OUT" | grep -q "FIX-1: superseded: libcalc1 2.0" || fail "rollback of a superseded fix: $OUT"
expect_exit 0 "$SVC" --root "$R" boot
echo "$OUT" | grep -q "nothing pending" || fail "boot: $OUT"
ok "reconcile is idempotent, exit 3 while old processes run, 0 after; rollback refused; boot has nothing to quarantine"

# --- verify: a change no one accounts for; reconcile leaves it alone
cp "$S/o/libcalc.so.1" "$S/other.so"; printf 'x' >>"$S/other.so"; cp "$S/other.so" "$R/usr/lib/libcalc.so.1"
expect_exit 3 "$SVC" --root "$R" verify
echo "$OUT" | grep -q "NOT accounted for by svc" || fail "verify: $OUT"
ok "verify: exit 3 for a mismatch svc does not account for"

# --- a hook that fails never fails apt
sed -i "s|--root $R|--root $S/no-such-root|" "$A/apt.conf.d/80svc"
expect_exit 0 apt-get -q install -y --reinstall libcalc1
echo "$OUT" | grep -q "no-such-root" || fail "the failing hook's message is not shown: $OUT"
ok "a failing svc reconcile is printed and apt still succeeds"
