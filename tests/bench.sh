#!/usr/bin/env bash
# make bench: speed figures, each against a baseline measured in the same run.
# Prints one table.  Not a test: nothing here asserts a time.
source "$(dirname "$0")/lib.sh"
scratch_new bench
ROWS=()
row() { ROWS+=("$(printf '%-52s %12s %12s %8s' "$1" "$2" "$3" "$4")"); }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.2f ms", n / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
K=${BENCH_ROUNDS:-15}

# --- 1. cold install, swap now, of one 2 MiB file vs a bare durable replace
mkdir -p "$R/usr/lib" "$S/t"
head -c $((2 << 20)) /dev/urandom >"$S/t/base"; cp "$S/t/base" "$S/t/new"; printf 'x' >>"$S/t/new"
cp "$S/t/base" "$R/usr/lib/big.so"
"$SVC" --quiet keygen --out "$S/vendor"; cp "$S/vendor.pub" "$R/etc/svc/trusted/"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/big.hfx" --id BIG --series b --seq 1 \
	--target "/usr/lib/big.so=$S/t/base:$S/t/new"
cp -a "$R" "$S/tmpl"
svc_t=(); base_t=()
for i in $(seq "$K"); do
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now); "$SVC" --quiet --root "$S/w" install "$S/big.hfx"; t1=$(now)
	svc_t+=($((t1 - t0)))
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now)
	cp "$S/t/new" "$S/w/usr/lib/.big.tmp" && sync "$S/w/usr/lib/.big.tmp" &&
		mv "$S/w/usr/lib/.big.tmp" "$S/w/usr/lib/big.so" && sync "$S/w/usr/lib"
	t1=$(now); base_t+=($((t1 - t0)))
done
a=$(printf '%s\n' "${svc_t[@]}" | median); b=$(printf '%s\n' "${base_t[@]}" | median)
row "cold install, 2 MiB, swap now (verify+stage+swap)" "$(ms "$a")" "$(ms "$b")" "$(ratio "$a" "$b")"

# --- 2. package verification alone vs hashing the same bytes
v_t=(); h_t=()
for i in $(seq "$K"); do
	t0=$(now); "$SVC" inspect "$S/big.hfx" >/dev/null; t1=$(now); v_t+=($((t1 - t0)))
	t0=$(now); sha256sum "$S/t/new" >/dev/null; t1=$(now); h_t+=($((t1 - t0)))
done
a=$(printf '%s\n' "${v_t[@]}" | median); b=$(printf '%s\n' "${h_t[@]}" | median)
row "open+check a 2 MiB package (svc inspect)" "$(ms "$a")" "$(ms "$b")" "$(ratio "$a" "$b")"

# --- 3. boot replay of a pending 8-file transaction vs 8 bare durable replaces
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
r_t=(); b_t=()
for i in $(seq "$K"); do
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now); "$SVC" --quiet --root "$S/w" boot; t1=$(now); r_t+=($((t1 - t0)))
	rm -rf "$S/w"; cp -a "$S/tmpl" "$S/w"
	t0=$(now)
	for f in 1 2 3 4 5 6 7 8; do
		ln "$S/w/usr/lib/f$f.so" "$S/w/usr/lib/.f$f.bak"; sync "$S/w/usr/lib"
		cp "$S/t/new" "$S/w/usr/lib/.f$f.tmp" && sync "$S/w/usr/lib/.f$f.tmp"
		mv "$S/w/usr/lib/.f$f.tmp" "$S/w/usr/lib/f$f.so"; sync "$S/w/usr/lib"
	done
	t1=$(now); b_t+=($((t1 - t0)))
done
a=$(printf '%s\n' "${r_t[@]}" | median); b=$(printf '%s\n' "${b_t[@]}" | median)
row "svc boot: replay one 8-file transaction (hash-checked)" "$(ms "$a")" "$(ms "$b")" "$(ratio "$a" "$b")"

# --- 4. live patching (hotpatch/): pauses and fleets
if [ -x "$SVC_TOP/build/bench-hotpatch" ]; then
	"$SVC_TOP/build/bench-hotpatch" "${BENCH_PROCS:-1000}" >"$S/hp.txt" 2>&1 || true
fi

echo
printf '%-52s %12s %12s %8s\n' "what (median of $K runs)" "svc" "baseline" "ratio"
printf '%s\n' "${ROWS[@]}"
echo "baselines: 1 cp + sync(file) + mv + sync(dir); 2 sha256sum of the coldpatch;"
echo "           3 per file: ln backup + sync + cp + sync + mv + sync"
if [ -s "$S/hp.txt" ]; then echo; cat "$S/hp.txt"; fi
