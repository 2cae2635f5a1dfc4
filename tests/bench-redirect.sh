#!/usr/bin/env bash
# make bench, the cost of patched code: calls per second through a redirect
# against the unpatched function, in one process, same run.
#
# tests/bench/stepper.c calls step_pad() (16,14 pad: 2-byte short jump to an
# absolute indirect jump) and step_plain() (plain entry: 5-byte jmp rel32)
# of tests/bench/libstep.c, one function per 50 ms window, and prints the
# calls/s of each window.  After BENCH_REDIRECT_SECONDS (default 2) it is
# patched live (`svc install FIX.hfx /hotpatch:enable`, scratch root); the
# fix does the same work with another constant, so the call costs the same
# and only the redirect differs.  The windows around the install are
# dropped; the printed results prove the fixed code ran.
# Rows (TSV, tests/bench/lib.sh) go to $BENCH_ROWS (default: stdout).
source "$(dirname "$0")/lib.sh"
source "$SVC_TOP/tests/bench/lib.sh"
scratch_new redirect
SECS=${BENCH_REDIRECT_SECONDS:-2}
B="$SVC_TOP/tests/bench"
CF="-O2 -fPIC -ffunction-sections -fdata-sections"
for v in 1 2; do gcc $CF -DSTEP_VERSION=$v -c "$B/libstep.c" -o "$S/step$v.o"; done
gcc -shared -Wl,-soname,libstep.so.1 -o "$R/usr/lib/libstep.so.1" "$S/step1.o"
cp "$R/usr/lib/libstep.so.1" "$S/base.so"
gcc -O2 -o "$R/usr/bin/stepper" "$B/stepper.c" -L"$S" -l:base.so -Wl,-rpath,'$ORIGIN/../lib'
"$SVC" --quiet keygen --out "$S/vendor"
cp "$S/vendor.pub" "$R/etc/svc/trusted/"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/STEP.hfx" --id STEP-1 --series step --seq 1 \
	--target "/usr/lib/libstep.so.1=$S/base.so" --objects "$S/step1.o:$S/step2.o"

start_bg "$S/out" "$R/usr/bin/stepper" 50
sleep "$SECS"
before=$(wc -l <"$S/out")
expect_exit 0 "$SVC" --root "$R" install "$S/STEP.hfx" /hotpatch:enable
echo "$OUT" | grep -q "^patched pid $BGPID" || fail "stepper not patched: $OUT"
after=$(wc -l <"$S/out")
sleep "$SECS"
stop_pid "$BGPID"

# x = 1000: pad (3000 + v) ^ 125, plain (5000 + v) ^ 250
want() { echo $(( ($2 + $3) ^ $4 )); }
for kind in pad plain; do
	case $kind in pad) m=3000 sh=125 ;; plain) m=5000 sh=250 ;; esac
	old=$(want "$kind" $m 1 $sh); new=$(want "$kind" $m 2 $sh)
	# steady windows only: skip the first two, and two each side of the install
	head -n $((before - 2)) "$S/out" | tail -n +3 | awk -v k=$kind '$1 == k' >"$S/$kind.before"
	tail -n +$((after + 3)) "$S/out" | awk -v k=$kind '$1 == k' >"$S/$kind.after"
	[ -s "$S/$kind.before" ] && [ -s "$S/$kind.after" ] || fail "no steady $kind windows: $(cat "$S/out")"
	awk -v v="$old" '$3 != v { exit 1 }' "$S/$kind.before" || fail "$kind: unexpected result before the fix"
	awk -v v="$new" '$3 != v { exit 1 }' "$S/$kind.after" || fail "$kind: the fixed code did not run"
	cut -d' ' -f2 "$S/$kind.after" >"$S/a"; cut -d' ' -f2 "$S/$kind.before" >"$S/b"
	case $kind in
	pad) label="calls/s through a 16,14-pad redirect (vs unpatched)" ;;
	plain) label="calls/s through a plain-entry jmp rel32 (vs unpatched)" ;;
	esac
	bench_row "redirect-$kind" "$label" calls/s - 1 "$S/a" "$S/b"
done
