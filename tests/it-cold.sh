#!/usr/bin/env bash
# Cold servicing end to end, through the svc program, on a scratch root with
# real processes: install, boot, rollback, stacking, and every refusal.
source "$(dirname "$0")/lib.sh"
scratch_new cold
fixture_root
LIB="$R/usr/lib/libgreet.so.1"
V1=$(sha "$S/build/v1/libgreet.so.1"); V2=$(sha "$S/build/v2/libgreet.so.1"); V3=$(sha "$S/build/v3/libgreet.so.1")
pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2"
pack_fix FIX-2 2 "$S/build/v2" "$S/build/v3"
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }

# --- nothing in use: swapped at once; rollback at once
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx"
[ "$(sha "$LIB")" = "$V2" ] || fail "FIX-1 not swapped in"
[ "$("$R/usr/bin/greeter")" = "hello from FIX-1" ] || fail "new process does not run FIX-1"
[ "$(stat -c %a "$LIB")" = "$(stat -c %a "$S/build/v2/libgreet.so.1")" ] || fail "mode not kept"
"$SVC" --root "$R" status --json | grep -q '"id":"FIX-1"[^}]*"state":"installed"' || fail "status: FIX-1 not installed"
ok "install with nothing in use swaps at once"
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx"
echo "$OUT" | grep -q "already installed" || fail "re-install is not a no-op: $OUT"
ok "installing an installed fix is a no-op"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
[ "$(sha "$LIB")" = "$V1" ] || fail "rollback did not restore base"
[ "$("$R/usr/bin/greeter")" = "hello from base" ] || fail "base not back"
ls -A "$R/usr/lib" | grep -q svc- && fail "litter left beside the target: $(ls -A "$R/usr/lib")"
ok "rollback with nothing in use restores the base at once, no litter"

# --- in use: restart required; boot swaps; the old process keeps running
start_greeter "$S/out1"; P1=$GPID
expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx"
echo "$OUT" | grep -q "pid $P1" || fail "report does not name the process: $OUT"
[ "$(sha "$LIB")" = "$V1" ] || fail "swapped while in use"
"$SVC" --root "$R" status --json | grep -q '"state":"pending"' || fail "status: not pending"
expect_exit 0 "$SVC" --root "$R" boot
[ "$(sha "$LIB")" = "$V2" ] || fail "boot did not swap"
[ "$("$R/usr/bin/greeter")" = "hello from FIX-1" ] || fail "new process after boot runs old code"
kill -0 "$P1" || fail "old process died"
sleep 0.2; tail -n1 "$S/out1" | grep -q "hello from base" || fail "old process changed its code"
"$SVC" --root "$R" status --json | grep -q '"converged":false' || fail "status: old process not seen"
"$SVC" --root "$R" status --json | grep -q "\"pid\":$P1,[^}]*\"maps\":\"old\",\"level\":\"base\"" || fail "status: pid $P1 not marked old"
stop_pid "$P1"
"$SVC" --root "$R" status --json | grep -q '"converged":true' || fail "status: not converged"
ok "install while in use: exit 3, boot swaps, old process untouched, status tracks it"

# --- stacking and ordered rollback
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-2.hfx"
[ "$(sha "$LIB")" = "$V3" ] || fail "FIX-2 not applied"
before=$(tree_state "$R")
expect_exit 1 "$SVC" --root "$R" rollback FIX-1
echo "$OUT" | grep -q "roll.*back first" || fail "stacked rollback not explained: $OUT"
[ "$before" = "$(tree_state "$R")" ] || fail "refused rollback changed the tree"
expect_exit 0 "$SVC" --root "$R" rollback FIX-2
[ "$(sha "$LIB")" = "$V2" ] || fail "rollback of FIX-2 did not go back to FIX-1"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
[ "$(sha "$LIB")" = "$V1" ] || fail "rollback of FIX-1 did not go back to base"
ok "stacked fixes roll back in order only"

