#!/usr/bin/env bash
# /hotpatch:enable end to end: real multi-threaded processes owned by the
# test are patched in memory without a restart and without a failed call,
# the files are swapped at once, processes started afterwards run the fix
# from the coldpatch, and svc status shows every file converged.
source "$(dirname "$0")/lib.sh"
scratch_new hot
hot_fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
NPROC=${HOT_PROCS:-20}

"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o" \
	--target "/usr/bin/pieprog=$S/o/pieprog" --objects "$S/o/pie1.o:$S/o/pie2.o"
WORKERS=()
# 4 threads each, calling all the time but sleeping 1 ms every 2000 calls:
# 20 such processes keep both cores busy without starving each other
for i in $(seq "$NPROC"); do start_bg "$S/w$i.out" "$R/usr/bin/worker" 4 50 2000; WORKERS+=("$BGPID"); done
start_bg "$S/pie.out" "$R/usr/bin/pieprog" 50; PIE=$BGPID
for i in $(seq "$NPROC"); do wait_line "$S/w$i.out" "^14 calc v1 bad=0" || fail "worker $i not at base"; done

# --- install hot: every process changes behaviour, none fails a call
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" /HotPatch:Enable
echo "$OUT" | grep -c "^patched pid" | grep -qx "$((NPROC + 1))" || fail "not every process patched: $OUT"
echo "$OUT" | grep "paused" | sed -n '1p;$p' | sed 's/^/   /'
for i in $(seq "$NPROC"); do
	wait_line "$S/w$i.out" "^21 calc v2 bad=0" || fail "worker $i not patched: $(tail -n2 "$S/w$i.out")"
	kill -0 "${WORKERS[$((i - 1))]}" || fail "worker $i died: $(tail -n3 "$S/w$i.out")"
	grep -q "BAD" "$S/w$i.out" && fail "worker $i saw a wrong result"
done
wait_line "$S/pie.out" "^answer 42" || fail "PIE program not patched: $(tail -n1 "$S/pie.out")"
# the counter is the running instance's: it kept counting across the patch
c1=$(tail -n1 "$S/w1.out" | sed 's/.*calls=//'); sleep 0.2; c2=$(tail -n1 "$S/w1.out" | sed 's/.*calls=//')
[ "$c2" -gt "$c1" ] || fail "calls counter stuck: $c1 -> $c2"
ok "install /hotpatch:enable: $NPROC workers + a PIE patched live, no failed call, state kept"

NEW_LIB=$("$SVC" inspect "$S/FIX-1.hfx" | awk '/^target \/usr\/lib\/libcalc/{t=1} t&&/^new-sha256/{print $2; exit}')
[ "$(sha "$R/usr/lib/libcalc.so.1")" = "$NEW_LIB" ] || fail "file on disk is not the signed coldpatch"
start_bg "$S/late.out" "$R/usr/bin/worker" 1 50; LATE=$BGPID
wait_line "$S/late.out" "^21 calc v2" || fail "a new process does not run the fix"
start_bg "$S/late-pie.out" "$R/usr/bin/pieprog" 50; LATE_PIE=$BGPID
wait_line "$S/late-pie.out" "^answer 42" || fail "a new PIE process does not run the fix"
js=$("$SVC" --root "$R" status --json)
echo "$js" | grep -q '"converged":false' && fail "not converged: $js"
[ "$(echo "$js" | grep -o '"converged":true' | wc -l)" = 2 ] || fail "status lacks files: $js"
echo "$js" | grep -q '"hotpatched":true' || fail "status shows no in-memory fix: $js"
ok "disk has the signed coldpatch, new processes run it, status says converged"

# --- re-running the install is a no-op that keeps convergence
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" --hotpatch
echo "$OUT" | grep -q "already installed" || fail "re-run not a no-op: $OUT"
echo "$OUT" | grep -q "^patched" && fail "re-run patched again: $OUT"
ok "re-running a hot install is a no-op"

