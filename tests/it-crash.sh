#!/usr/bin/env bash
# Crash safety: kill svc before each of its durable steps in turn (the
# SVC_CRASH_AT switch), then run `svc boot` and assert that the transaction
# is fully applied or fully absent, with no file lost, torn or left behind.
source "$(dirname "$0")/lib.sh"
scratch_new crash
two_target_fixture

# level: "old", "new", or "mixed"/"torn" (failures)
level() {
	pair_level "$1/usr/lib/libgreet.so.1" "$1/usr/lib/libaux.so.1" "$V1" "$V1" "$V2" "$V2"
}

# walk NAME TEMPLATE ALLOWED CMD...: for N = 1, 2, ... run CMD in a copy of
# TEMPLATE with SVC_CRASH_AT=N until it runs to the end without crashing.
POINTS=0
walk() {
	local name=$1 tmpl=$2 allowed=$3; shift 3
	local n=1 rc lv
	while :; do
		rm -rf "$S/w"; cp -a "$tmpl" "$S/w"
		set +e
		{ SVC_CRASH_AT=$n "$SVC" --quiet --root "$S/w" "$@" >/dev/null 2>&1; } 2>/dev/null; rc=$?
		set -e
		"$SVC" --quiet --root "$S/w" boot >/dev/null 2>&1 || fail "$name: boot after crash at $n failed"
		lv=$(level "$S/w")
		case " $allowed " in *" $lv "*) ;; *) fail "$name: crash at step $n left '$lv'";; esac
		# the ledger agrees with the files
		local js; js=$("$SVC" --root "$S/w" status --json)
		if [ "$lv" = new ]; then echo "$js" | grep -q '"state":"installed"' || fail "$name: files new, ledger not (crash at $n): $js"
		else echo "$js" | grep -q '"state":"\(installed\|pending\)"' && fail "$name: files old, ledger says installed (crash at $n): $js"; fi
		if ls -A "$S/w/usr/lib" | grep -q '\.new$'; then fail "$name: staged file left after crash at $n"; fi
		[ -z "$(ls -A "$S/w/var/lib/svc/staging")" ] || fail "$name: staging record left at $n"
		# a second boot changes nothing
		local st; st=$(tree_state "$S/w" | grep -v last-boot)
		"$SVC" --quiet --root "$S/w" boot >/dev/null 2>&1
		[ "$st" = "$(tree_state "$S/w" | grep -v last-boot)" ] || fail "$name: second boot changed the tree (crash at $n)"
		[ "$rc" = 137 ] || break
		n=$((n + 1)); POINTS=$((POINTS + 1))
	done
	[ "$n" -gt 5 ] || fail "$name: only $n steps: the crash switch is not wired"
	echo "ok - $name: $((n - 1)) crash points, each recovered to {$allowed}"
}

# install, nothing in use: swaps at once
cp -a "$R" "$S/t-base"
walk "install (swap now)" "$S/t-base" "old new" install "$S/FIX-1.hfx"

# boot replay of an install left pending by a running process
start_greeter "$S/out"; expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx"; stop_pid "$GPID"
cp -a "$R" "$S/t-pending"
walk "boot replay" "$S/t-pending" "new" boot

# cancel of the pending install
walk "rollback of a pending install (cancel)" "$S/t-pending" "old new" rollback FIX-1

# rollback of an installed fix
cp -a "$S/t-pending" "$S/t-installed"; "$SVC" --quiet --root "$S/t-installed" boot
walk "rollback (swap now)" "$S/t-installed" "old new" rollback FIX-1

# --- svc reconcile after dpkg replaced the serviced files: crash before each
# of its steps, run it again; the result is the uncrashed one (FIX-1
# superseded, the pending FIX-2 cancelled, no backup, staged file or payload)
mkdir -p "$S/build/v4" "$S/deb1/usr/lib" "$S/deb2/usr/lib"; greet_lib 4 "$S/build/v4"
cp "$S/build/v1/libgreet.so.1" "$S/deb1/usr/lib/libgreet.so.1"; cp "$S/build/v1/libgreet.so.1" "$S/deb1/usr/lib/libaux.so.1"
cp "$S/build/v4/libgreet.so.1" "$S/deb2/usr/lib/libgreet.so.1"; cp "$S/build/v4/libgreet.so.1" "$S/deb2/usr/lib/libaux.so.1"
deb_build libgreet1 1.0 "$S/deb1" "$S/libgreet1_1.0.deb"; deb_build libgreet1 2.0 "$S/deb2" "$S/libgreet1_2.0.deb"
pack_fix FIX-2 2 "$S/build/v2" "$S/build/v3" \
	--target "/usr/lib/libaux.so.1=$S/build/v2/libgreet.so.1:$S/build/v3/libgreet.so.1"
