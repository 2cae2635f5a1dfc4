#!/usr/bin/env bash
# make bench: speed figures, each against a baseline measured in the same run.
# Prints one table (tests/bench/report.py) and writes it to build/bench.json.
# Not a test: nothing here asserts a time (a goal missed is marked, not failed).
# docs/performance.md explains every row and how to reproduce it.
#
# Every sub-bench appends TSV rows to $BENCH_ROWS (tests/bench/lib.sh):
#   1-3 below: the engine (cold install, inspect, boot replay);
#   build/bench-hotpatch: live-patch pauses and fleets (rows when it writes
#     them, its text printed under the table otherwise);
#   tests/bench-redirect.sh: calls/s through a redirect;
#   tests/bench-hotinstall.sh: svc install /hotpatch:enable end to end
#     against the live patch alone (svc hotpatch apply by PID);
#   tests/bench-redis.sh: restart downtime against the live fix's stall.
# Environment: BENCH_ROUNDS (engine rounds, default 15), BENCH_PROCS (fleet
# size for bench-hotpatch and bench-hotinstall, default 1000),
# BENCH_SKIP="redis redirect hotpatch hotinstall"
# (leave sub-benches out), and those of the sub-benches.
source "$(dirname "$0")/lib.sh"
source "$SVC_TOP/tests/bench/lib.sh"
scratch_new bench
K=${BENCH_ROUNDS:-15}
SKIP=" ${BENCH_SKIP:-} "
export BENCH_ROWS="$S/rows.tsv"
: >"$BENCH_ROWS"
T_START=$(date +%s)
{
	echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "cores=$(nproc)"
	echo "kernel=$(uname -r)"
	echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "svc=$("$SVC" --version)"
	echo "rounds=$K"
} >"$S/machine.txt"
mark_load() { echo "#load $(load1)" >>"$BENCH_ROWS"; }
step() { echo "bench: $* ($(( $(date +%s) - T_START )) s)" >&2; }

# --- the targets: real shared objects of 2 MiB (code + 2 MiB of random
# read-only data), base and fixed differing in code
step "engine: building 2 MiB ELF targets"
mkdir -p "$R/usr/lib" "$S/t"
head -c $((2 << 20)) /dev/urandom >"$S/t/blob"
for v in 1 2; do
	cat >"$S/t/big$v.c" <<-EOF
	__asm__(".section .rodata.blob,\"a\"\n.globl big_blob\nbig_blob:\n.incbin \"$S/t/blob\"\n.previous");
	extern const unsigned char big_blob[];
	int big_version(void) { return $v; }
	int big_byte(unsigned i) { return big_blob[i % (2u << 20)] + big_version() * $v; }
	EOF
	gcc -O2 -fPIC -shared -Wl,-soname,big.so -o "$S/t/big$v.so" "$S/t/big$v.c"
done
mv "$S/t/big1.so" "$S/t/base"; mv "$S/t/big2.so" "$S/t/new"
cp "$S/t/base" "$R/usr/lib/big.so"
"$SVC" --quiet keygen --out "$S/vendor"; cp "$S/vendor.pub" "$R/etc/svc/trusted/"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/big.hfx" --id BIG --series b --seq 1 \
	--target "/usr/lib/big.so=$S/t/base:$S/t/new"
echo "target=$(stat -c %s "$S/t/new") bytes ELF shared object; package $(stat -c %s "$S/big.hfx") bytes" \
	>>"$S/machine.txt"

# --- 1. cold install, swap now, of one 2 MiB file vs a bare durable replace
# (svc's state directories exist, as on any system after its first fix: the
# first install's six mkdir + fsync are not what this row measures)
step "engine: cold install x $K"
mkdir -p "$R/var/lib/svc/staging" "$R/var/lib/svc/pending" "$R/var/lib/svc/applied" \
	"$R/var/lib/svc/quarantine"
cp -a "$R" "$S/tmpl"
: >"$S/a"; : >"$S/b"
for i in $(seq "$K"); do
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now); "$SVC" --quiet --root "$S/w" install "$S/big.hfx"; t1=$(now)
	echo $((t1 - t0)) >>"$S/a"
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now)
	cp "$S/t/new" "$S/w/usr/lib/.big.tmp" && sync "$S/w/usr/lib/.big.tmp" &&
		mv "$S/w/usr/lib/.big.tmp" "$S/w/usr/lib/big.so" && sync "$S/w/usr/lib"
	t1=$(now); echo $((t1 - t0)) >>"$S/b"
done
bench_row cold-install "cold install, 2 MiB, swap now (vs cp+sync+mv+sync)" ms 1.5 1e6 "$S/a" "$S/b"

