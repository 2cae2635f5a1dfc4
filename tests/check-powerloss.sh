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
source "$(dirname "$0")/lib.sh"
PL="$SVC_TOP/build/tests/powerloss"
[ -x "$PL" ] || fail "build/tests/powerloss missing (make build/tests/powerloss)"
POINTS=0; STATES=0; VIOL=0

# violation TEXT: count it, show the first few
violation() {
	VIOL=$((VIOL + 1))
	[ "$VIOL" -le 10 ] && [ -z "${PL_MODEL:-}" ] && echo "VIOLATION: $*" >&2
	return 0
}

# pl_walk NAME TEMPLATE LEVELFN ALLOWED CMD...: record CMD run on a copy of
# TEMPLATE, then boot every power-loss state of every crash point
pl_walk() {
	local name=$1 tmpl=$2 levelfn=$3 allowed=$4; shift 4
	local n k steps lv js st points=0 states=0 v0=$VIOL
	rm -rf "$S/rec" "$S/plog"; cp -a "$tmpl" "$S/rec"
	[ -z "${PL_SETUP:-}" ] || $PL_SETUP "$S/rec"
	set +e
	SVC_POWER_LOG="$S/plog" "$SVC" --quiet --root "$S/rec" "$@" >/dev/null 2>&1
	set -e
	[ -z "${PL_TEARDOWN:-}" ] || $PL_TEARDOWN
	steps=$("$PL" steps "$S/plog")
	[ "$steps" -gt 5 ] || fail "$name: only $steps steps recorded: the recorder is not wired"
	for n in $(seq 1 $((steps + 1))); do
		points=$((points + 1))
		for k in $("$PL" states "$S/plog" "$S/rec" "$n"); do
			states=$((states + 1))
			rm -rf "$S/w"; cp -a "$tmpl" "$S/w"
			"$PL" make "$S/plog" "$S/rec" "$n" "$k" "$S/w" || fail "$name: cannot build state $k of point $n"
			local at="$name: power lost before step $n, state $k"
			if ! "$SVC" --quiet --root "$S/w" boot >/dev/null 2>&1; then
				violation "$at: boot failed"; continue
			fi
			lv=$($levelfn "$S/w")
			case " $allowed " in *" $lv "*) ;; *) violation "$at: left '$lv'"; continue;; esac
			if ! js=$("$SVC" --root "$S/w" status --json 2>&1); then
				violation "$at: status failed: $js"; continue
			fi
			if [ "$lv" = new ]; then
				echo "$js" | grep -q '"state":"installed"' || violation "$at: files new, ledger not: $js"
			else
				echo "$js" | grep -q '"state":"\(installed\|pending\)"' && violation "$at: files old, ledger says installed: $js"
			fi
			# one listing serves the leftovers check and the idempotence check
			st=$(cd "$S/w" && find . ! -name last-boot -printf '%p %y %m %s %i\n' | sort)
			case "$st" in *".new "*) violation "$at: staged file left";; esac
			case "$st" in *"/staging/"*) violation "$at: staging record left";; esac
			case "$st" in *"/pending/"*) violation "$at: pending record left after boot";; esac
			"$SVC" --quiet --root "$S/w" boot >/dev/null 2>&1 || violation "$at: second boot failed"
			[ "$st" = "$(cd "$S/w" && find . ! -name last-boot -printf '%p %y %m %s %i\n' | sort)" ] ||
				violation "$at: second boot changed the tree"
		done
	done
	POINTS=$((POINTS + points)); STATES=$((STATES + states))
	echo "ok - $name: $points crash points x $states disk states, $((VIOL - v0)) violations"
}

# --- cold: libgreet and libaux change together in one transaction
scratch_new powerloss
fixture_root
cp "$R/usr/lib/libgreet.so.1" "$R/usr/lib/libaux.so.1"
V1=$(sha "$S/build/v1/libgreet.so.1"); V2=$(sha "$S/build/v2/libgreet.so.1")
pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2" \
	--target "/usr/lib/libaux.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