# --- anti-rollback is a high-water mark: FIX-2 (seq 2) was installed, so
# FIX-1 (seq 1) stays refused after both were rolled back; the operator's
# --allow-older lets it in, with a warning (the tests below reuse FIX-1)
before=$(tree_state "$R")
expect_exit 1 "$SVC" --root "$R" install "$S/FIX-1.hfx"
echo "$OUT" | grep -q "high-water mark" || fail "FIX-1 below the high-water mark not refused: $OUT"
[ "$before" = "$(tree_state "$R")" ] || fail "high-water refusal changed the tree"
expect_exit 0 "$SVC" --root "$R" install --allow-older "$S/FIX-1.hfx"
echo "$OUT" | grep -q "WARNING: FIX-1: sequence 1 .* below its high-water mark 2" ||
	fail "override not loud: $OUT"
[ "$(sha "$LIB")" = "$V2" ] || fail "override did not install"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
ok "a rolled-back series keeps its high-water mark; --allow-older overrides it loudly"

# --- rollback while in use is deferred; rollback of a pending install cancels it
expect_exit 0 "$SVC" --root "$R" install --allow-older "$S/FIX-1.hfx"
start_greeter "$S/out2"; P2=$GPID
expect_exit 3 "$SVC" --root "$R" rollback FIX-1
[ "$(sha "$LIB")" = "$V2" ] || fail "rollback swapped while in use"
expect_exit 0 "$SVC" --root "$R" boot
[ "$(sha "$LIB")" = "$V1" ] || fail "boot did not complete the rollback"
stop_pid "$P2"
start_greeter "$S/out3"; P2=$GPID
expect_exit 3 "$SVC" --root "$R" install --allow-older --json "$S/FIX-1.hfx"
cancelled_txn=$(echo "$OUT" | sed -n 's/.*"txn":\([0-9]*\).*/\1/p')
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
echo "$OUT" | grep -q "cancelled pending transaction $cancelled_txn of FIX-1" || fail "pending install not cancelled: $OUT"
ls -A "$R/usr/lib" | grep -q '\.new$' && fail "staged file left after cancel"
expect_exit 0 "$SVC" --root "$R" boot
[ "$(sha "$LIB")" = "$V1" ] || fail "cancelled install was applied at boot"
stop_pid "$P2"
# the cancelled record's number is never handed out again (txn-high)
expect_exit 0 "$SVC" --root "$R" install --allow-older --json "$S/FIX-1.hfx"
next_txn=$(echo "$OUT" | sed -n 's/.*"txn":\([0-9]*\).*/\1/p')
[ -n "$cancelled_txn" ] && [ -n "$next_txn" ] && [ "$next_txn" -gt "$cancelled_txn" ] ||
	fail "transaction $cancelled_txn of the cancelled install handed out again: $next_txn"
[ "$(cat "$R/var/lib/svc/txn-high")" = "$next_txn" ] || fail "txn-high is not $next_txn"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
ok "rollback in use waits for boot; rollback of a pending install cancels it; its number stays spent"

# --- refusals: exit 1, one line naming the file, nothing changed
"$SVC" --quiet keygen --out "$S/rogue"
"$SVC" --quiet pack --key "$S/rogue.key" --out "$S/untrusted.hfx" --id FIX-9 --series greet --seq 9 \
	--target "/usr/lib/libgreet.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
repack "$S/FIX-1.hfx" "$S/badsig.hfx" '
for m in members:
    if m[0] == "manifest": m[1] = m[1].replace(b"series greet", b"series greeT")'
repack "$S/FIX-1.hfx" "$S/tampered.hfx" '
for m in members:
    if m[0].startswith("cold/"): m[1] = m[1][:-1] + bytes([m[1][-1] ^ 1])'
