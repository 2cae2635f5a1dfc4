#!/usr/bin/env bash
# svc install/rollback --dry-run: the package is verified in full and the
# report says what a run would do (per target, per process), while the root
# stays byte for byte the same (no lock file, no state directory); --json
# gives the machine-readable no-op answer (changed) that the Ansible module
# uses.
source "$(dirname "$0")/lib.sh"
scratch_new dryrun
hot_fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
same_tree() { [ "$1" = "$(tree_state "$R")" ] || fail "$2: the dry run changed the root"; }

"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-P.hfx" --id FIX-P --series park --seq 1 \
	--target "/usr/lib/libpark.so.1=$S/o/libpark.so.1" --objects "$S/o/park1.o:$S/o/park2.o"

# --- a fresh root: nothing in use, swap now; not even var/lib/svc appears
before=$(tree_state "$R")
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" --dry-run
echo "$OUT" | grep -q "^would swap /usr/lib/libcalc.so.1: base -> FIX-1" || fail "no swap planned: $OUT"
echo "$OUT" | grep -q "dry run: nothing was changed" || fail "not said to be a dry run: $OUT"
same_tree "$before" "install --dry-run"
[ -e "$R/var" ] && fail "the dry run created $R/var"
js=$("$SVC" --root "$R" install "$S/FIX-1.hfx" --dry-run --json)
python3 - "$js" <<'PY' || fail "dry-run json: $js"
import json, sys
j = json.loads(sys.argv[1])
assert j["dry_run"] and j["changed"] and not j["restart_required"], j
assert [(t["path"], t["action"], t["from"], t["to"]) for t in j["targets"]] == \
    [("/usr/lib/libcalc.so.1", "swap", "base", "FIX-1")], j
PY
same_tree "$before" "install --dry-run --json"
ok "dry run on a fresh root: swap now planned, root unchanged, no lock or state directory"

# --- in use, cold: pending because in use, exit 3 like the real run
start_bg "$S/w1.out" "$R/usr/bin/worker" 2 50 2000; W1=$BGPID
wait_line "$S/w1.out" "^14 calc v1" || fail "worker not at base"
expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx" --dry-run --json
python3 - "$OUT" "$W1" <<'PY' || fail "cold dry-run json: $OUT"
import json, sys
j = json.loads(sys.argv[1])
assert j["restart_required"] and j["changed"], j
assert j["targets"][0]["action"] == "pending", j
assert [p["pid"] for p in j["processes"] if p["outcome"] == "in-use"] == [int(sys.argv[2])], j
PY
same_tree "$before" "cold install --dry-run in use"
ok "dry run, target in use: pending (restart required, exit 3), the process named"

# --- hot: every process it would patch, none touched
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable --dry-run
echo "$OUT" | grep -q "^would patch pid $W1 (worker): FIX-1" || fail "process to patch not named: $OUT"
wait_line "$S/w1.out" "^14 calc v1" || fail "the dry run patched the worker"
"$SVC" hotpatch list --pid "$W1" | grep -q "no fixes" || fail "the dry run left a state mapping"
same_tree "$before" "hot install --dry-run"
ok "hot dry run names the processes it would patch and patches none"

# --- a package that fails verification fails the dry run the same way
repack "$S/FIX-1.hfx" "$S/bad.hfx" 'members = [[n, (d[:-1] + bytes([d[-1] ^ 1])) if n == "hp/0" else d] for n, d in members]'
expect_exit 1 "$SVC" --root "$R" install "$S/bad.hfx" --dry-run
echo "$OUT" | grep -q "hp/0" || fail "tampered member not named: $OUT"
same_tree "$before" "refused dry run"
ok "a tampered package fails the dry run with the same one-line error"

# --- a target that is not the base version: refused, named with its reason
cp "$R/usr/lib/libpark.so.1" "$S/park.saved"
echo x >>"$R/usr/lib/libpark.so.1"
before=$(tree_state "$R")
expect_exit 1 "$SVC" --root "$R" install "$S/FIX-P.hfx" --dry-run --json
echo "$OUT" | grep -q '"action":"refused"' || fail "refused target not in the plan: $OUT"
echo "$OUT" | grep -q "svc: .*libpark.so.1: not the base version" || fail "no one-line error: $OUT"
same_tree "$before" "refused target"
cp "$S/park.saved" "$R/usr/lib/libpark.so.1"
ok "a target that is not the base: refused by name, exit 1, nothing changed"

# --- after the real install: the dry run answers changed=false
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable --json
echo "$OUT" | grep -q '"dry_run":false,"changed":true' || fail "real install not changed: $OUT"
wait_line "$S/w1.out" "^21 calc v2" || fail "worker not patched"
before=$(tree_state "$R")
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable --dry-run --json
echo "$OUT" | grep -q '"changed":false' || fail "installed fix not a no-op in the dry run: $OUT"
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable --json
echo "$OUT" | grep -q '"changed":false' || fail "re-install not a no-op: $OUT"
echo "$OUT" | grep -q '"action":"no-op"' || fail "targets not no-op: $OUT"
ok "installed: dry run and real re-run both answer changed=false"

# a rolled-back fix's payload, as a crash between its rollback and the
# garbage collection leaves it: a dry run leaves it too, the real run takes it
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-P.hfx"
cp "$R/var/lib/svc/payloads/"FIX-P.*.hp "$S/"
expect_exit 0 "$SVC" --root "$R" rollback FIX-P
ls "$R/var/lib/svc/payloads/" | grep -q '^FIX-P\.' && fail "FIX-P's payload not collected"
cp "$S/"FIX-P.*.hp "$R/var/lib/svc/payloads/"
before=$(tree_state "$R")

# --- rollback --dry-run: the processes the fix would be taken out of
expect_exit 0 "$SVC" --root "$R" rollback FIX-1 --dry-run --json
python3 - "$OUT" "$W1" <<'PY' || fail "rollback dry-run json: $OUT"
import json, sys
j = json.loads(sys.argv[1])
assert j["dry_run"] and j["changed"], j
assert j["targets"][0]["action"] == "swap" and j["targets"][0]["to"] == "base", j
assert [p["pid"] for p in j["processes"] if p["outcome"] == "would-revert"] == [int(sys.argv[2])], j
PY
same_tree "$before" "rollback --dry-run"
wait_line "$S/w1.out" "^21 calc v2" || fail "the rollback dry run reverted the worker"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1 --json
echo "$OUT" | grep -q '"changed":true' || fail "rollback not changed: $OUT"
wait_line "$S/w1.out" "^14 calc v1" || fail "worker not reverted"
echo "$OUT" | grep -q "removed .*/var/lib/svc/payloads/FIX-P\..*\.hp (FIX-P is rolled back)" ||
	fail "the real rollback did not collect the leftover payload: $OUT"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1 --dry-run --json
echo "$OUT" | grep -q '"changed":false' || fail "rolled-back fix not a no-op in the dry run: $OUT"
expect_exit 1 "$SVC" --root "$R" rollback NOPE --dry-run
echo "$OUT" | grep -q "NOPE: no such fix" || fail "unknown fix not refused: $OUT"
ok "rollback --dry-run: would take the fix out of the process, collects no garbage; after the rollback a no-op"

# --- usage
expect_exit 2 "$SVC" --root "$R" status --dry-run
expect_exit 2 "$SVC" --root "$R" boot --json
ok "--dry-run and --json only where they mean something"
stop_pid "$W1"
echo "it-dryrun: $n passed, 0 failed"