# shas A B: the SHA-256 of two files ("none" for a missing one), one process
shas() {
	local a b
	{ read -r a _; read -r b _; } < <(sha256sum "$1" "$2" 2>/dev/null || true)
	[ -f "$1" ] || { b=$a; a=none; }
	[ -f "$2" ] || b=none
	echo "${a:-none} ${b:-none}"
}
cold_level() {
	local a b; read -r a b < <(shas "$1/usr/lib/libgreet.so.1" "$1/usr/lib/libaux.so.1")
	if [ "$a" = "$V1" ] && [ "$b" = "$V1" ]; then echo old
	elif [ "$a" = "$V2" ] && [ "$b" = "$V2" ]; then echo new
	elif { [ "$a" = "$V1" ] || [ "$a" = "$V2" ]; } && { [ "$b" = "$V1" ] || [ "$b" = "$V2" ]; }; then echo mixed
	else echo torn; fi
}
cp -a "$R" "$S/t-base"
pl_walk "install (cold, swap now)" "$S/t-base" cold_level "old new" install "$S/FIX-1.hfx"

# control: on a file system that ignores fsync the same checks must find
# violations (not counted in the figures)
P0=$POINTS; S0=$STATES; V0=$VIOL
PL_MODEL=nofsync PL_LIMIT=16 pl_walk "control: install on a disk that ignores fsync" \
	"$S/t-base" cold_level "old new" install "$S/FIX-1.hfx" >/dev/null
[ "$VIOL" -gt "$V0" ] || fail "control: no violation found on a disk that ignores fsync"
echo "ok - control: a disk that ignores fsync gives $((VIOL - V0)) violations"
POINTS=$P0; STATES=$S0; VIOL=$V0

start_greeter "$S/out"; expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx"; stop_pid "$GPID"
cp -a "$R" "$S/t-pending"
pl_walk "boot replay" "$S/t-pending" cold_level "new" boot
pl_walk "cancel (rollback of a pending install)" "$S/t-pending" cold_level "old new" rollback FIX-1
cp -a "$S/t-pending" "$S/t-installed"; "$SVC" --quiet --root "$S/t-installed" boot
pl_walk "rollback (swap now)" "$S/t-installed" cold_level "old new" rollback FIX-1

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
cp -a "$R" "$S/t-hot-installed"
hot_level() {
	local c p; read -r c p < <(shas "$1/usr/lib/libcalc.so.1" "$1/usr/bin/pieprog")
	if [ "$c" = "$CALC1" ] && [ "$p" = "$PIE1" ]; then echo old
	elif [ "$c" = "$CALC2" ] && [ "$p" = "$PIE2" ]; then echo new
	elif { [ "$c" = "$CALC1" ] || [ "$c" = "$CALC2" ]; } && { [ "$p" = "$PIE1" ] || [ "$p" = "$PIE2" ]; }; then echo mixed
	else echo torn; fi
}
hot_start() {
	start_bg "$S/a.out" "$1/usr/bin/worker" 2 50 2000; A=$BGPID
	start_bg "$S/b.out" "$1/usr/bin/pieprog" 50; B=$BGPID
	wait_line "$S/a.out" "bad=0" || fail "hot: the worker does not start"
}
hot_stop() { sleep 0.3; stop_pid "$A"; stop_pid "$B"; }
PL_SETUP=hot_start PL_TEARDOWN=hot_stop \
	pl_walk "install /hotpatch:enable" "$S/t-hot" hot_level "old new" install "$S/HOT.hfx" /hotpatch:enable
grep -q "calc v2" "$S/a.out" || fail "hot: the recorded install did not patch the worker"
PL_SETUP=hot_start PL_TEARDOWN=hot_stop \
	pl_walk "hot rollback" "$S/t-hot-installed" hot_level "old new" rollback HOT-1
grep -q "calc v1" "$S/a.out" || fail "hot rollback: the recorded rollback did not unpatch the worker"
cleanup; S=$S0

echo "power-loss: $POINTS crash points x $STATES disk states, $VIOL violations"
[ "$VIOL" = 0 ] || fail "power loss left $VIOL violations"
echo "it-powerloss: passed"
