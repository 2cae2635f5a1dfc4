#!/usr/bin/env bash
# A hot install by a user who cannot read a process that maps the target
# must not say patched or converged: svc runs as nobody (setpriv) against a
# worker started by root, in a PID namespace of the test's own (so the only
# processes are this test's).  The kernel hides root's /proc/PID/maps from
# nobody: svc names the worker as unread and exits 3; root then converges it.
# Garbage collection alike: a rolled-back fix's payload is kept while a
# process that may run the fix cannot be read.
source "$(dirname "$0")/lib.sh"
scratch_new hotunread
hot_fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
command -v setpriv >/dev/null && command -v unshare >/dev/null || fail "setpriv/unshare (util-linux) missing"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"

"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o"
# nobody may read the package and write the scratch root; the worker stays root's
chmod 0755 "$S"
chown -R 65534:65534 "$R"
chmod 0644 "$S/FIX-1.hfx"

# inside a fresh PID namespace (with its own /proc): the worker (root), then
# svc as nobody, then svc status as nobody; each result into a file
cat >"$S/inner.sh" <<EOF
set -u
"$R/usr/bin/worker" 1 50 >"$S/w.out" 2>&1 &
W=\$!
echo "\$W" >"$S/w.pid"
for i in \$(seq 200); do grep -q "calc v1" "$S/w.out" 2>/dev/null && break; sleep 0.05; done
$NOBODY "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable >"$S/install.out" 2>&1
echo \$? >"$S/install.rc"
sha256sum <"$R/usr/lib/libcalc.so.1" | cut -d' ' -f1 >"$S/install.sha"
$NOBODY "$SVC" --root "$R" status >"$S/status.out" 2>&1
echo \$? >"$S/status.rc"
# root converges it: the worker is patched, nothing unknown is left
"$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable >"$S/root.out" 2>&1
echo \$? >"$S/root.rc"
for i in \$(seq 100); do tail -n1 "$S/w.out" | grep -q "calc v2" && break; sleep 0.05; done
tail -n1 "$S/w.out" >"$S/w.last"
# a second worker started from the coldpatch runs FIX-1 from the file: only
# the payload kept at install takes it out (hp_unbake)
"$R/usr/bin/worker" 1 50 >"$S/c.out" 2>&1 &
C=\$!
echo "\$C" >"$S/c.pid"
for i in \$(seq 200); do grep -q "calc v2" "$S/c.out" 2>/dev/null && break; sleep 0.05; done
chown -R 65534:65534 "$R"
# nobody rolls FIX-1 back (hot): the disk goes back, the workers are unknown
$NOBODY "$SVC" --root "$R" rollback FIX-1 /hotpatch:enable >"$S/rb.out" 2>&1
echo \$? >"$S/rb.rc"
ls "$R/var/lib/svc/payloads" >"$S/payloads.before" 2>&1
# garbage collection as nobody: the workers may still run FIX-1
$NOBODY "$SVC" --root "$R" reconcile >"$S/gc.out" 2>&1
echo \$? >"$S/gc.rc"
ls "$R/var/lib/svc/payloads" >"$S/payloads.after" 2>&1
# root brings both along: out of memory, and unbaked through the payload
"$SVC" --root "$R" rollback FIX-1 >"$S/rb-root.out" 2>&1
echo \$? >"$S/rb-root.rc"
# each worker prints every 50 ms: wait for a line of each printed since
for i in \$(seq 100); do
	tail -n1 "$S/c.out" | grep -q "calc v1" && tail -n1 "$S/w.out" | grep -q "calc v1" && break
	sleep 0.05
done
tail -n1 "$S/w.out" >"$S/w.rb"; tail -n1 "$S/c.out" >"$S/c.rb"
# now that every process is read and none runs FIX-1: collected
"$SVC" --root "$R" reconcile >"$S/gc-root.out" 2>&1
echo \$? >"$S/gc-root.rc"
ls "$R/var/lib/svc/payloads" >"$S/payloads.end" 2>&1
kill \$W \$C; wait \$W \$C; exit 0
EOF
unshare --pid --fork --mount-proc --kill-child bash "$S/inner.sh"
W=$(cat "$S/w.pid")

