# Shared helpers of the bench scripts (tests/bench.sh, tests/bench-*.sh).
# Source it after tests/lib.sh.  Rows go to $BENCH_ROWS, or to stdout when unset.
#
# A row is one TSV line appended to $BENCH_ROWS (docs/performance.md):
#   key label unit svc_median svc_p10 svc_p90 base_median base_p10 base_p90 goal [load1]
# goal is the largest acceptable svc/base ratio or "-"; load1 the 1-minute
# load average when the row was measured (optional: tests/bench/report.py
# fills it from the next "#load" line for rows written without it).

now() { date +%s%N; }

load1() { cut -d' ' -f1 /proc/loadavg; }

# stats SCALE < samples: "median p10 p90" of the samples (one a line)
# divided by SCALE, nearest rank
stats() {
	sort -g | awk -v s="$1" '{a[NR]=$1}
		function q(p,  i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; return a[i] / s }
		END { if (NR == 0) { print "- - -"; exit } printf "%.6g %.6g %.6g\n", q(0.5), q(0.1), q(0.9) }'
}

# bench_row KEY LABEL UNIT GOAL SCALE SVC_SAMPLES BASE_SAMPLES: one row from
# two files of samples (one number a line), each divided by SCALE
bench_row() {
	local sm s10 s90 bm b10 b90
	read -r sm s10 s90 < <(stats "$5" <"$6")
	read -r bm b10 b90 < <(stats "$5" <"$7")
	bench_row_values "$1" "$2" "$3" "$4" "$sm" "$s10" "$s90" "$bm" "$b10" "$b90"
}

# bench_row_values KEY LABEL UNIT GOAL SVC_MED SVC_P10 SVC_P90 BASE_MED BASE_P10 BASE_P90
bench_row_values() {
	local line
	line=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$1" "$2" "$3" "$5" "$6" "$7" "$8" \
		"$9" "${10}" "$4" "$(load1)")
	if [ -n "${BENCH_ROWS:-}" ]; then echo "$line" >>"$BENCH_ROWS"; else echo "$line"; fi
}
