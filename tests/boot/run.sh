#!/usr/bin/env bash
# The VM boot test (`make check-boot`): boots a small Debian 12 guest with svc
# installed under qemu and proves boot-time servicing on a real systemd boot.
#   A  a fix installed while its library is in use (exit 3) is swapped in at
#      the next boot by svc-boot.service, before the ordinary service that
#      uses the library starts; a later clean boot skips the unit.
#   B  a power cut (qemu killed) while svc boot replays, at steps chosen with
#      SVC_STALL_AT; the next boot finishes the replay, all or nothing.
# docs/boot-test.md says what it proves and what it does not.
#
# Environment: SVC_BOOT_ACCEL=auto|tcg|kvm (auto: KVM only if a probe boot
# under it reaches the root mount, verdict cached; a stock Debian kernel hangs
# under a paravirtual KVM like this machine's), SVC_BOOT_LANES=N (qemu runs at
# once, default 2 on 2+ cores), SVC_BOOT_KEEP=1 (keep the work directory),
# SVC_BOOT_CACHE=DIR (the cache, default .cache/boot at the top of the tree).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${SVC_BOOT_CACHE:-$TOP/.cache/boot}
SVC="$TOP/build/svc"
FIXSRC="$TOP/tests/fixtures/cold"
ACCEL=${SVC_BOOT_ACCEL:-auto}
LANES=${SVC_BOOT_LANES:-$([ "$(nproc)" -ge 2 ] && echo 2 || echo 1)}
BOOT_TIMEOUT=420          # seconds for one boot under emulation, worst case
T_START=$(date +%s)

say() { echo "check-boot: $*"; }
die() { echo "check-boot: FAIL: $*" >&2; exit 1; }
elapsed() { echo $(($(date +%s) - $1)); }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- host tools (Debian 12: installed when missing, as root) -------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v mke2fs >/dev/null && command -v debugfs >/dev/null || need+=(e2fsprogs)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing ${need[*]}: run as root or apt-get install -y ${need[*]}"
	say "installing ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed"
fi
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap --mode=root, files owned by root in the image)"

