#!/usr/bin/env bash
# make bench, the restart a live fix replaces: a real redis-server holding a
# dataset, clients running, and two ways to change its code:
#   restart: SHUTDOWN SAVE, start, load the dataset from the RDB, first answer;
#   live:    svc install FIX.hfx /hotpatch:enable on a scratch root whose
#            target is the binary the server runs.
# The figure is the longest gap a client sees between two answers
# (tests/bench/redis-probe.c), in both cases, same run; and, to tell svc's
# share from the machine's, the longest gap in a quiet period as long as
# the install.
#
# The server: Debian 12's redis source package (apt-get source through a
# private apt configuration, as tests/stock/ does; the machine's apt
# configuration is never touched), Debian's patch series applied, built with
# upstream's make (vendored deps, MALLOC=libc).  The fix:
# tests/bench/redis-getrange.patch (GETRANGE with an end before the first
# byte answers an empty string, not the first byte), built into a signed
# package by `svc build --source ... --patch ... --build ...`.
# Both are cached under $SVC_BENCH_CACHE/redis (default
# /var/cache/svc-bench/redis) and rebuilt when missing; a cold build takes
# minutes (the time is printed and kept in build.stamp).
#
# Rows (TSV, docs/performance.md) go to $BENCH_ROWS (default: stdout).
# Environment: BENCH_REDIS_KEYS (dataset keys, 1000-byte values; default
# 250000, ~300 MB in memory), BENCH_REDIS_ROUNDS (default 3).
source "$(dirname "$0")/lib.sh"
source "$SVC_TOP/tests/bench/lib.sh"
C=${SVC_BENCH_CACHE:-/var/cache/svc-bench}/redis
KEYS=${BENCH_REDIS_KEYS:-250000}
ROUNDS=${BENCH_REDIS_ROUNDS:-3}
SRCPKG=redis SRCVER=5:7.0.15-1~deb12u10
TREE="$C/tree"
MAKECMD="make -j$(nproc) MALLOC=libc BUILD_TLS=no"
PATCH="$SVC_TOP/tests/bench/redis-getrange.patch"
note() { echo "bench-redis: $*" >&2; }
mkdir -p "$C"

# --- the source: Debian's, patch series as shipped
fetch_source() {
	mkdir -p "$C/apt/lists/partial" "$C/apt/cache/archives/partial" "$C/src"
	cat >"$C/apt/sources.list" <<-EOF
	deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
	deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
	EOF
	local apt="-o Dir::Etc::SourceList=$C/apt/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$C/apt/lists -o Dir::Cache=$C/apt/cache -o Debug::NoLocking=1"
	apt-get $apt update >"$C/apt.log" 2>&1 || fail "apt-get update: $(tail -3 "$C/apt.log")"
	(cd "$C/src" && apt-get $apt source --download-only "$SRCPKG=$SRCVER") >>"$C/apt.log" 2>&1 ||
		fail "apt-get source $SRCPKG=$SRCVER: $(tail -3 "$C/apt.log")"
	touch "$C/src.stamp"
}

unpack_tree() {
	rm -rf "$TREE" "$C/unpack"; mkdir -p "$C/unpack"
	(cd "$C/unpack" && dpkg-source --skip-patches -x "$C/src/"*.dsc >/dev/null 2>&1) || fail "dpkg-source -x"
	mv "$C/unpack/"redis-*/ "$TREE"; rm -rf "$C/unpack"
	local p
	for p in $(grep -v '^#' "$TREE/debian/patches/series"); do
		patch -d "$TREE" -p1 -s <"$TREE/debian/patches/$p" || fail "patch $p"
	done
}

