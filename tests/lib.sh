# Shared helpers of the integration scripts and the demo.  Source it.
# Everything happens under a scratch directory; processes started here are
# remembered and ended by PID only.
set -eu
# (no pipefail: `producer | grep -q` would fail whenever grep quits early
# and the producer gets SIGPIPE)
SVC_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SVC="$SVC_TOP/build/svc"
FIX="$SVC_TOP/tests/fixtures/cold"
STARTED_PIDS=()

scratch_new() {   # scratch_new TAG -> sets $S (scratch dir), $R (root)
	S=$(mktemp -d "${TMPDIR:-/tmp}/svc-$1-XXXXXX")
	R="$S/root"
	mkdir -p "$R/usr/lib" "$R/usr/bin" "$R/etc/svc/trusted" "$S/build"
}

cleanup() {
	local p
	for p in "${STARTED_PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	STARTED_PIDS=()
	if [ -n "${S:-}" ] && [ -d "$S" ]; then rm -rf "$S"; fi
}
trap cleanup EXIT

source "$FIX/build.sh"   # greet_lib, greet_prog

# fixture_root: base library and program installed in $R, fixes in $S/build
fixture_root() {
	mkdir -p "$S/build/v1" "$S/build/v2" "$S/build/v3"
	greet_lib 1 "$S/build/v1"
	greet_lib 2 "$S/build/v2"
	greet_lib 3 "$S/build/v3"
	cp "$S/build/v1/libgreet.so.1" "$R/usr/lib/libgreet.so.1"
	greet_prog "$R/usr/bin/greeter" "$S/build/v1"
	"$SVC" --quiet keygen --out "$S/vendor"
	cp "$S/vendor.pub" "$R/etc/svc/trusted/vendor.pub"
}

# two_target_fixture: fixture_root plus usr/lib/libaux.so.1 (a copy of
# libgreet), and $S/FIX-1.hfx changing both in one transaction; $V1 and $V2
# are the SHA-256 of the old and the new file
two_target_fixture() {
	fixture_root
	cp "$R/usr/lib/libgreet.so.1" "$R/usr/lib/libaux.so.1"
	V1=$(sha "$S/build/v1/libgreet.so.1"); V2=$(sha "$S/build/v2/libgreet.so.1")
	pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2" \
		--target "/usr/lib/libaux.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
}

# pair_level FILE_A FILE_B OLD_A OLD_B NEW_A NEW_B: "old", "new", or the
# failures "mixed" (one old, one new) and "torn" (missing or other bytes)
pair_level() {
	local a b
	{ read -r a _; read -r b _; } < <(sha256sum "$1" "$2" 2>/dev/null || true)
	[ -f "$1" ] || { b=$a; a=none; }
	[ -f "$2" ] || b=none
	if [ "$a" = "$3" ] && [ "$b" = "$4" ]; then echo old
	elif [ "$a" = "$5" ] && [ "$b" = "$6" ]; then echo new
	elif { [ "$a" = "$3" ] || [ "$a" = "$5" ]; } && { [ "$b" = "$4" ] || [ "$b" = "$6" ]; }; then echo mixed
	else echo torn; fi
}

# pack_fix ID SEQ BASEDIR NEWDIR [extra svc pack args]
pack_fix() {
	local id=$1 seq=$2 base=$3 new=$4; shift 4
	"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/$id.hfx" --id "$id" \
		--series greet --seq "$seq" \
		--target "/usr/lib/libgreet.so.1=$base/libgreet.so.1:$new/libgreet.so.1" "$@"
}

# start_greeter OUTFILE: a greeter printing every 50 ms; sets $GPID
start_greeter() {
	"$R/usr/bin/greeter" 50 >"$1" 2>&1 &
	GPID=$!
	STARTED_PIDS+=("$GPID")
	local i
	for i in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done
	echo "greeter did not start" >&2; return 1
}

stop_pid() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

fail() { echo "FAIL: $*" >&2; exit 1; }

# say TEXT: a heading (the demo's steps); bold on a terminal only, never with
# NO_COLOR set: a log or a pipe gets plain text
say() {
	if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
		printf '\n\033[1m== %s\033[0m\n' "$*"
	else
		printf '\n== %s\n' "$*"
	fi
}

# expect_exit CODE CMD...: run, assert the exit code, keep stdout+stderr in $OUT
expect_exit() {
	local want=$1; shift
	set +e
	OUT=$("$@" 2>&1)
	local got=$?
	set -e
	[ "$got" = "$want" ] || fail "expected exit $want, got $got: $* :: $OUT"
}

