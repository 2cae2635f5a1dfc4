#!/usr/bin/env bash
# Power loss, not just kill -9: svc runs once with SVC_POWER_LOG recording
# every durable step it completes; for each crash point N (before step N,
# and after the last) build/tests/powerloss enumerates the disk states a
# file system could be left in when the power goes (unsynced data kept,
# dropped or torn; unsynced directory entries lost in any per-directory
# prefix; the model is in docs/security.md, "Power loss"); each state is
# materialized from a copy of the starting tree, then `svc boot` must
# leave every transaction fully applied or fully absent, no target
# missing, empty or torn, the ledger agreeing, nothing staged behind, and
# a second boot changing nothing.
# The disk states are built, not produced by the kernel: real fsyncs of the
# scratch trees only cost time, so they live in /dev/shm when it is there.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
source "$(dirname "$0")/lib.sh"
PL="$SVC_TOP/build/tests/powerloss"
[ -x "$PL" ] || fail "build/tests/powerloss missing (make build/tests/powerloss)"
POINTS=0; STATES=0; VIOL=0

# pl_state N K: build state K of crash point N from the walk's log in a
# tree of its own, boot it and check it; prints "ok" or one line per
# violation ("VIOLATION: ...").  Runs in parallel (PL_JOBS): everything it
# reads is exported by pl_walk.
pl_state() {
	local n=$1 k=$2 w="$S/w.$1.$2" lv js st fx
	local at="$PLW_NAME: power lost before step $n, state $k"
	rm -rf "$w"; cp -a "$PLW_TMPL" "$w"
	"$PL" make "$S/plog" "$S/rec" "$n" "$k" "$w" || { echo "VIOLATION: $at: cannot build the state"; echo ok; return 0; }
	if ! "$SVC" --quiet --root "$w" boot >/dev/null 2>&1; then
		echo "VIOLATION: $at: boot failed"; rm -rf "$w"; echo ok; return 0
	fi
	lv=$($PLW_LEVEL "$w")
	case " $PLW_ALLOWED " in *" $lv "*) ;; *) echo "VIOLATION: $at: left '$lv'"; rm -rf "$w"; echo ok; return 0;; esac
	if ! js=$("$SVC" --root "$w" status --json 2>&1); then
		echo "VIOLATION: $at: status failed: $js"; rm -rf "$w"; echo ok; return 0
	fi
	# the ledger entry of the fix the walk is about (an earlier fix of the
	# tree may be installed whatever happens)
	fx=$(echo "$js" | grep -o "{\"id\":\"$PLW_FIX\"[^}]*}" || true)
	if [ "$lv" = new ]; then
		echo "$fx" | grep -q '"state":"installed"' || echo "VIOLATION: $at: files new, $PLW_FIX not installed: $js"
	else
		echo "$fx" | grep -q '"state":"\(installed\|pending\)"' && echo "VIOLATION: $at: files old, ledger says $PLW_FIX installed: $js"
	fi
	# one listing serves the leftovers check and the idempotence check
	st=$(cd "$w" && find . ! -name last-boot -printf '%p %y %m %s %i\n' | sort)
	case "$st" in *".new "*) echo "VIOLATION: $at: staged file left";; esac
	case "$st" in *"/staging/"*) echo "VIOLATION: $at: staging record left";; esac
	case "$st" in *"/pending/"*) echo "VIOLATION: $at: pending record left after boot";; esac
	"$SVC" --quiet --root "$w" boot >/dev/null 2>&1 || echo "VIOLATION: $at: second boot failed"
	[ "$st" = "$(cd "$w" && find . ! -name last-boot -printf '%p %y %m %s %i\n' | sort)" ] ||
		echo "VIOLATION: $at: second boot changed the tree"
	echo ok
	rm -rf "$w"
}