# --- base build, then svc build of the fix from the same (clean) tree: the
# same directory and flags give the same build-id, so svc build finds the base
build_all() {
	local t0; t0=$(date +%s)
	[ -f "$C/src.stamp" ] || fetch_source
	unpack_tree
	(cd "$TREE" && nice $MAKECMD) >"$C/make.log" 2>&1 || fail "redis make: $(tail -5 "$C/make.log")"
	rm -rf "$C/bin"; mkdir -p "$C/bin"
	cp "$TREE/src/redis-server" "$TREE/src/redis-cli" "$C/bin/"
	unpack_tree
	rm -f "$C/vendor.key" "$C/vendor.pub"
	"$SVC" --quiet keygen --out "$C/vendor"
	rm -rf "$C/keep"
	nice "$SVC" build --source "$TREE" --patch "$PATCH" \
		--target "/usr/bin/redis-server=$C/bin/redis-server" --build "$MAKECMD" \
		--key "$C/vendor.key" --out "$C/GETRANGE-1.hfx.tmp" --id GETRANGE-1 --series redis --seq 1 \
		--summary "GETRANGE: an end before the first byte selects nothing" \
		>"$C/svc-build.log" 2>&1 || fail "svc build: $(tail -5 "$C/svc-build.log")"
	mv "$C/GETRANGE-1.hfx.tmp" "$C/GETRANGE-1.hfx"
	"$SVC" --version >"$C/svc.version"
	echo "$(( $(date +%s) - t0 ))" >"$C/build.stamp"
}

if [ ! -f "$C/build.stamp" ] || [ ! -x "$C/bin/redis-server" ] || [ ! -f "$C/GETRANGE-1.hfx" ] ||
	! cmp -s "$C/svc.version" <("$SVC" --version) ||
	! "$SVC" inspect "$C/GETRANGE-1.hfx" >/dev/null 2>&1; then
	note "building redis $SRCVER and the fix package (cold cache: minutes)"
	build_all
	note "built in $(cat "$C/build.stamp") s"
fi
[ "${1:-}" = --build-only ] && exit 0