# --- rollback of a process started from the coldpatch needs a restart;
# without such processes the rollback is hot and complete
stop_pid "$LATE"; stop_pid "$LATE_PIE"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
echo "$OUT" | grep -c "^reverted pid" | grep -qx "$((NPROC + 1))" || fail "not every process reverted: $OUT"
for i in $(seq "$NPROC"); do
	wait_line "$S/w$i.out" "^14 calc v1 bad=0" || fail "worker $i not reverted: $(tail -n1 "$S/w$i.out")"
	kill -0 "${WORKERS[$((i - 1))]}" || fail "worker $i died during revert"
done
wait_line "$S/pie.out" "^answer 41" || fail "PIE not reverted"
[ "$(sha "$R/usr/lib/libcalc.so.1")" = "$(sha "$S/o/libcalc.so.1")" ] || fail "base not back on disk"
"$SVC" --root "$R" status --json | grep -q '"converged":false' && fail "not converged after rollback"
ok "rollback takes the fix out of every process and restores the disk, no restart"

# --- re-apply after the rollback: the old code is reused, behaviour switches again
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" --hotpatch
for i in $(seq "$NPROC"); do wait_line "$S/w$i.out" "^21 calc v2 bad=0" || fail "worker $i not re-patched"; done
ok "install again after rollback: patched again"

# --- a second fix stacked on the first, then rolled back, then the first:
# processes patched in memory with FIX-1 and processes started from FIX-1's
# coldpatch (which run it from the file) converge at every step
COLD=()
for i in 1 2 3; do start_bg "$S/c$i.out" "$R/usr/bin/worker" 2 50 2000; COLD+=("$BGPID"); done
for i in 1 2 3; do wait_line "$S/c$i.out" "^21 calc v2 bad=0" || fail "coldpatch worker $i not at FIX-1"; done
converged() {
	local js; js=$("$SVC" --root "$R" status --json)
	echo "$js" | grep -q '"converged":false' && fail "$1: not converged: $js"
	[ "$(echo "$js" | grep -o '"converged":true' | wc -l)" = 2 ] || fail "$1: status lacks files: $js"
}
all_at() {  # PATTERN WHAT
	local i
	for i in $(seq "$NPROC"); do
		wait_line "$S/w$i.out" "$1" || fail "$2: worker $i: $(tail -n1 "$S/w$i.out")"
		grep -q "BAD" "$S/w$i.out" && fail "$2: worker $i saw a wrong result"
	done
	for i in 1 2 3; do
		wait_line "$S/c$i.out" "$1" || fail "$2: coldpatch worker $i: $(tail -n1 "$S/c$i.out")"
		grep -q "BAD" "$S/c$i.out" && fail "$2: coldpatch worker $i saw a wrong result"
	done
	for p in "${WORKERS[@]}" "${COLD[@]}"; do kill -0 "$p" || fail "$2: pid $p died"; done
}
converged "FIX-1 installed"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-2.hfx" --id FIX-2 --series calc --seq 2 \
	--target "/usr/lib/libcalc.so.1=$R/usr/lib/libcalc.so.1" --base-build "$S/o/libcalc.so.1" \
	--objects "$S/o/calc2.o:$S/o/calc3.o"
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-2.hfx" /hotpatch:enable
echo "$OUT" | grep -c "^patched pid" | grep -qx "$((NPROC + 3))" || fail "FIX-2 not in every process: $OUT"
all_at "^28 calc v3 bad=0" "FIX-2 install"
converged "FIX-2 installed"
ok "stacked second fix: in-memory FIX-1 and coldpatch FIX-1 processes all run FIX-2, converged"

expect_exit 0 "$SVC" --root "$R" rollback FIX-2
echo "$OUT" | grep -c "^reverted pid" | grep -qx "$((NPROC + 3))" || fail "FIX-2 not reverted everywhere: $OUT"
all_at "^21 calc v2 bad=0" "FIX-2 rollback"
converged "FIX-2 rolled back"
ok "rollback of the second fix: every process back at FIX-1, converged"