# --- 2. package verification alone vs hashing the same bytes
step "engine: inspect x $K"
: >"$S/a"; : >"$S/b"
for i in $(seq "$K"); do
	t0=$(now); "$SVC" inspect "$S/big.hfx" >/dev/null; t1=$(now); echo $((t1 - t0)) >>"$S/a"
	t0=$(now); sha256sum "$S/t/new" >/dev/null; t1=$(now); echo $((t1 - t0)) >>"$S/b"
done
bench_row inspect "svc inspect of a 2 MiB package (vs sha256sum)" ms 1.3 1e6 "$S/a" "$S/b"

# --- 3. boot replay of a pending 8-file transaction vs 8 bare durable replaces
step "engine: boot replay x $K"
for f in 1 2 3 4 5 6 7 8; do cp "$S/t/base" "$R/usr/lib/f$f.so"; done
args=(); for f in 1 2 3 4 5 6 7 8; do args+=(--target "/usr/lib/f$f.so=$S/t/base:$S/t/new"); done
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/eight.hfx" --id EIGHT --series e --seq 1 "${args[@]}"
python3 -c 'import mmap,sys,time
files=[open(p,"rb") for p in sys.argv[1:]]
maps=[mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ) for f in files]
print("ready",flush=True); time.sleep(600)' "$R"/usr/lib/f?.so >"$S/holder.out" &
HOLDER=$!; STARTED_PIDS+=("$HOLDER")
for i in $(seq 100); do [ -s "$S/holder.out" ] && break; sleep 0.05; done
"$SVC" --quiet --root "$R" install "$S/eight.hfx" || [ $? = 3 ] || fail "bench: install did not defer"
stop_pid "$HOLDER"
rm -rf "$S/tmpl"; cp -a "$R" "$S/tmpl"
: >"$S/a"; : >"$S/b"
for i in $(seq "$K"); do
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now); "$SVC" --quiet --root "$S/w" boot; t1=$(now); echo $((t1 - t0)) >>"$S/a"
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now)
	for f in 1 2 3 4 5 6 7 8; do
		ln "$S/w/usr/lib/f$f.so" "$S/w/usr/lib/.f$f.bak"; sync "$S/w/usr/lib"
		cp "$S/t/new" "$S/w/usr/lib/.f$f.tmp" && sync "$S/w/usr/lib/.f$f.tmp"
		mv "$S/w/usr/lib/.f$f.tmp" "$S/w/usr/lib/f$f.so"; sync "$S/w/usr/lib"
	done
	t1=$(now); echo $((t1 - t0)) >>"$S/b"
done
bench_row boot-replay "svc boot: replay one 8-file transaction (vs 8x ln+sync+cp+sync+mv+sync)" \
	ms 1 1e6 "$S/a" "$S/b"
rm -rf "$S/w" "$S/tmpl"

# --- 4. live patching (hotpatch/): pauses and fleets
if [[ $SKIP != *" hotpatch "* ]] && [ -x "$SVC_TOP/build/bench-hotpatch" ]; then
	step "hotpatch: build/bench-hotpatch ${BENCH_PROCS:-1000}"
	"$SVC_TOP/build/bench-hotpatch" "${BENCH_PROCS:-1000}" >"$S/hp.txt" 2>&1 ||
		echo "bench-hotpatch: exit $?" >>"$S/hp.txt"
	mark_load
fi

# --- 5. calls through a redirect
if [[ $SKIP != *" redirect "* ]]; then
	step "redirect: calls/s before and after a live patch"
	bash "$SVC_TOP/tests/bench-redirect.sh" >"$S/redirect.txt" 2>&1 ||
		{ echo "bench-redirect: exit $?"; cat "$S/redirect.txt"; } >>"$S/errors.txt"
	mark_load
fi

# --- 6. the whole hot install around the live patch
if [[ $SKIP != *" hotinstall "* ]]; then
	step "hotinstall: svc install /hotpatch:enable with ${BENCH_PROCS:-1000} processes"
	bash "$SVC_TOP/tests/bench-hotinstall.sh" >"$S/hotinstall.txt" 2>&1 ||
		{ echo "bench-hotinstall: exit $?"; cat "$S/hotinstall.txt"; } >>"$S/errors.txt"
	mark_load
fi

# --- 7. the restart a live fix replaces
if [[ $SKIP != *" redis "* ]]; then
	step "redis: restart against live fix"
	bash "$SVC_TOP/tests/bench-redis.sh" >"$S/redis.txt" 2>&1 ||
		{ echo "bench-redis: exit $?"; cat "$S/redis.txt"; } >>"$S/errors.txt"
	mark_load
fi

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$S/machine.txt"
echo "seconds=$(( $(date +%s) - T_START ))" >>"$S/machine.txt"
mkdir -p "$SVC_TOP/build"
python3 "$SVC_TOP/tests/bench/report.py" "$BENCH_ROWS" "$S/machine.txt" "$SVC_TOP/build/bench.json" \
	"$S/hp.txt" "$S/errors.txt"
echo "bench: $(( $(date +%s) - T_START )) s in all"