# --- a scratch root whose target is the binary the server runs
scratch_new redis
cp "$C/bin/redis-server" "$R/usr/bin/redis-server"
cp "$C/vendor.pub" "$R/etc/svc/trusted/"
gcc -O2 -o "$S/probe" "$SVC_TOP/tests/bench/redis-probe.c"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$S/data"
cli() { "$C/bin/redis-cli" -p "$PORT" "$@"; }
start_server() {
	"$R/usr/bin/redis-server" --port "$PORT" --bind 127.0.0.1 --dir "$S/data" \
		--dbfilename dump.rdb --save "" --appendonly no --enable-debug-command local \
		--logfile "$S/redis.log" --daemonize no &
	SERVER=$!; STARTED_PIDS+=("$SERVER")
}
# answering: PING says PONG (not -LOADING, not refused)
wait_answer() {
	local i
	for i in $(seq 20000); do
		[ "$(cli ping 2>/dev/null)" = PONG ] && return 0
		kill -0 "$SERVER" 2>/dev/null || fail "redis-server exited: $(tail -3 "$S/redis.log")"
		sleep 0.005
	done
	fail "redis-server does not answer: $(tail -3 "$S/redis.log")"
}
start_server; wait_answer
t0=$(now)
cli debug populate "$KEYS" key 1000 >/dev/null
t1=$(now)
MEM=$(cli info memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p')
note "dataset: $KEYS keys of 1000 bytes, $MEM in memory, populated in $(( (t1 - t0) / 1000000 )) ms"
cli set bench:word Hello >/dev/null
# the bug the fix removes: GETRANGE with an end before the first byte
[ "$(cli getrange bench:word 0 -100)" = H ] || fail "base redis: GETRANGE 0 -100 is not 'H'"

# clients: one probe per core
PROBES=()
for c in $(seq "$(nproc)"); do
	"$S/probe" "$PORT" "$KEYS" >"$S/probe$c.out" 2>&1 &
	PROBES+=($!); STARTED_PIDS+=($!)
done
for c in $(seq "${#PROBES[@]}"); do
	for i in $(seq 200); do [ -s "$S/probe$c.out" ] && break; sleep 0.05; done
done
sleep 0.5
# probe_mark: close the probes' current period; probe_gap: the longest gap
# (us) any probe saw in the period just closed
probe_mark() {
	local c p
	for c in $(seq "${#PROBES[@]}"); do
		PRE[$c]=$(wc -l <"$S/probe$c.out")
		kill -USR1 "${PROBES[$((c - 1))]}"
	done
	for c in $(seq "${#PROBES[@]}"); do
		for p in $(seq 400); do
			[ "$(wc -l <"$S/probe$c.out")" -gt "${PRE[$c]}" ] && break; sleep 0.01
		done
	done
}
probe_gap() {
	local c
	for c in $(seq "${#PROBES[@]}"); do tail -n1 "$S/probe$c.out"; done |
		awk '{ if ($1 == 0) bad = 1; if ($2 > m) m = $2 } END { if (bad) print "none"; else print m }'
}
PRE=()

: >"$S/restart"; : >"$S/live"; : >"$S/quiet"; : >"$S/restart.script"
for round in $(seq "$ROUNDS"); do
	# restart: stop with SAVE (the dataset kept), start, load, first answer
	probe_mark
	t0=$(now)
	cli shutdown save >/dev/null 2>&1 || true
	wait "$SERVER" 2>/dev/null || true
	start_server; wait_answer
	t1=$(now)
	sleep 0.3
	probe_mark; g=$(probe_gap)
	[ "$g" = none ] && fail "a probe got no answer after the restart"
	echo "$g" >>"$S/restart"; echo $((t1 - t0)) >>"$S/restart.script"
	[ "$(cli dbsize)" -ge "$KEYS" ] || fail "the dataset did not survive the restart"
	[ "$(cli getrange bench:word 0 -100)" = H ] || fail "round $round: base redis after restart"

	# live: the fix, installed hot, then rolled back for the next round
	sleep 0.3
	probe_mark
	t0=$(now)
	expect_exit 0 "$SVC" --root "$R" install "$C/GETRANGE-1.hfx" /hotpatch:enable
	t1=$(now)
	echo "$OUT" | grep -q "^patched pid $SERVER" || fail "redis-server not patched: $OUT"
	note "round $round: $(echo "$OUT" | grep "^patched pid $SERVER"), install took $(( (t1 - t0) / 1000000 )) ms"
	sleep 0.3
	probe_mark; g=$(probe_gap)
	[ "$g" = none ] && fail "a probe got no answer after the live fix"
	echo "$g" >>"$S/live"
	# the same time with nothing done: the clients' own longest gap (what
	# the machine's load alone costs them)
	sleep "$(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.3f", n / 1e9 + 0.3 }')"
	probe_mark; g=$(probe_gap)
	[ "$g" = none ] && fail "a probe got no answer in a quiet period"
	echo "$g" >>"$S/quiet"
	[ "$(cli getrange bench:word 0 -100)" = "" ] || fail "round $round: the live fix did not take"
	[ "$(cli getrange bench:word 0 -2)" = Hell ] || fail "round $round: GETRANGE broken by the fix"
	kill -0 "$SERVER" || fail "redis-server died"
	expect_exit 0 "$SVC" --root "$R" rollback GETRANGE-1
	[ "$(cli getrange bench:word 0 -100)" = H ] || fail "round $round: rollback did not restore the base code"
done
read -r sm _ < <(stats 1e9 <"$S/restart.script")
note "restart (shutdown save .. first PONG, as the script saw it): median $sm s"
bench_row redis-stall "redis, $MEM: longest client stall, live fix (vs restart: save, start, load, answer)" \
	ms - 1e3 "$S/live" "$S/restart"
bench_row redis-quiet "redis, $MEM: longest client stall, live fix (vs as long with nothing done)" \
	ms - 1e3 "$S/live" "$S/quiet"
for p in "${PROBES[@]}"; do stop_pid "$p"; done
cli shutdown nosave >/dev/null 2>&1 || true
wait "$SERVER" 2>/dev/null || true