# pl_walk NAME TEMPLATE LEVELFN ALLOWED CMD...: record CMD run on a copy of
# TEMPLATE, then boot every power-loss state of every crash point.  The fix
# whose ledger entry must agree with the files is $PL_FIX (FIX-1 unless set).
# PL_ONLY=PATTERN (grep -E) walks only the scenarios whose name matches.
pl_walk() {
	local name=$1 tmpl=$2 levelfn=$3 allowed=$4; shift 4
	local n k steps points v
	if [ -n "${PL_ONLY:-}" ] && ! echo "$name" | grep -Eq "$PL_ONLY"; then return 0; fi
	rm -rf "$S/rec" "$S/plog"; cp -a "$tmpl" "$S/rec"
	[ -z "${PL_SETUP:-}" ] || $PL_SETUP "$S/rec"
	set +e
	SVC_POWER_LOG="$S/plog" "$SVC" --quiet --root "$S/rec" "$@" >/dev/null 2>&1
	set -e
	[ -z "${PL_TEARDOWN:-}" ] || $PL_TEARDOWN
	steps=$("$PL" steps "$S/plog")
	[ "$steps" -gt 5 ] || fail "$name: only $steps steps recorded: the recorder is not wired"
	points=$((steps + 1))
	for n in $(seq 1 "$points"); do
		for k in $("$PL" states "$S/plog" "$S/rec" "$n"); do echo "$n $k"; done
	done >"$S/todo"
	export PLW_NAME=$name PLW_TMPL=$tmpl PLW_LEVEL=$levelfn PLW_ALLOWED=$allowed PLW_FIX=${PL_FIX:-FIX-1}
	xargs -P "${PL_JOBS:-4}" -L 1 bash -c 'pl_state "$@"' _ <"$S/todo" >"$S/results"
	[ "$(grep -c '^ok$' "$S/results")" = "$(wc -l <"$S/todo")" ] || fail "$name: a state was not checked"
	v=$(grep -c '^VIOLATION' "$S/results" || true)
	[ -n "${PL_MODEL:-}" ] || grep '^VIOLATION' "$S/results" | head -n 10 >&2 || true
	POINTS=$((POINTS + points)); STATES=$((STATES + $(wc -l <"$S/todo"))); VIOL=$((VIOL + v))
	echo "ok - $name: $points crash points x $(wc -l <"$S/todo") disk states, $v violations"
}
export -f pl_state pair_level
export SVC PL

# --- cold: libgreet and libaux change together in one transaction
scratch_new powerloss
two_target_fixture
export S V1 V2
cold_level() {
	pair_level "$1/usr/lib/libgreet.so.1" "$1/usr/lib/libaux.so.1" "$V1" "$V1" "$V2" "$V2"
}
export -f cold_level
cp -a "$R" "$S/t-base"
pl_walk "install (cold, swap now)" "$S/t-base" cold_level "old new" install "$S/FIX-1.hfx"
# one file instead of two: a transaction of one op
pack_fix FIX-S 1 "$S/build/v1" "$S/build/v2"
one_level() {
	pair_level "$1/usr/lib/libgreet.so.1" "$1/usr/lib/libaux.so.1" "$V1" "$V1" "$V2" "$V1"
}
export -f one_level
PL_FIX=FIX-S pl_walk "install (cold, one file)" "$S/t-base" one_level "old new" install "$S/FIX-S.hfx"
# the target in use: the install commits and leaves the swap pending
greeter_start() { R=$1 start_greeter "$S/out.rec"; }
greeter_stop() { stop_pid "$GPID"; }
PL_SETUP=greeter_start PL_TEARDOWN=greeter_stop \
	pl_walk "install (cold, in use: left pending)" "$S/t-base" cold_level "old new" install "$S/FIX-1.hfx"

# control: on a file system that ignores fsync the same checks must find
# violations (not counted in the figures)
P0=$POINTS; S0=$STATES; V0=$VIOL
PL_MODEL=nofsync PL_LIMIT=4 pl_walk "control: install on a disk that ignores fsync" \
	"$S/t-base" cold_level "old new" install "$S/FIX-1.hfx" >/dev/null
[ -n "${PL_ONLY:-}" ] || [ "$VIOL" -gt "$V0" ] || fail "control: no violation found on a disk that ignores fsync"
[ -n "${PL_ONLY:-}" ] || echo "ok - control: a disk that ignores fsync gives $((VIOL - V0)) violations"
POINTS=$P0; STATES=$S0; VIOL=$V0