repack "$S/FIX-1.hfx" "$S/dotdot.hfx" '
members.append(["../evil", b"x"])'
repack "$S/FIX-1.hfx" "$S/absolute.hfx" '
members.append(["/etc/evil", b"x"])'
repack "$S/FIX-1.hfx" "$S/symlink.hfx" '
links.append(["cold/1", "/etc/passwd"])'
repack "$S/FIX-1.hfx" "$S/mixed.hfx" "
import tarfile
with tarfile.open('$S/FIX-2.hfx', 'r:gz') as t2:
    other = {m.name: t2.extractfile(m).read() for m in t2.getmembers()}
for m in members:
    if m[0].startswith('cold/'): m[1] = other[m[0]]"
head -c 300 "$S/FIX-1.hfx" >"$S/truncated.hfx"
pack_fix FIX-W 5 "$S/build/v2" "$S/build/v3"       # applies to FIX-1's level, not base
mkdir -p "$S/real"; cp "$LIB" "$S/real/"; mv "$R/usr/lib" "$R/usr/lib.real"; ln -s lib.real "$R/usr/lib"
before=$(tree_state "$R")
expect_exit 1 "$SVC" --root "$R" install --allow-older "$S/FIX-1.hfx"
echo "$OUT" | grep -q "symbolic link" || fail "symlinked target directory not refused: $OUT"
[ "$before" = "$(tree_state "$R")" ] || fail "symlink refusal changed the tree"
rm "$R/usr/lib"; mv "$R/usr/lib.real" "$R/usr/lib"
ln -s libgreet.so.1 "$R/usr/lib/libgreet.so.link"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/link.hfx" --id FIX-L --series link --seq 1 \
	--target "/usr/lib/libgreet.so.link=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
before=$(tree_state "$R")
for bad in badsig:"signature" untrusted:"trusted key" tampered:"" dotdot:"" absolute:"" symlink:"" \
	mixed:"" truncated:"" FIX-W:"not the base" link:"symbolic link"; do
	f=${bad%%:*}; why=${bad#*:}
	expect_exit 1 "$SVC" --root "$R" install "$S/$f.hfx"
	[ "$(echo "$OUT" | wc -l)" = 1 ] || fail "$f: error is not one line: $OUT"
	echo "$OUT" | grep -q "$f\|libgreet" || fail "$f: error names no file: $OUT"
	[ -z "$why" ] || echo "$OUT" | grep -qi "$why" || fail "$f: reason missing ('$why'): $OUT"
	[ "$before" = "$(tree_state "$R")" ] || fail "$f: refusal changed the tree"
	echo "   refused $f: $OUT"
done
ok "every bad package is refused with one line and changes nothing"

# --- anti-rollback: an older sequence of the series is refused
pack_fix FIX-0 0 "$S/build/v1" "$S/build/v2"
expect_exit 0 "$SVC" --root "$R" install --allow-older "$S/FIX-1.hfx"
before=$(tree_state "$R")
expect_exit 1 "$SVC" --root "$R" install "$S/FIX-0.hfx"
echo "$OUT" | grep -q "not newer" || fail "older sequence not refused: $OUT"
[ "$before" = "$(tree_state "$R")" ] || fail "anti-rollback refusal changed the tree"
ok "an older sequence of the same series is refused"

# --- one transaction at a time
flock "$R/var/lib/svc/lock" sleep 3 & LOCKER=$!; STARTED_PIDS+=("$LOCKER")
sleep 0.3
expect_exit 1 "$SVC" --root "$R" rollback FIX-1
echo "$OUT" | grep -q "another svc transaction" || fail "lock not reported: $OUT"
expect_exit 0 "$SVC" --root "$R" --wait 10 rollback FIX-1
wait "$LOCKER" || true
ok "a second transaction fails clearly, or waits with --wait"

# --- usage
expect_exit 2 "$SVC" --root "$R" install
expect_exit 2 "$SVC" --root "$R" frobnicate
expect_exit 2 "$SVC" --root "$R" status extra
expect_exit 1 "$SVC" --root "$R" rollback NO-SUCH-FIX
ok "usage errors exit 2, unknown fix exits 1"
echo "it-cold: $n passed, 0 failed"
