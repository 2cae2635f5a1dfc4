#!/usr/bin/env bash
# make bench, the whole hot install: `svc install FIX.hfx /hotpatch:enable`
# with N idle processes mapping the fixed library (verify the package,
# stage and write the coldpatch durably, find every user in /proc, patch
# each in memory, swap the file, sweep for late users, read every process
# back for the status lines), against `svc hotpatch apply` of the same
# payload to N such processes by PID (the live patch alone: no package, no
# disk, no scan).  The ratio is what the transaction costs around the live
# patch.  Each side runs on its own fresh processes, the two sides
# alternate, BENCH_HOTINSTALL_RUNS rounds (default 3), medians; N is
# BENCH_PROCS (default 1000).  Both must patch all N or the row is not
# written.  Rows (TSV, tests/bench/lib.sh) go to $BENCH_ROWS (default:
# stdout).
source "$(dirname "$0")/lib.sh"
source "$SVC_TOP/tests/bench/lib.sh"
scratch_new hotinstall
N=${BENCH_PROCS:-1000}
RUNS=${BENCH_HOTINSTALL_RUNS:-3}
hot_fixture_root
# an idle user of libcalc: one call a second, asleep in between
cat >"$S/idle.c" <<'EOF'
#include <unistd.h>
int calc(int x);
int main(void) { for (;;) { if (calc(7) < 0) return 1; sleep(1); } }
EOF
gcc -O2 -o "$R/usr/bin/idle" "$S/idle.c" -L"$S/o" -l:libcalc.so.1 -Wl,-rpath,'$ORIGIN/../lib'
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o"
mkdir -p "$S/p"
tar -C "$S/p" -xzf "$S/FIX.hfx" hp/0
cp -a "$R" "$S/tmpl"

IDLE=()
start_idle() {   # ROOT: N idle processes of ROOT's program, owned by this script
	local i
	IDLE=()
	for i in $(seq "$N"); do
		"$1/usr/bin/idle" &
		IDLE+=("$!")
	done
	STARTED_PIDS+=("${IDLE[@]}")
	sleep 1   # every one past its first call (libcalc loaded)
}
stop_idle() {
	local p
	# (the shell's "Killed" notes go to the group's stderr)
	{
		for p in "${IDLE[@]}"; do kill -KILL "$p"; done
		for p in "${IDLE[@]}"; do wait "$p" || true; done
	} 2>/dev/null
	STARTED_PIDS=()
}
# timed SAMPLES PATTERN CMD...: run CMD on the idle processes started, its
# time to SAMPLES; every one of them must have a line matching PATTERN
timed() {
	local out=$1 pat=$2 t0 t1 got rc=0
	shift 2
	t0=$(now)
	"$@" >"$S/out" 2>&1 || rc=$?
	t1=$(now)
	stop_idle
	[ "$rc" = 0 ] || fail "$(basename "$1") $2 $3: exit $rc: $(tail -n3 "$S/out")"
	got=$(grep -c "$pat" "$S/out" || true)
	[ "$got" = "$N" ] || fail "$(basename "$1") $2 $3: $got of $N processes patched"
	echo $((t1 - t0)) >>"$out"
}
one_install() {
	rm -rf "$S/w"
	cp -a "$S/tmpl" "$S/w"
	start_idle "$S/w"
	timed "$S/a" '^patched pid' "$SVC" --root "$S/w" install "$S/FIX.hfx" /hotpatch:enable
}
one_apply() {
	local args=() p
	start_idle "$S/tmpl"
	for p in "${IDLE[@]}"; do args+=(--pid "$p"); done
	timed "$S/b" ': patched, ' "$SVC" hotpatch apply "$S/p/hp/0" "${args[@]}"
}
: >"$S/a"; : >"$S/b"
for i in $(seq "$RUNS"); do
	if [ $((i % 2)) = 1 ]; then one_apply; one_install; else one_install; one_apply; fi
done
bench_row hot-install "svc install /hotpatch:enable, $N idle processes, end to end (vs svc hotpatch apply of its payload by PID; $RUNS runs)" \
	ms - 1e6 "$S/a" "$S/b"