start_greeter "$S/out"; expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx"; stop_pid "$GPID"
cp -a "$R" "$S/t-pending"
pl_walk "boot replay" "$S/t-pending" cold_level "new" boot
pl_walk "cancel (rollback of a pending install)" "$S/t-pending" cold_level "old new" rollback FIX-1
# boot over a temporary file an earlier crash left (kill -9 between its
# open and its rename): the boot record's write truncates an existing file
cp -a "$S/t-pending" "$S/t-leftover"
printf 'svc boot at 1: a record torn by a crash, longer than the next one will be\n%.0s' 1 2 3 \
	>"$S/t-leftover/var/lib/svc/.last-boot.tmp"
pl_walk "boot replay over a leftover temporary file" "$S/t-leftover" cold_level "new" boot
cp -a "$S/t-pending" "$S/t-installed"; "$SVC" --quiet --root "$S/t-installed" boot
pl_walk "rollback (swap now)" "$S/t-installed" cold_level "old new" rollback FIX-1
# a second fix on top of the first (both files v2 -> v3)
greet_lib 3 "$S/build/v3"; V3=$(sha "$S/build/v3/libgreet.so.1"); export V3
pack_fix FIX-2 2 "$S/build/v2" "$S/build/v3" \
	--target "/usr/lib/libaux.so.1=$S/build/v2/libgreet.so.1:$S/build/v3/libgreet.so.1"
second_level() {
	pair_level "$1/usr/lib/libgreet.so.1" "$1/usr/lib/libaux.so.1" "$V2" "$V2" "$V3" "$V3"
}
export -f second_level
PL_FIX=FIX-2 pl_walk "second install on top of the first" "$S/t-installed" second_level "old new" \
	install "$S/FIX-2.hfx"

# --- hot: install /hotpatch:enable and rollback recorded while a worker
# (libcalc) and a PIE program run from the tree; after the power cut no
# process survives, and boot must leave both targets at one level
S0=$S; scratch_new powerloss-hot; hot_fixture_root
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/HOT.hfx" --id HOT-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o" \
	--target "/usr/bin/pieprog=$S/o/pieprog" --objects "$S/o/pie1.o:$S/o/pie2.o"
CALC1=$(sha "$S/o/libcalc.so.1"); PIE1=$(sha "$S/o/pieprog")
cp -a "$R" "$S/t-hot"
"$SVC" --quiet --root "$R" install "$S/HOT.hfx"
CALC2=$(sha "$R/usr/lib/libcalc.so.1"); PIE2=$(sha "$R/usr/bin/pieprog")
export S CALC1 PIE1 CALC2 PIE2
cp -a "$R" "$S/t-hot-installed"
hot_level() {
	pair_level "$1/usr/lib/libcalc.so.1" "$1/usr/bin/pieprog" "$CALC1" "$PIE1" "$CALC2" "$PIE2"
}
hot_start() {
	start_bg "$S/a.out" "$1/usr/bin/worker" 2 50 2000; A=$BGPID
	start_bg "$S/b.out" "$1/usr/bin/pieprog" 50; B=$BGPID
	wait_line "$S/a.out" "bad=0" || fail "hot: the worker does not start"
}
hot_stop() { sleep 0.3; stop_pid "$A"; stop_pid "$B"; }
export -f hot_level
PL_FIX=HOT-1 PL_SETUP=hot_start PL_TEARDOWN=hot_stop \
	pl_walk "install /hotpatch:enable" "$S/t-hot" hot_level "old new" install "$S/HOT.hfx" /hotpatch:enable
[ -n "${PL_ONLY:-}" ] || grep -q "calc v2" "$S/a.out" || fail "hot: the recorded install did not patch the worker"
PL_FIX=HOT-1 PL_SETUP=hot_start PL_TEARDOWN=hot_stop \
	pl_walk "hot rollback" "$S/t-hot-installed" hot_level "old new" rollback HOT-1
[ -n "${PL_ONLY:-}" ] || grep -q "calc v1" "$S/a.out" || fail "hot rollback: the recorded rollback did not unpatch the worker"
cleanup; S=$S0

echo "power-loss: $POINTS crash points x $STATES disk states, $VIOL violations"
[ "$VIOL" = 0 ] || fail "power loss left $VIOL violations"
echo "check-powerloss: passed"