OUT=$(cat "$S/install.out")
[ "$(cat "$S/install.rc")" = 3 ] || fail "install as nobody: exit $(cat "$S/install.rc"), not 3: $OUT"
echo "$OUT" | grep -q "not converged, because pid $W (worker) could not be read: Permission denied" ||
	fail "the unread worker is not named: $OUT"
echo "$OUT" | grep -q "^patched" && fail "install as nobody says patched: $OUT"
[ "$(cat "$S/install.sha")" != "$(sha "$S/o/libcalc.so.1")" ] || fail "the file was not swapped"
ok "hot install as nobody: the worker root runs is unknown, exit 3 (not converged), disk swapped"

OUT=$(cat "$S/status.out")
[ "$(cat "$S/status.rc")" = 3 ] || fail "status as nobody: exit $(cat "$S/status.rc"), not 3: $OUT"
echo "$OUT" | grep -q "converged: *yes" && fail "status as nobody says converged: $OUT"
ok "status as nobody: convergence unknown, exit 3"

OUT=$(cat "$S/root.out")
[ "$(cat "$S/root.rc")" = 0 ] || fail "install as root: exit $(cat "$S/root.rc"), not 0: $OUT"
echo "$OUT" | grep -q "^patched pid $W " || fail "root did not patch the worker: $OUT"
grep -q "calc v2" "$S/w.last" || fail "the worker does not run the fix: $(cat "$S/w.last")"
ok "root then patches the worker: converged, exit 0"

C=$(cat "$S/c.pid")
OUT=$(cat "$S/rb.out")
[ "$(cat "$S/rb.rc")" = 3 ] || fail "hot rollback as nobody: exit $(cat "$S/rb.rc"), not 3: $OUT"
echo "$OUT" | grep -q "not converged, because pid $C (worker) could not be read" ||
	fail "hot rollback as nobody: the coldpatch worker not named: $OUT"
[ "$(sha "$R/usr/lib/libcalc.so.1")" = "$(sha "$S/o/libcalc.so.1")" ] || fail "base not back on disk"
grep -q '^FIX-1\..*\.hp$' "$S/payloads.before" || fail "no payload kept at install: $(cat "$S/payloads.before")"
ok "hot rollback as nobody: disk back, workers unknown, exit 3"

OUT=$(cat "$S/gc.out")
[ "$(cat "$S/gc.rc")" = 3 ] || fail "reconcile as nobody: exit $(cat "$S/gc.rc"), not 3: $OUT"
echo "$OUT" | grep -q "kept the payload of FIX-1 (rolled back), because pid $C (worker) could not be read: Permission denied" ||
	fail "reconcile as nobody does not say why the payload is kept: $OUT"
echo "$OUT" | grep -q "^removed" && fail "reconcile as nobody removed something: $OUT"
cmp -s "$S/payloads.before" "$S/payloads.after" || fail "payloads changed: $(cat "$S/payloads.after")"
ok "garbage collection as nobody keeps FIX-1's payload (unread workers may run it), says why, exit 3"

OUT=$(cat "$S/rb-root.out")
[ "$(cat "$S/rb-root.rc")" = 0 ] || fail "rollback as root: exit $(cat "$S/rb-root.rc"), not 0: $OUT"
echo "$OUT" | grep -q "^unbaked pid $C " || fail "the coldpatch worker not unbaked: $OUT"
grep -q "calc v1" "$S/c.rb" || fail "the coldpatch worker still runs the fix: $(cat "$S/c.rb")"
grep -q "calc v1" "$S/w.rb" || fail "the worker still runs the fix: $(cat "$S/w.rb")"
OUT=$(cat "$S/gc-root.out")
[ "$(cat "$S/gc-root.rc")" = 0 ] || fail "reconcile as root: exit $(cat "$S/gc-root.rc"), not 0: $OUT"
echo "$OUT" | grep -q "^removed .*/var/lib/svc/payloads/FIX-1\..*\.hp (FIX-1 is rolled back)" ||
	fail "reconcile as root did not collect the payload: $OUT"
grep -q '^FIX-1\.' "$S/payloads.end" && fail "payload left: $(cat "$S/payloads.end")"
ok "root then takes FIX-1 out of both workers (the kept payload unbakes one); reconcile collects it"
echo "it-hotunread: $n passed, 0 failed"