expect_exit 0 "$SVC" --root "$R" rollback FIX-1
echo "$OUT" | grep -c "^reverted pid" | grep -qx "$((NPROC + 1))" || fail "FIX-1 not reverted in memory: $OUT"
echo "$OUT" | grep -c "^unbaked pid" | grep -qx 3 || fail "FIX-1 not unbaked from the coldpatch processes: $OUT"
all_at "^14 calc v1 bad=0" "FIX-1 rollback"
wait_line "$S/pie.out" "^answer 41" || fail "PIE not reverted"
[ "$(sha "$R/usr/lib/libcalc.so.1")" = "$(sha "$S/o/libcalc.so.1")" ] || fail "base not back on disk"
converged "FIX-1 rolled back"
# converged: no process runs FIX-1 any more, its kept payload is collected
# (docs/operations.md, garbage collection)
ls "$R/var/lib/svc/payloads/" 2>/dev/null | grep -q "^FIX-1\..*\.hp$" &&
	fail "FIX-1 payload kept after a converged rollback"
ok "rollback of the first fix: out of memory and out of the coldpatch processes, no restart, converged"
for p in "${COLD[@]}"; do stop_pid "$p"; done

# --- a process an earlier run already patched (here `svc hotpatch apply`
# of the package's own payload): the install leaves it as it is, names it
# neither patched nor failed, and patches the others
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-Q.hfx" --id FIX-Q --series calcq --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc3.o"
mkdir -p "$S/q"; tar -C "$S/q" -xzf "$S/FIX-Q.hfx" hp/0
W1=${WORKERS[0]}
expect_exit 0 "$SVC" hotpatch apply "$S/q/hp/0" --pid "$W1"
wait_line "$S/w1.out" "^28 calc v3 bad=0" || fail "worker 1 not patched by hotpatch apply"
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-Q.hfx" /hotpatch:enable
echo "$OUT" | grep -q "pid $W1 " && fail "the process patched earlier is named: $OUT"
echo "$OUT" | grep -c "^patched pid" | grep -qx "$((NPROC - 1))" || fail "the others not patched: $OUT"
for i in $(seq "$NPROC"); do
	wait_line "$S/w$i.out" "^28 calc v3 bad=0" || fail "FIX-Q: worker $i: $(tail -n1 "$S/w$i.out")"
done
"$SVC" --root "$R" status --json | grep -q '"converged":false' && fail "FIX-Q: not converged"
ok "a process an earlier run patched: left as it is, not named; the others patched; converged"
for p in "${WORKERS[@]}" "$PIE"; do stop_pid "$p"; done

# --- a process that cannot be patched: a thread parked in the bytes to replace
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-P.hfx" --id FIX-P --series park --seq 1 \
	--target "/usr/lib/libpark.so.1=$S/o/libpark.so.1" --objects "$S/o/park1.o:$S/o/park2.o"
start_bg "$S/park.out" "$R/usr/bin/parker"; PARK=$BGPID
expect_exit 3 "$SVC" --root "$R" install "$S/FIX-P.hfx" /hotpatch:enable
echo "$OUT" | grep -q "NOT PATCHED: pid $PARK (parker)" || fail "report does not name the process: $OUT"
echo "$OUT" | grep -qi "thread\|tid" || fail "report does not say why: $OUT"
kill -0 "$PARK" || fail "unpatchable process died"
tail -n1 "$S/park.out" | grep -q "^park 1" || fail "unpatchable process changed"
start_bg "$S/park2.out" "$R/usr/bin/parker"; PARK2=$BGPID
wait_line "$S/park2.out" "^park 2" || fail "the files were not swapped for new processes"
"$SVC" --root "$R" status --json | grep -q '"path":"/usr/lib/libpark.so.1"[^]]*"converged":false' ||
	fail "status does not show the unpatched process"
stop_pid "$PARK"; stop_pid "$PARK2"
ok "a thread parked in the patched bytes: exit 3, process named, untouched, files swapped"
echo "it-hot: $n passed, 0 failed"
