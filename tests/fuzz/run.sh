#!/usr/bin/env bash
# Run each fuzz harness (build/fuzz/fuzz-NAME) for FUZZ_SECONDS on its seeds
# and print, per harness, the executions and the findings (crashes, leaks,
# timeouts, failed invariants; kept as build/fuzz/findings/NAME-*).  The
# inputs of earlier findings (tests/fuzz/regress/NAME/) run once first.
# FUZZ_SECONDS=0: replay the seeds and the corpus once each, no search (CI).
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
bash tests/fuzz/seeds.sh
export SVC_FUZZ_TRUST="$TOP/build/fuzz/trust"
mkdir -p build/fuzz/findings build/fuzz/logs
total_exec=0; total_find=0
for h in "$@"; do
	mkdir -p "build/fuzz/corpus/$h"
	rm -f build/fuzz/findings/"$h"-*
	set +e
	# every earlier finding is a regression input (tests/fuzz/regress/NAME/):
	# each runs once first, and a crash there is a finding again
	if [ -d "tests/fuzz/regress/$h" ]; then
		"build/fuzz/fuzz-$h" -runs=1 -artifact_prefix="build/fuzz/findings/$h-regress-" \
			tests/fuzz/regress/"$h"/* >"build/fuzz/logs/$h-regress.log" 2>&1 ||
			cp "build/fuzz/logs/$h-regress.log" "build/fuzz/findings/$h-regress.log"
	fi
	if [ "$FUZZ_SECONDS" = 0 ]; then
		# replay only (CI): every seed and corpus input once, no search, so
		# the verdict does not depend on luck
		find "build/fuzz/seeds/$h" "build/fuzz/corpus/$h" -type f -print0 |
			xargs -0 -r "build/fuzz/fuzz-$h" -runs=1 -timeout=10 -rss_limit_mb=2048 \
				-artifact_prefix="build/fuzz/findings/$h-" >"build/fuzz/logs/$h.log" 2>&1
		rc=$?
		execs=$(find "build/fuzz/seeds/$h" "build/fuzz/corpus/$h" -type f | wc -l)
	else
		"build/fuzz/fuzz-$h" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix="build/fuzz/findings/$h-" \
			"build/fuzz/corpus/$h" "build/fuzz/seeds/$h" >"build/fuzz/logs/$h.log" 2>&1
		rc=$?
		execs=
	fi
	set -e
	[ -n "$execs" ] || execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build/fuzz/logs/$h.log" | tail -n1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "build/fuzz/logs/$h.log" | tail -n1)
	finds=$(find build/fuzz/findings -name "$h-*" | wc -l)
	[ "$rc" = 0 ] || [ "$finds" -gt 0 ] || finds=1
	echo "fuzz-$h: ${execs:-0} executions, $finds findings$([ "$finds" = 0 ] || echo " (build/fuzz/logs/$h.log)")"
	total_exec=$((total_exec + ${execs:-0})); total_find=$((total_find + finds))
done
echo "fuzz: $# harnesses x ${FUZZ_SECONDS} s: $total_exec executions, $total_find findings"
[ "$total_find" = 0 ]