# tree_state DIR: every path with its type, mode and content hash
tree_state() {
	(cd "$1" && find . -printf '%p %y %m\n' | sort && find . -type f -print0 | sort -z |
		xargs -0 -r sha256sum)
}

# repack SRC.hfx DST.hfx PYTHON-SNIPPET: rewrite a package's members with
# python's tarfile; the snippet edits `members` (list of [name, bytes]).
repack() {
	python3 - "$1" "$2" "$3" <<'PY'
import io, sys, tarfile
src, dst, code = sys.argv[1], sys.argv[2], sys.argv[3]
members = []
with tarfile.open(src, "r:gz") as t:
    for m in t.getmembers():
        members.append([m.name, t.extractfile(m).read()])
links = []
exec(code)
with tarfile.open(dst, "w:gz") as t:
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    for name, target in links:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        t.addfile(info)
PY
}

# hot_fixture_root: libcalc (16,14-ready) + worker, pieprog (PIE, fixed
# function inside), libpark (plain entries) + parker; objects of every
# version in $S/o; vendor key trusted in $R.
HOT="$SVC_TOP/tests/fixtures/hot"
HOT_CF="-O2 -ffunction-sections -fdata-sections"
hot_fixture_root() {
	mkdir -p "$S/o"
	local v
	for v in 1 2 3; do
		gcc $HOT_CF -fPIC -fpatchable-function-entry=16,14 -DCALC_VERSION=$v -c "$HOT/libcalc.c" -o "$S/o/calc$v.o"
	done
	for v in 1 2; do
		gcc $HOT_CF -fPIE -fpatchable-function-entry=16,14 -DANSWER_VERSION=$v -c "$HOT/pieprog.c" -o "$S/o/pie$v.o"
		gcc $HOT_CF -fPIC -DPARK_VERSION=$v -c "$HOT/libpark.c" -o "$S/o/park$v.o"
	done
	# a build-id of its own: `--all` (by build-id) can only find this run's processes
	local bid; bid=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	gcc -shared -Wl,-soname,libcalc.so.1 -Wl,--build-id=0x$bid -o "$R/usr/lib/libcalc.so.1" "$S/o/calc1.o"
	gcc -shared -Wl,-soname,libpark.so.1 -o "$R/usr/lib/libpark.so.1" "$S/o/park1.o"
	gcc -pie -o "$R/usr/bin/pieprog" "$S/o/pie1.o"
	cp "$R/usr/lib/libcalc.so.1" "$R/usr/lib/libpark.so.1" "$R/usr/bin/pieprog" "$S/o/"
	gcc -O2 -pthread -o "$R/usr/bin/worker" "$HOT/worker.c" -L"$S/o" -l:libcalc.so.1 \
		-Wl,-rpath,'$ORIGIN/../lib'
	gcc -O2 -pthread -o "$R/usr/bin/parker" "$HOT/parker.c" -L"$S/o" -l:libpark.so.1 \
		-Wl,-rpath,'$ORIGIN/../lib'
	[ -f "$S/vendor.key" ] || "$SVC" --quiet keygen --out "$S/vendor"
	cp "$S/vendor.pub" "$R/etc/svc/trusted/vendor.pub"
}

# start_bg OUTFILE CMD...: start a process owned by the test, wait for its
# first line; sets $BGPID
start_bg() {
	local out=$1; shift
	"$@" >"$out" 2>&1 &
	BGPID=$!
	STARTED_PIDS+=("$BGPID")
	local i
	for i in $(seq 200); do [ -s "$out" ] && return 0; sleep 0.05; done
	echo "$* did not start" >&2; return 1
}

# wait_line FILE PATTERN: the file's last line matches within 5 s
wait_line() {
	local i
	for i in $(seq 100); do tail -n1 "$1" | grep -q "$2" && return 0; sleep 0.05; done
	return 1
}

# dpkg_root_init: an empty dpkg database in $R (for dpkg --root / apt)
dpkg_root_init() {
	mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
	touch "$R/var/lib/dpkg/status"
}

# deb_build PACKAGE VERSION TREE OUT.deb: a binary package of the files
# under TREE (usr/...), built with dpkg-deb
deb_build() {
	mkdir -p "$3/DEBIAN"
	printf 'Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: svc tests <root@localhost>\nDescription: svc test package\n' \
		"$1" "$2" >"$3/DEBIAN/control"
	dpkg-deb --root-owner-group -b "$3" "$4" >/dev/null
}
