#!/usr/bin/env bash
# svc metrics: the status as Prometheus text, checked line by line, then
# written into a textfile-collector directory and read back through Debian's
# prometheus-node-exporter, started by this test on 127.0.0.1 and stopped
# by its PID: a scratch root with a fix installed hot, workers converged on
# it, and a parker whose thread sits in the patched bytes (not converged).
source "$(dirname "$0")/lib.sh"
scratch_new metrics
hot_fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}

# --- a fresh root: every family there, zero counts, and nothing created
before=$(tree_state "$R")
expect_exit 0 "$SVC" --root "$R" metrics
echo "$OUT" | grep -qx 'svc_fixes{state="installed"} 0' || fail "fresh root: $OUT"
echo "$OUT" | grep -qx 'svc_last_boot_result{result="none"} 1' || fail "fresh root boot: $OUT"
[ "$before" = "$(tree_state "$R")" ] || fail "svc metrics changed the root"
ok "fresh root: zero counts, never-booted, root unchanged"

"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o" \
	--target "/usr/lib/libpark.so.1=$S/o/libpark.so.1" --objects "$S/o/park1.o:$S/o/park2.o"
W=()
for i in 1 2; do start_bg "$S/w$i.out" "$R/usr/bin/worker" 2 50 2000; W+=("$BGPID"); done
# the parker under a name that needs escaping in a label value
cp "$R/usr/bin/parker" "$R/usr/bin/pa\\rk\"er"
start_bg "$S/park.out" "$R/usr/bin/pa\\rk\"er"; PARK=$BGPID
"$SVC" --root "$R" boot >/dev/null
expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx" /hotpatch:enable
echo "$OUT" | grep -q "NOT PATCHED: pid $PARK (pa.rk.er)" || fail "parker was patched: $OUT"
for i in 1 2; do wait_line "$S/w$i.out" "^21 calc v2" || fail "worker $i not patched"; done

# --- the exposition: HELP and TYPE before each family, valid names, values
expect_exit 0 "$SVC" --root "$R" metrics
PROM="$OUT"
python3 - "$PROM" "$PARK" <<'PY' || fail "exposition: $PROM"
import re, sys
text, park = sys.argv[1], sys.argv[2]
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
lab = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?[0-9.e+]+)$" % (name, lab, lab))
helped, typed, seen = set(), set(), {}
for line in text.splitlines():
    if line.startswith("# HELP "):
        helped.add(line.split()[2]); continue
    if line.startswith("# TYPE "):
        typed.add(line.split()[2]); assert line.split()[3] == "gauge", line; continue
    m = sample.match(line)
    assert m, "bad line: %r" % line
    assert m.group(1) in helped and m.group(1) in typed, "no HELP/TYPE before: %r" % line
    seen[(m.group(1), m.group(2) or "")] = float(m.group(3))
def v(n, l=""):
    return seen[(n, l)]
assert v("svc_fixes", '{state="installed"}') == 1
assert v("svc_fix_info", '{fix="FIX-1",series="calc",sequence="1",state="installed"}') == 1
assert v("svc_files_serviced") == 2
assert v("svc_file_converged", '{path="/usr/lib/libcalc.so.1",level="FIX-1"}') == 1
assert v("svc_file_converged", '{path="/usr/lib/libpark.so.1",level="FIX-1"}') == 0
assert v("svc_file_processes", '{path="/usr/lib/libcalc.so.1",level="FIX-1"}') == 2
assert v("svc_unconverged_processes") == 1
unc = [k for k in seen if k[0] == "svc_process_unconverged"]
assert len(unc) == 1 and 'pid="%s"' % park in unc[0][1] and r'comm="pa\\rk\"er"' in unc[0][1] \
    and 'disk_level="FIX-1"' in unc[0][1], unc
assert v("svc_last_boot_result", '{result="ok"}') == 1
assert v("svc_last_boot_result", '{result="failed"}') == 0
assert v("svc_last_boot_timestamp_seconds") > 1.6e9
PY
ok "exposition format: HELP/TYPE, valid names, escaped labels; fix, files, levels, the unconverged parker"

# --- written atomically into the directory, nothing else left there
TXT="$S/textfile"; mkdir "$TXT"
expect_exit 0 "$SVC" --root "$R" metrics --textfile-dir "$TXT"
[ "$(ls -A "$TXT")" = "svc.prom" ] || fail "textfile dir holds: $(ls -A "$TXT")"
grep -q '^svc_unconverged_processes 1$' "$TXT/svc.prom" || fail "svc.prom: $(cat "$TXT/svc.prom")"
SVC_CRASH_LOG="$S/steps" "$SVC" --root "$R" metrics --textfile-dir "$TXT"
grep -q "rename.*svc.prom" "$S/steps" || fail "not replaced by rename: $(cat "$S/steps")"
grep -q "fsync" "$S/steps" || fail "not fsync'ed: $(cat "$S/steps")"
expect_exit 1 "$SVC" --root "$R" metrics --textfile-dir "$S/nonexistent"
echo "$OUT" | grep -q "^svc: $S/nonexistent: No such file" || fail "missing dir: $OUT"
expect_exit 2 "$SVC" --root "$R" status --textfile-dir "$TXT"
ok "--textfile-dir: svc.prom replaced through temp + fsync + rename; a missing directory is one line, exit 1"

# --- read back through node_exporter's textfile collector on 127.0.0.1
[ -x "$NODE_EXPORTER" ] || fail "$NODE_EXPORTER not installed (tools/deps.sh base)"
NE_OK=
for try in 1 2 3; do
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$PORT" --collector.disable-defaults \
		--collector.textfile --collector.textfile.directory="$TXT" >"$S/ne.log" 2>&1 &
	NE=$!; STARTED_PIDS+=("$NE")
	for i in $(seq 100); do
		curl -sf "http://127.0.0.1:$PORT/metrics" >"$S/scrape" 2>/dev/null && { NE_OK=1; break; }
		kill -0 "$NE" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$NE_OK" ] && break
	stop_pid "$NE"  # the port was taken meanwhile: another one
done
[ -n "$NE_OK" ] || fail "node_exporter did not serve: $(cat "$S/ne.log")"
grep -q '^node_textfile_scrape_error 0$' "$S/scrape" || fail "node_exporter refused svc.prom: $(grep -i textfile "$S/scrape") $(cat "$S/ne.log")"
grep -q '^svc_fixes{state="installed"} 1$' "$S/scrape" || fail "scrape lacks svc_fixes: $(grep svc_ "$S/scrape")"
grep -q "^svc_process_unconverged{.*pid=\"$PARK\".*} 1$" "$S/scrape" || fail "scrape lacks the parker: $(grep svc_ "$S/scrape")"
grep -q '^svc_file_processes{level="FIX-1",path="/usr/lib/libcalc.so.1"} 2$' "$S/scrape" || fail "scrape lacks the workers: $(grep svc_file_processes "$S/scrape")"
# convergence reaches the scrape: the parker gone, the next write says 0
stop_pid "$PARK"
"$SVC" --root "$R" metrics --textfile-dir "$TXT"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$S/scrape"
grep -q '^svc_unconverged_processes 0$' "$S/scrape" || fail "scrape after convergence: $(grep svc_unconverged "$S/scrape")"
stop_pid "$NE"
ok "prometheus-node-exporter on 127.0.0.1:$PORT reads svc.prom without error: fixes, processes, the unconverged one, then convergence"
for p in "${W[@]}"; do stop_pid "$p"; done
echo "it-metrics: $n passed, 0 failed"
