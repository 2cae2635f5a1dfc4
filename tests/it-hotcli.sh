#!/usr/bin/env bash
# svc hotpatch apply / revert / list: the low-level live patcher on processes
# the test owns, with a payload taken out of a package.
source "$(dirname "$0")/lib.sh"
scratch_new hotcli
hot_fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o"
mkdir -p "$S/x"; tar -xzf "$S/FIX-1.hfx" -C "$S/x" hp/0; HP="$S/x/hp/0"
"$SVC" inspect "$HP" | grep -q "^payload FIX-1" || fail "payload not readable"
P=()
for i in 1 2 3; do start_bg "$S/w$i.out" "$R/usr/bin/worker" 4 50 2000; P+=("$BGPID"); done
start_bg "$S/park.out" "$R/usr/bin/parker"; PARK=$BGPID

expect_exit 0 "$SVC" hotpatch apply "$HP" --all
[ "$(echo "$OUT" | grep -c ': patched,')" = 3 ] || fail "apply --all did not patch the 3 workers: $OUT"
for i in 1 2 3; do wait_line "$S/w$i.out" "^21 calc v2 bad=0" || fail "worker $i not patched"; done
ok "apply --all patches every process mapping the payload's build"

expect_exit 0 "$SVC" converge --pid "${P[0]}" --pid "${P[1]}" --pid "${P[2]}"
[ "$(echo "$OUT" | grep -c '^pid .*: nothing to do')" = 3 ] || fail "converge: $OUT"
echo "$OUT" | grep -q "NOT converged" && fail "converged processes reported otherwise: $OUT"
expect_exit 0 "$SVC" --json converge --pid "${P[0]}"
echo "$OUT" | grep -q '"converged":true' || fail "converge --json: $OUT"
ok "converge: the workers (threads only briefly in calc) are converged, exit 0"

js=$("$SVC" hotpatch list --json --pid "${P[0]}" --pid "${P[1]}")
[ "$(echo "$js" | grep -o '"id":"FIX-1","status":"applied"' | wc -l)" = 2 ] || fail "list: $js"
"$SVC" hotpatch list | grep -q "pid ${P[2]}:" || fail "list without --pid misses a patched process"
"$SVC" hotpatch list | grep -q "pid $PARK:" && fail "list shows an unpatched process"
ok "list reads the state back from the processes"

expect_exit 0 "$SVC" hotpatch revert FIX-1 --pid "${P[0]}"
wait_line "$S/w1.out" "^14 calc v1 bad=0" || fail "revert --pid did not revert"
tail -n1 "$S/w2.out" | grep -q "^21 calc v2" || fail "revert --pid touched another process"
expect_exit 0 "$SVC" hotpatch apply "$HP" --pid "${P[0]}"
wait_line "$S/w1.out" "^21 calc v2 bad=0" || fail "re-apply failed"
expect_exit 0 "$SVC" hotpatch apply "$HP" --pid "${P[0]}"
echo "$OUT" | grep -q "nothing to do" || fail "applying twice is not a no-op: $OUT"
ok "revert and re-apply one process; applying twice is a no-op"

expect_exit 3 "$SVC" hotpatch apply "$HP" --pid "$PARK"
echo "$OUT" | grep -q "pid $PARK: FAILED" || fail "wrong build not refused: $OUT"
echo "   refused as expected: $(echo "$OUT" | head -n1 | sed "s/.*FAILED: //")"
tail -n1 "$S/park.out" | grep -q "^park 1" || fail "refused process changed"
kill -0 "$PARK" || fail "refused process died"
ok "a process without the payload's module: refused, untouched, exit 3"

expect_exit 0 "$SVC" hotpatch revert FIX-1 --all
for i in 1 2 3; do wait_line "$S/w$i.out" "^14 calc v1 bad=0" || fail "worker $i not reverted"; done
expect_exit 2 "$SVC" hotpatch apply "$HP"
expect_exit 2 "$SVC" hotpatch frob
expect_exit 2 "$SVC" converge --pid 0
ok "revert --all; usage errors exit 2"
echo "it-hotcli: $n passed, 0 failed"
