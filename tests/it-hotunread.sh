#!/usr/bin/env bash
# A hot install by a user who cannot read a process that maps the target
# must not say patched or converged: svc runs as nobody (setpriv) against a
# worker started by root, in a PID namespace of the test's own (so the only
# processes are this test's).  The kernel hides root's /proc/PID/maps from
# nobody: svc names the worker as unread and exits 3; root then converges it.
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
$NOBODY "$SVC" --root "$R" status >"$S/status.out" 2>&1
echo \$? >"$S/status.rc"
# root converges it: the worker is patched, nothing unknown is left
"$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable >"$S/root.out" 2>&1
echo \$? >"$S/root.rc"
for i in \$(seq 100); do tail -n1 "$S/w.out" | grep -q "calc v2" && break; sleep 0.05; done
tail -n1 "$S/w.out" >"$S/w.last"
kill \$W; wait \$W; exit 0
EOF
unshare --pid --fork --mount-proc --kill-child bash "$S/inner.sh"
W=$(cat "$S/w.pid")

OUT=$(cat "$S/install.out")
[ "$(cat "$S/install.rc")" = 3 ] || fail "install as nobody: exit $(cat "$S/install.rc"), not 3: $OUT"
echo "$OUT" | grep -q "not converged, because pid $W (worker) could not be read: Permission denied" ||
	fail "the unread worker is not named: $OUT"
echo "$OUT" | grep -q "^patched" && fail "install as nobody says patched: $OUT"
[ "$(sha "$R/usr/lib/libcalc.so.1")" != "$(sha "$S/o/libcalc.so.1")" ] || fail "the file was not swapped"
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
