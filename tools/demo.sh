#!/usr/bin/env bash
# make demo: the cold path, then the hot path, end to end on a scratch root,
# step by step.
source "$(dirname "$0")/../tests/lib.sh"
run() { printf '$ %s\n' "$*" | sed "s|$S|\$SCRATCH|g"; set +e; "$@"; rc=$?; set -e; echo "(exit $rc)"; }

scratch_new demo
say "1. A scratch system root: $R"
say "2. Build libgreet.so.1 in three versions (base, FIX-1, FIX-2) and a program using it"
fixture_root
echo "installed: /usr/lib/libgreet.so.1 (base), /usr/bin/greeter; vendor key trusted in /etc/svc/trusted"
say "3. The vendor packs and signs FIX-1 (base -> FIX-1)"
run "$SVC" pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series greet --seq 1 \
	--summary "greet: say the fixed words" \
	--target "/usr/lib/libgreet.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
say "4. A long-running greeter starts (prints every 0.5 s)"
"$R/usr/bin/greeter" 500 >"$S/running.out" 2>&1 & GPID=$!; STARTED_PIDS+=("$GPID")
sleep 0.6; echo "pid $GPID says: $(tail -n1 "$S/running.out")"
say "5. Install while the library is in use: staged beside it, pending, restart required"
run "$SVC" --root "$R" install "$S/FIX-1.hfx"
ls -A "$R/usr/lib" | sed 's/^/    usr\/lib\//'
run "$SVC" --root "$R" status
say "6. Reboot: the service manager stops the greeter, then runs svc boot early"
stop_pid "$GPID"
run "$SVC" --root "$R" boot
say "7. A new greeter runs the fix"
echo "greeter says: $("$R/usr/bin/greeter")"
run "$SVC" --root "$R" status
say "8. A tampered package is refused and changes nothing"
repack "$S/FIX-1.hfx" "$S/evil.hfx" '
for m in members:
    if m[0].startswith("cold/"): m[1] = m[1].replace(b"FIX-1", b"EVIL!")'
run "$SVC" --root "$R" install "$S/evil.hfx"
say "9. Roll FIX-1 back (nothing uses the library now: at once)"
run "$SVC" --root "$R" rollback FIX-1
echo "greeter says: $("$R/usr/bin/greeter")"
run "$SVC" --root "$R" status --json
say "10. The hot path: libcalc.so.1 and a multi-threaded worker (4 threads calling calc(7))"
hot_fixture_root
"$R/usr/bin/worker" 4 300 2000 >"$S/worker.out" 2>&1 & WPID=$!; STARTED_PIDS+=("$WPID")
sleep 0.7; echo "worker $WPID says: $(tail -n1 "$S/worker.out")"
say "11. The vendor builds FIX-C from the base and fixed object files: payload only"
run "$SVC" pack --key "$S/vendor.key" --out "$S/FIX-C.hfx" --id FIX-C --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o"
run "$SVC" inspect "$S/FIX-C.hfx"
say "12. Install with /hotpatch:enable: the running worker is patched in memory, the file swapped"
run "$SVC" --root "$R" install "$S/FIX-C.hfx" /hotpatch:enable
sleep 0.7; echo "worker $WPID now says: $(tail -n1 "$S/worker.out")   (same process, no restart)"
say "13. A worker started now loads the coldpatch, synthesized on this machine from the payload"
echo "new worker says: $("$R/usr/bin/worker" 1 10 | head -n1)"
run "$SVC" --root "$R" status
say "14. Roll FIX-C back: out of the running worker, and off the disk"
run "$SVC" --root "$R" rollback FIX-C
sleep 0.7; echo "worker $WPID now says: $(tail -n1 "$S/worker.out")"
run "$SVC" --root "$R" status
say "Done. The scratch root is removed on exit."