R0=$R; R="$S/t-dpkg"; cp -a "$S/t-base" "$R"; dpkg_root_init
dpkg --root="$R" -i "$S/libgreet1_1.0.deb" >/dev/null
"$SVC" --quiet --root "$R" install "$S/FIX-1.hfx"
start_greeter "$S/out"; expect_exit 3 "$SVC" --root "$R" install "$S/FIX-2.hfx"; stop_pid "$GPID"
dpkg --root="$R" -i "$S/libgreet1_2.0.deb" >/dev/null
settled() {   # the state a finished reconcile leaves (marker times aside)
	tree_state "$1" | grep -v -e last-boot -e superseded/
	grep -hv '^at ' "$1"/var/lib/svc/superseded/* 2>/dev/null
}
rm -rf "$S/w"; cp -a "$R" "$S/w"; "$SVC" --quiet --root "$S/w" reconcile
want=$(settled "$S/w")
"$SVC" --root "$S/w" status --json | grep -q '"id":"FIX-2"[^}]*"state":"superseded"' || fail "reconcile: FIX-2 not superseded"
ls -A "$S/w/usr/lib" | grep -q svc- && fail "reconcile left $(ls -A "$S/w/usr/lib")"
n=1
while :; do
	rm -rf "$S/w"; cp -a "$R" "$S/w"
	set +e
	{ SVC_CRASH_AT=$n "$SVC" --quiet --root "$S/w" reconcile >/dev/null 2>&1; } 2>/dev/null; rc=$?
	set -e
	"$SVC" --quiet --root "$S/w" reconcile >/dev/null 2>&1 || fail "reconcile after a crash at $n failed"
	[ "$want" = "$(settled "$S/w")" ] || fail "reconcile: crash at step $n, then a re-run, differs from an uncrashed run: $(diff <(echo "$want") <(settled "$S/w"))"
	"$SVC" --quiet --root "$S/w" boot >/dev/null 2>&1 || fail "boot after a reconcile crashed at $n quarantined"
	[ "$rc" = 137 ] || break
	n=$((n + 1)); POINTS=$((POINTS + 1))
done
[ "$n" -gt 5 ] || fail "reconcile: only $n steps: the crash switch is not wired"
echo "ok - svc reconcile: $((n - 1)) crash points, each finished by a re-run"
R=$R0

# --- the hot flow: crash at every durable step of install /hotpatch:enable
# while two workers run; after `svc boot` the disk is all-old or all-new,
# and a re-run of the install converges every running process
S0=$S; scratch_new crash-hot; hot_fixture_root
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/HOT.hfx" --id HOT-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o" \
	--target "/usr/bin/pieprog=$S/o/pieprog" --objects "$S/o/pie1.o:$S/o/pie2.o"
CALC1=$(sha "$S/o/libcalc.so.1"); PIE1=$(sha "$S/o/pieprog")
# hot_try NAME N CMD...: in a fresh copy of $R with a worker and a PIE program
# running ($A, $B), run svc CMD killed before its step N (exit code in $rc),
# boot, and check both targets are at the same level
hot_try() {
	local name=$1 n=$2; shift 2
	rm -rf "$S/w"; cp -a "$R" "$S/w"
	start_bg "$S/a.out" "$S/w/usr/bin/worker" 2 50 2000; A=$BGPID
	start_bg "$S/b.out" "$S/w/usr/bin/pieprog" 50; B=$BGPID
	wait_line "$S/a.out" "bad=0" || fail "$name: worker does not start"
	set +e
	{ SVC_CRASH_AT=$n "$SVC" --quiet --root "$S/w" "$@" >/dev/null 2>&1; } 2>/dev/null; rc=$?
	set -e
	"$SVC" --quiet --root "$S/w" boot >/dev/null 2>&1 || fail "$name: boot after crash at $n failed"
	local c p; c=$(sha "$S/w/usr/lib/libcalc.so.1"); p=$(sha "$S/w/usr/bin/pieprog")
	if [ "$c" = "$CALC1" ]; then [ "$p" = "$PIE1" ] || fail "$name: crash at $n: mixed levels"
	else [ "$p" != "$PIE1" ] || fail "$name: crash at $n: mixed levels"; fi
}
hn=1
while :; do
	hot_try hot "$hn" install "$S/HOT.hfx" /hotpatch:enable
	expect_exit 0 "$SVC" --root "$S/w" install "$S/HOT.hfx" /hotpatch:enable
	wait_line "$S/a.out" "^21 calc v2 bad=0" || fail "hot: crash at $hn: worker not converged: $OUT"
	wait_line "$S/b.out" "^answer 42" || fail "hot: crash at $hn: PIE not converged: $OUT"
	"$SVC" --root "$S/w" status --json | grep -q '"converged":false' && fail "hot: crash at $hn: status not converged"
	stop_pid "$A"; stop_pid "$B"
	[ "$rc" = 137 ] || break
	hn=$((hn + 1)); POINTS=$((POINTS + 1))
done
[ "$hn" -gt 5 ] || fail "hot: only $hn steps"
echo "ok - install /hotpatch:enable: $((hn - 1)) crash points, disk all-or-nothing, re-run converges"

# --- the hot rollback: processes started from the coldpatch run the fix
# from the file; crash at every step of `svc rollback`, boot, re-run:
# the disk is all-old or all-new, and the re-run unbakes every process
"$SVC" --quiet --root "$R" install "$S/HOT.hfx"
rn=1
while :; do
	hot_try "hot rollback" "$rn" rollback HOT-1
	grep -q "^21 calc v2" "$S/a.out" || fail "hot rollback: the worker did not start fixed"
	expect_exit 0 "$SVC" --root "$S/w" rollback HOT-1
	wait_line "$S/a.out" "^14 calc v1 bad=0" || fail "hot rollback: crash at $rn: worker not back: $OUT"
	wait_line "$S/b.out" "^answer 41" || fail "hot rollback: crash at $rn: PIE not back: $OUT"
	"$SVC" --root "$S/w" status --json | grep -q '"converged":false' && fail "hot rollback: crash at $rn: not converged"
	stop_pid "$A"; stop_pid "$B"
	[ "$rc" = 137 ] || break
	rn=$((rn + 1)); POINTS=$((POINTS + 1))
done
[ "$rn" -gt 5 ] || fail "hot rollback: only $rn steps"
echo "ok - hot rollback (unbake from coldpatch processes): $((rn - 1)) crash points, all-or-nothing, re-run converges"
cleanup; S=$S0

echo "crash points checked: $POINTS"
echo "it-crash: 6 passed, 0 failed"