make -C "$TOP" --no-print-directory all >/dev/null || die "make all failed"
mkdir -p "$CACHE"
W=$(mktemp -d /tmp/svc-boot-XXXXXX)
# $W/qemu/PID while that qemu runs (removed once reaped, so a PID the
# kernel hands out again is never killed); LANE_PIDS: the lane subshells
mkdir -p "$W/qemu"
LANE_PIDS=()
cleanup() {
	local p f
	for p in "${LANE_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	for f in "$W"/qemu/*; do
		[ -e "$f" ] && kill -9 "$(basename "$f")" 2>/dev/null || true
	done
	if [ "${SVC_BOOT_KEEP:-0}" = 1 ]; then say "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the base root: Debian packages only, cached by its inputs ----------------
# Runs sharing the cache take turns to build or prune it (the lock), then work
# on their own copies in $W, so a later prune cannot pull anything from under them.
exec 9>"$CACHE/lock"
flock -w 1800 9 || die "$CACHE/lock: another run held the cache for 30 min"
BASE_KEY=$(cat "$HERE/base.sh" "$HERE/packages.list" "$HERE/initramfs-hook" | sha256sum | cut -c1-16)
BASE="$CACHE/base-$BASE_KEY"
t=$(date +%s)
if [ ! -f "$BASE/done" ]; then
	say "building the base root (mmdebstrap, cold cache; log: $CACHE/base.log)"
	rm -rf "$BASE"
	bash "$HERE/base.sh" "$BASE" >"$CACHE/base.log" 2>&1 || { tail -20 "$CACHE/base.log" >&2; die "base root build failed"; }
	touch "$BASE/done"
	for d in "$CACHE"/base-*; do [ "$d" = "$BASE" ] || rm -rf "$d"; done
	T_BASE=$(elapsed "$t")
	say "base root built in ${T_BASE}s"
else
	T_BASE=cached
fi

# ---- the svc layer + disk image, cached by svc, the guest files and this script
INST="$W/inst"
make -C "$TOP" --no-print-directory install DESTDIR="$INST" PREFIX=/usr >/dev/null || die "make install failed"
LAYER_KEY=$({
	echo "$BASE_KEY"
	(cd "$INST" && find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -type l -printf '%p -> %l\n' | sort)
	cat "$HERE"/guest/* "$FIXSRC"/*.c "$FIXSRC/build.sh" "$HERE/run.sh"
} | sha256sum | cut -c1-16)
LAYER="$CACHE/layer-$LAYER_KEY"
t=$(date +%s)
if [ ! -f "$LAYER/done" ]; then
	say "building the svc layer and the disk image"
	rm -rf "$LAYER"; mkdir -p "$LAYER/v1" "$LAYER/v2"
	# the fixture library (base, fix) and program, as every test builds them
	source "$FIXSRC/build.sh"
	greet_lib 1 "$LAYER/v1"
	greet_lib 2 "$LAYER/v2"
	greet_prog "$LAYER/greeter" "$LAYER/v1"
	"$SVC" --quiet keygen --out "$LAYER/vendor"
	"$SVC" --quiet pack --key "$LAYER/vendor.key" --out "$LAYER/FIX-1.hfx" --id FIX-1 \
		--series greet --seq 1 \
		--target "/usr/lib/libgreet.so.1=$LAYER/v1/libgreet.so.1:$LAYER/v2/libgreet.so.1"
	R="$W/root"
	cp -a "$BASE/root" "$R"
	make -C "$TOP" --no-print-directory install DESTDIR="$R" PREFIX=/usr >/dev/null
	install -m 0644 "$LAYER/v1/libgreet.so.1" "$R/usr/lib/libgreet.so.1"
	install -m 0755 "$LAYER/greeter" "$R/usr/bin/greeter"
	install -m 0644 "$LAYER/vendor.pub" "$R/etc/svc/trusted/vendor.pub"
	install -d "$R/usr/lib/svctest" "$R/etc/systemd/system/multi-user.target.wants" \
		"$R/usr/lib/systemd/system-generators"
	install -m 0644 "$LAYER/FIX-1.hfx" "$R/usr/lib/svctest/FIX-1.hfx"
	install -m 0755 "$HERE/guest/svctest.sh" "$R/usr/lib/svctest/svctest.sh"
	install -m 0755 "$HERE/guest/svctest-generator" "$R/usr/lib/systemd/system-generators/svctest-generator"
	for u in greeter.service svctest.service; do
		install -m 0644 "$HERE/guest/$u" "$R/etc/systemd/system/$u"
		ln -s "../$u" "$R/etc/systemd/system/multi-user.target.wants/$u"
	done
	# units that only cost seconds under emulation and have no part in the test
	# (gettys on the virtual consoles, the e2scrub snapshot reaper)
	for u in getty-static.service getty@tty1.service e2scrub_reap.service; do
		ln -s /dev/null "$R/etc/systemd/system/$u"
	done
	mke2fs -q -F -t ext4 -L svcroot -d "$R" "$LAYER/image.raw" 1G >/dev/null || die "mke2fs failed"
	rm -rf "$R"
	touch "$LAYER/done"
	for d in "$CACHE"/layer-*; do [ "$d" = "$LAYER" ] || rm -rf "$d"; done
	T_LAYER=$(elapsed "$t")
	say "svc layer and image built in ${T_LAYER}s"
else
	T_LAYER=cached
fi
mkdir -p "$W/layer"
cp -a "$LAYER/v1" "$LAYER/v2" "$LAYER/greeter" "$LAYER/vendor.pub" "$LAYER/FIX-1.hfx" "$W/layer/"
cp --sparse=always "$LAYER/image.raw" "$W/layer/image.raw"
cp "$BASE/vmlinuz" "$BASE/initrd.img" "$W/"
flock -u 9; exec 9>&-
LAYER="$W/layer"
V1=$(sha "$LAYER/v1/libgreet.so.1")
V2=$(sha "$LAYER/v2/libgreet.so.1")

# ---- the replay's durable steps, from a host-side scratch root ---------------
# (the same svc, the same transaction: install while in use, then boot)
steps_of_boot() {
	local s="$W/steps" pid
	mkdir -p "$s/root/usr/lib" "$s/root/usr/bin" "$s/root/etc/svc/trusted"
	cp "$LAYER/v1/libgreet.so.1" "$s/root/usr/lib/"
	cp "$LAYER/greeter" "$s/root/usr/bin/"
	cp "$LAYER/vendor.pub" "$s/root/etc/svc/trusted/"
	LD_LIBRARY_PATH="$s/root/usr/lib" "$s/root/usr/bin/greeter" 100 >/dev/null &
	pid=$!
	local i rc=0
	for i in $(seq 50); do grep -q libgreet "/proc/$pid/maps" 2>/dev/null && break; sleep 0.1; done
	"$SVC" --quiet --root "$s/root" install "$LAYER/FIX-1.hfx" || rc=$?
	kill "$pid"; wait "$pid" 2>/dev/null || true
	[ "$rc" = 3 ] || die "host scratch install exited $rc, not 3 (restart required)"
	SVC_CRASH_LOG="$s/log" "$SVC" --quiet --root "$s/root" boot || die "host scratch boot failed"
	cat "$s/log"
}
STEPS=$(steps_of_boot)
# N1: the swap itself (rename of the staged file onto the library)
# N2: right after it, before the directory fsync that makes it durable
# N3: the record's move to applied/ (first rename of a .txn after the swap)
N1=$(echo "$STEPS" | awk '$2 == "rename" && $3 == "libgreet.so.1" { print $1; exit }')
[ -n "$N1" ] || die "no swap step in the replay's step log: $STEPS"
N2=$((N1 + 1))
N3=$(echo "$STEPS" | awk -v n="$N1" '$1 > n && $2 == "rename" && $3 ~ /\.txn$/ { print $1; exit }')
[ -n "$N3" ] || die "no record move after the swap in the replay's step log: $STEPS"
step_desc() { echo "$STEPS" | awk -v n="$1" '$1 == n { print $2 " " $3; exit }'; }
[ "$(step_desc "$N2" | cut -d' ' -f1)" = fsync-dir ] || die "step $N2 after the swap is not fsync-dir: $STEPS"
say "replay steps (host scratch root): $(echo "$STEPS" | awk '{ printf "%s%s:%s %s", (NR > 1 ? ", " : ""), $1, $2, $3 }')"

# ---- booting ------------------------------------------------------------------
# vm NAME IMAGE "KERNEL-WORDS" [STALL-LINE]: boot IMAGE until qemu exits (the
# guest powers off or reboots: -no-reboot), or, given STALL-LINE, until the
# serial log shows it: then SIGKILL qemu (the power cut).  Sets VM_SECS and
# VM_CUT (1 if cut); the guest's results are unpacked into $W/NAME/.
vm() {
	local name=$1 img=$2 words=$3 stall=${4:-}
	local log="$W/$name.serial" res="$W/$name.res" t0 now pid
	rm -f "$res"; truncate -s 16M "$res"
	t0=$(date +%s%N)
	qemu-system-x86_64 -accel "$ACCEL" -m 512 -smp 1 -nographic -monitor none -no-reboot \
		-nic none -kernel "$W/vmlinuz" -initrd "$W/initrd.img" \
		-append "root=/dev/vda ro console=ttyS0 quiet panic=-1 $words" \
		-drive "file=$img,format=raw,if=virtio,cache=writeback" \
		-drive "file=$res,format=raw,if=virtio,cache=writeback" \
		-serial "file:$log" </dev/null >"$W/$name.qemu" 2>&1 &
	pid=$!
	: >"$W/qemu/$pid"
	VM_CUT=0
	while kill -0 "$pid" 2>/dev/null; do
		now=$(date +%s%N)
		if [ -n "$stall" ] && grep -aqF "$stall" "$log" 2>/dev/null; then
			kill -9 "$pid"; VM_CUT=1; break
		fi
		if [ $(((now - t0) / 1000000000)) -ge "$BOOT_TIMEOUT" ]; then
			kill -9 "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$W/qemu/$pid"
			echo "---- last lines of $log" >&2; tail -n 30 "$log" >&2
			VM_SECS=timeout
			return 1
		fi
		sleep 0.2
	done
	wait "$pid" 2>/dev/null || true
	rm -f "$W/qemu/$pid"
	VM_SECS=$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')
	mkdir -p "$W/$name"
	[ "$VM_CUT" = 1 ] || tar -C "$W/$name" -xf "$res" 2>/dev/null || true
}

# unit PROPERTY UNIT DIR: a property from the guest's `systemctl show`
unit() {   # (`systemctl show` prints one paragraph per unit, in no fixed key order)
	awk -v id="$2" -v key="$3" 'BEGIN { RS = ""; FS = "\n" }
		{ hit = 0; for (i = 1; i <= NF; i++) if ($i == "Id=" id) hit = 1
		  if (hit) for (i = 1; i <= NF; i++) if (index($i, key "=") == 1) { print substr($i, length(key) + 2); exit } }' \
		"$1/svctest/units.txt"
}
# guest "Startup finished" line, shortened
startup() { sed -n 's/^Startup finished in //p' "$1/svctest/analyze-time.txt" | head -n1; }
# replay time of svc-boot.service in ms, from its unit timestamps
replay_ms() {
	local s e
	s=$(unit "$1" svc-boot.service ExecMainStartTimestampMonotonic)
	e=$(unit "$1" svc-boot.service ExecMainExitTimestampMonotonic)
	[ -n "$s" ] && [ -n "$e" ] && [ "$e" -gt 0 ] && awk -v d=$((e - s)) 'BEGIN { printf "%.0f", d / 1000 }' || echo "?"
}
# first monotonic timestamp (s) of a journal line matching the regex
jtime() { grep -aE "$2" "$1/svctest/journal.txt" | head -n1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }

# KVM only if it really boots: the kernel must mount the root within 30 s
# (under TCG it takes about 5 s).  The verdict is cached per host kernel,
# qemu and guest kernel, so only the first run pays for the probe.
if [ "$ACCEL" = auto ]; then
	ACCEL=tcg
	if [ -c /dev/kvm ] && [ -w /dev/kvm ]; then
		probe="$CACHE/kvm-$( (uname -r; qemu-system-x86_64 --version; echo "$BASE_KEY") | sha256sum | cut -c1-16)"
		if [ ! -f "$probe" ]; then
			say "probing KVM (30 s at most, once)"
			cp --sparse=always "$LAYER/image.raw" "$W/probe.raw"
			qemu-system-x86_64 -accel kvm -m 512 -smp 1 -nographic -monitor none -no-reboot \
				-nic none -kernel "$W/vmlinuz" -initrd "$W/initrd.img" \
				-append "root=/dev/vda ro console=ttyS0 panic=-1" \
				-drive "file=$W/probe.raw,format=raw,if=virtio" \
				-serial "file:$W/probe.serial" </dev/null >/dev/null 2>&1 &
			pid=$!; : >"$W/qemu/$pid"
			verdict=tcg
			for _ in $(seq 150); do
				grep -aq 'EXT4-fs (vda): mounted' "$W/probe.serial" 2>/dev/null && { verdict=kvm; break; }
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.2
			done
			kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
			rm -f "$W/qemu/$pid" "$W/probe.raw"
			echo "$verdict" >"$probe.$$" && mv "$probe.$$" "$probe"
		fi
		ACCEL=$(cat "$probe")
	fi
fi

RES="$W/results"; mkdir -p "$RES"
# result ID STATUS "DESCRIPTION" "BOOTS" "REPLAY" "NOTE"
result() {
	local note; note=$(printf '%s' "$6" | tr '\t\n' '  ')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$note" >"$RES/$1"
	echo "check-boot: $1 $2 - $3 (boots ${4}s, replay ${5} ms)${note:+: $note}"
}
# req MSG: record why a check failed; returns 1 (the caller returns)
FAILMSG=
req() { FAILMSG="$1"; return 1; }

# evidence common to every check boot: the fix applied, the program runs it,
# svc status clean, nothing staged or pending left
check_applied() {   # check_applied DIR
	local d=$1/svctest
	[ -f "$d/lib.sha" ] || { req "no results from the guest (see $1.serial)"; return 1; }
	[ "$(cat "$d/lib.sha")" = "$V2" ] || { req "library is not the fixed version: $(cat "$d/lib.sha")"; return 1; }
	[ "$(cat "$d/greeter-now.out")" = "hello from FIX-1" ] || { req "program prints '$(cat "$d/greeter-now.out")'"; return 1; }
	[ "$(cat "$d/status.rc")" = 0 ] || { req "svc status failed: $(cat "$d/status.err")"; return 1; }
	grep -q '"id":"FIX-1"[^}]*"state":"installed"' "$d/status.json" || { req "status: FIX-1 not installed: $(cat "$d/status.json")"; return 1; }
	grep -q '"converged":true' "$d/status.json" && ! grep -q '"converged":false' "$d/status.json" ||
		{ req "status: not converged: $(cat "$d/status.json")"; return 1; }
	grep -q '"level":"FIX-1"' "$d/status.json" || { req "status: file level is not FIX-1"; return 1; }
	! grep -q '\.new$' "$d/usr-lib.ls" || { req "staged file left: $(grep '\.new$' "$d/usr-lib.ls")"; return 1; }
	! grep -qE '/var/lib/svc/(pending|staging)/.+ f$' "$d/state.ls" ||
		{ req "records left in pending/ or staging/: $(grep -E '(pending|staging)/.+ f$' "$d/state.ls")"; return 1; }
	grep -q "/var/lib/svc/applied/.* f$" "$d/state.ls" || { req "no record in applied/"; return 1; }
	return 0
}

# ---- scenario A ---------------------------------------------------------------
# boot 1: install while greeter.service runs (exit 3), reboot
# boot 2: svc-boot.service swaps before greeter.service starts; evidence
# boot 3: nothing pending, the unit is skipped
PENDING_IMG="$W/pending.raw"
scenario_a_install() {
	cp --sparse=always "$LAYER/image.raw" "$W/a.raw"
	vm a1 "$W/a.raw" "svctest.step=install" || { req "boot 1 (install) timed out"; return 1; }
	A1_SECS=$VM_SECS
	local d="$W/a1/svctest"
	[ -f "$d/install.rc" ] || { req "boot 1: no results from the guest (see serial log)"; return 1; }
	[ "$(cat "$d/install.rc")" = 3 ] || { req "svc install exited $(cat "$d/install.rc"), not 3: $(cat "$d/install.out")"; return 1; }
	grep -q "by pid" "$d/install.out" || { req "install did not name the process using the library: $(cat "$d/install.out")"; return 1; }
	grep -q '"state":"pending"' "$d/status.json" || { req "status after install: not pending: $(cat "$d/status.json")"; return 1; }
	[ "$(cat "$d/lib.sha")" = "$V1" ] || { req "library swapped while in use"; return 1; }
	cp --sparse=always "$W/a.raw" "$PENDING_IMG"
}

a2_checks() {   # the evidence of boot 2; sets A2_NOTE
	local w="$W/a2" d="$W/a2/svctest" t_applied t_started ex st gl
	check_applied "$w" || return 1
	[ "$(unit "$w" svc-boot.service Result)" = success ] ||
		{ req "svc-boot.service: $(grep -A9 Id=svc-boot "$d/units.txt" | tr '\n' ' ')"; return 1; }
	t_applied=$(jtime "$w" 'svc\[[0-9]+\]: .*applied')
	t_started=$(jtime "$w" 'systemd\[1\]: Started greeter\.service')
	[ -n "$t_applied" ] || { req "no 'applied' line from svc in the journal"; return 1; }
	[ -n "$t_started" ] || { req "greeter.service never started"; return 1; }
	awk -v a="$t_applied" -v s="$t_started" 'BEGIN { exit !(a < s) }' ||
		{ req "journal order: applied at $t_applied s, greeter.service started at $t_started s"; return 1; }
	ex=$(unit "$w" svc-boot.service ExecMainExitTimestampMonotonic)
	st=$(unit "$w" greeter.service ExecMainStartTimestampMonotonic)
	[ "${ex:-0}" -gt 0 ] && [ "$ex" -lt "${st:-0}" ] ||
		{ req "svc-boot.service exited at $ex us, greeter.service started at $st us"; return 1; }
	gl=$(grep -aE 'greeter\[[0-9]+\]: hello' "$d/journal.txt" | sed 's/.*: hello/hello/' | sort -u)
	[ "$gl" = "hello from FIX-1" ] || { req "greeter.service printed: $(echo "$gl" | tr '\n' '|')"; return 1; }
	A2_NOTE="journal: svc applied at ${t_applied}s, greeter.service started at ${t_started}s"
}

scenario_a_rest() {
	local d="$W/a2/svctest" b2 b3 rp
	if ! vm a2 "$W/a.raw" "svctest.step=check"; then
		result A1 FAIL "fix pending at boot is applied before services" "$A1_SECS+timeout" "-" "boot 2 timed out"
		return 0
	fi
	b2=$VM_SECS; rp=$(replay_ms "$W/a2")
	FAILMSG=; A2_NOTE=
	if a2_checks; then
		result A1 PASS "fix pending at boot is applied before services" "$A1_SECS+$b2" "$rp" \
			"$A2_NOTE; guest startup: $(startup "$W/a2")"
	else
		result A1 FAIL "fix pending at boot is applied before services" "$A1_SECS+$b2" "$rp" "$FAILMSG"
	fi
	if [ "$(cat "$d/verify.rc" 2>/dev/null)" = 0 ] && ! grep -q . "$d/verify.out"; then
		result A2 PASS "systemd-analyze verify svc-boot.service (in the guest)" "-" "-" "clean"
	else
		result A2 FAIL "systemd-analyze verify svc-boot.service (in the guest)" "-" "-" \
			"rc $(cat "$d/verify.rc" 2>/dev/null): $(cat "$d/verify.out" 2>/dev/null)"
	fi
	if ! vm a3 "$W/a.raw" "svctest.step=check"; then
		result A3 FAIL "clean boot: svc-boot.service skipped" "timeout" "-" "boot 3 timed out"
		return 0
	fi
	b3=$VM_SECS
	FAILMSG=
	if a3_checks; then
		result A3 PASS "clean boot: svc-boot.service skipped" "$b3" "-" \
			"ConditionResult=no; guest startup: $(startup "$W/a3")"
	else
		result A3 FAIL "clean boot: svc-boot.service skipped" "$b3" "-" "$FAILMSG"
	fi
}

a3_checks() {
	local cr
	[ -f "$W/a3/svctest/units.txt" ] || { req "no results from the guest"; return 1; }
	cr=$(unit "$W/a3" svc-boot.service ConditionResult)
	[ "$cr" = no ] || { req "svc-boot.service ConditionResult=$cr"; return 1; }
	[ "$(unit "$W/a3" svc-boot.service ExecMainStartTimestampMonotonic)" = 0 ] ||
		{ req "svc-boot.service ran"; return 1; }
	grep -aq 'svc-boot.service .* skipped because of an unmet condition check (ConditionDirectoryNotEmpty=/var/lib/svc/pending)' \
		"$W/a3/svctest/journal.txt" || { req "no 'skipped' line for svc-boot.service in the journal"; return 1; }
	check_applied "$W/a3"
}

# ---- scenario B: power cut during the replay ----------------------------------
# scenario_b ID STEP EXPECT-AT-CUT (base|fixed|either)
scenario_b() {
	local id=$1 n=$2 expect=$3 desc
	desc="power cut before step $n ($(step_desc "$n")), replay finishes"
	local img="$W/$id.raw" line="svc: stalled before step $n "
	cp --sparse=always "$PENDING_IMG" "$img"
	# (svctest.step=check too: should svc-boot.service not stall, the guest
	# powers off once booted and the test fails at once, not at the timeout)
	if ! vm "$id-cut" "$img" "svctest.stall=$n svctest.step=check" "$line"; then
		result "$id" FAIL "$desc" timeout "-" "no stall line in the serial log"; return 0
	fi
	local bc=$VM_SECS
	[ "$VM_CUT" = 1 ] || { result "$id" FAIL "$desc" "$bc" "-" "qemu exited before the stall line"; return 0; }
	grep -aF "$line" "$W/$id-cut.serial" | grep -qF "($(step_desc "$n")" ||
		{ result "$id" FAIL "$desc" "$bc" "-" "stalled at another step: $(grep -aF "$line" "$W/$id-cut.serial")"; return 0; }
	# what the disk held at the cut: e2fsck (journal replay) on a copy, then read
	local insp="$W/$id-insp.raw" at
	cp --sparse=always "$img" "$insp"
	e2fsck -fy "$insp" >"$W/$id-fsck.out" 2>&1 || [ $? -le 1 ] ||
		{ result "$id" FAIL "$desc" "$bc" "-" "e2fsck of the cut disk: $(tail -n3 "$W/$id-fsck.out")"; return 0; }
	debugfs -R "dump /usr/lib/libgreet.so.1 $W/$id-lib" "$insp" >/dev/null 2>&1 || true
	case "$(sha "$W/$id-lib" 2>/dev/null)" in
	"$V1") at=base ;; "$V2") at=fixed ;; *) at=torn ;;
	esac
	rm -f "$insp"
	if [ "$at" = torn ] || { [ "$expect" != either ] && [ "$at" != "$expect" ]; }; then
		result "$id" FAIL "$desc" "$bc" "-" "library at the cut: $at (expected $expect)"; return 0
	fi
	if ! vm "$id-after" "$img" "svctest.step=check"; then
		result "$id" FAIL "$desc" "$bc+timeout" "-" "boot after the cut timed out"; return 0
	fi
	local ba=$VM_SECS rp; rp=$(replay_ms "$W/$id-after")
	FAILMSG=
	if check_applied "$W/$id-after" && [ "$(unit "$W/$id-after" svc-boot.service Result)" = success ]; then
		result "$id" PASS "$desc" "$bc+$ba" "$rp" "library at the cut: $at; after: fixed, status clean"
	else
		result "$id" FAIL "$desc" "$bc+$ba" "$rp" "at the cut: $at; ${FAILMSG:-svc-boot.service did not succeed}"
	fi
	rm -f "$img"
}

# ---- run: boot 1 first (every scenario starts from its pending image), then
# the rest on $LANES qemu processes at once
say "accel $ACCEL, $LANES lane(s); boot 1 of scenario A (install while in use)"
t=$(date +%s)
A1_SECS=-
if ! scenario_a_install; then
	result A1 FAIL "fix pending at boot is applied before services" "$A1_SECS" "-" "$FAILMSG"
	echo "---- serial log of boot 1 (tail)"; tail -n 40 "$W/a1.serial" 2>/dev/null || true
else
	jobs_list=("scenario_a_rest" "scenario_b B1 $N1 base" "scenario_b B2 $N2 either" "scenario_b B3 $N3 fixed")
	if [ "$LANES" -ge 2 ]; then
		# two lanes of about equal length: A's two boots and one power cut,
		# and the two other power cuts
		(scenario_a_rest; scenario_b B3 "$N3" fixed) >"$W/lane1.out" 2>&1 &
		l1=$!; LANE_PIDS+=("$l1")
		(scenario_b B1 "$N1" base; scenario_b B2 "$N2" either) >"$W/lane2.out" 2>&1 &
		l2=$!; LANE_PIDS+=("$l2")
		wait "$l1" || true; wait "$l2" || true
		cat "$W/lane1.out" "$W/lane2.out"
	else
		for j in "${jobs_list[@]}"; do $j || true; done
	fi
fi
T_BOOTS=$(elapsed "$t")

# ---- summary ------------------------------------------------------------------
pass=0; fail=0
echo
printf '%-3s %-4s %-62s %-14s %-9s\n' ID RES SCENARIO "BOOTS (s)" "REPLAY ms"
for f in A1 A2 A3 B1 B2 B3; do
	if [ -f "$RES/$f" ]; then
		IFS=$'\t' read -r id st desc boots rp note <"$RES/$f"
	else
		id=$f st=FAIL desc="(not run)" boots=- rp=- note="an earlier step failed"
	fi
	printf '%-3s %-4s %-62s %-14s %-9s\n' "$id" "$st" "$desc" "$boots" "$rp"
	[ -z "$note" ] || echo "      $note"
	if [ "$st" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo
echo "boot 1 (install, reboot): ${A1_SECS}s; base root: $T_BASE; svc layer + image: $T_LAYER; boots: ${T_BOOTS}s; total: $(elapsed "$T_START")s (host wall time, accel $ACCEL)"
if [ "$fail" -gt 0 ]; then
	say "serial logs and guest results: rerun with SVC_BOOT_KEEP=1 to keep $W"
fi
echo "check-boot: $pass passed, $fail failed"
[ "$fail" = 0 ]
