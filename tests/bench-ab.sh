#!/usr/bin/env bash
# A change to the live patcher, measured: two builds of bench-hotpatch (OLD,
# NEW) each patch a fleet of N idle processes (BENCH_PROFILE=svc), and the
# bare stop of N processes runs between them, ROUNDS times in turn; medians
# of the wall time and of svc's own CPU, and each side's ratio to the bare
# stop.  Not part of make bench (it needs a second build): for a session
# judging its own change.
#   usage: tests/bench-ab.sh OLD_BENCH NEW_BENCH [ROUNDS=9] [N=1000]
#   e.g.:  git worktree add /tmp/base HEAD~1 && make -C /tmp/base build/bench-hotpatch
#          tests/bench-ab.sh /tmp/base/build/bench-hotpatch build/bench-hotpatch
set -euo pipefail
old=$1 new=$2 rounds=${3:-9} n=${4:-1000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$rounds"); do
	BENCH_PROFILE=svc "$old" "$n" | tail -1 | sed 's/^/old /' >>"$out"
	BENCH_PROFILE=svc "$new" "$n" | tail -1 | sed 's/^/new /' >>"$out"
	BENCH_PROFILE=bare "$new" "$n" | tail -1 | sed 's/^/bare /' >>"$out"
done
python3 - "$out" <<'PY'
import re, statistics as st, sys
d = {}
for line in open(sys.argv[1]):
    k = line.split()[0]
    wall = float(re.search(r" in ([\d.]+) ms", line).group(1))
    cpu = float(re.search(r"own cpu ([\d.]+) ms", line).group(1))
    d.setdefault(k, []).append((wall, cpu))
med = {k: (st.median(w for w, _ in v), st.median(c for _, c in v)) for k, v in d.items()}
for k in ("old", "new", "bare"):
    w, c = med[k]
    ratio = "" if k == "bare" else f"  {w / med['bare'][0]:.2f}x the bare stop"
    print(f"{k:5} wall {w:7.1f} ms  own cpu {c:7.1f} ms{ratio}")
PY
