#!/usr/bin/env bash
# make check-fresh: the README's promise on a fresh Debian 12, reproduced.
#   1. a minbase bookworm root (mmdebstrap; make, git and ca-certificates
#      only), built once and cached as a tarball under .cache/fresh (or
#      $SVC_FRESH_CACHE), with the host's apt sources (Debian's mirror must
#      be reachable: apt inside installs what deps.sh asks for);
#   2. a copy of it gets the .deb of `make deb` (dpkg -i, apt-get -f
#      install) and runs svc --version, svc status and the demo's cold path
#      against a scratch root inside it (the quick part, first);
#   3. another copy gets a git clone of the current HEAD (committed work
#      only) and runs the README's two commands in a chroot: make demo,
#      make check.
# Each root is bind-mounted on itself (a mount point, private, as / is on a
# real machine); /proc, /sys, /dev and /dev/pts are mounted into it; all are unmounted
# on every exit path, after every process still running inside a root (a
# test's leftover, an agent apt started) is ended by its PID; a root is
# removed only once nothing is mounted in it.  A failure prints one line
# naming the step ("check-fresh: FAILED at STEP"); the step's log is kept
# under build/check-fresh/.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${SVC_FRESH_CACHE:-$top/.cache/fresh}
version=$(cat "$top/VERSION")
deb="$top/build/svc_${version}_amd64.deb"
[ "$(id -u)" = 0 ] || { echo "check-fresh: needs root (mmdebstrap, chroot, mounts)" >&2; exit 1; }
[ -f "$deb" ] || { echo "check-fresh: $deb missing (make deb)" >&2; exit 1; }
mkdir -p "$cache"
logs="$top/build/check-fresh"
rm -rf "$logs"
STEP="start"

# ---- the cached base root ---------------------------------------------------
# the host's Debian sources (one-line or deb822 files; other vendors' sources
# would need keyrings the fresh root does not have)
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -s "$f" ] && grep -qE '^[^#]*(deb\.debian\.org|/debian)' "$f" && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || { echo "check-fresh: no Debian apt source on this host" >&2; exit 1; }
key=$(cat "${sources[@]}" | sha256sum | cut -c1-12)
base="$cache/bookworm-minbase-$key.tar"
t0=$(date +%s)
STEP="the minbase root (mmdebstrap)"
if [ ! -s "$base" ]; then
	echo "check-fresh: building the minbase bookworm root (once; cached as $base)"
	rm -rf "$base.tmp"
	mmdebstrap --variant=minbase --format=tar --include=make,git,ca-certificates bookworm \
		"$base.tmp" "${sources[@]}"
	mv "$base.tmp" "$base"
fi
t_base=$(( $(date +%s) - t0 ))

# ---- chroots: mounted on entry, unmounted on every exit path ----------------
work=$(mktemp -d "$cache/run-XXXXXX")
ROOTS=()
unmount_all() {
	local r m
	for r in "${ROOTS[@]:-}"; do
		[ -n "$r" ] || continue
		for m in dev/pts dev sys proc ""; do
			if mountpoint -q "$r/$m"; then umount "$r/$m" 2>/dev/null || umount -l "$r/$m"; fi
		done
	done
}
# every process whose root directory is inside one of ours: ended by PID
kill_inside() {
	local sig=$1 r p root found=1
	for p in /proc/[0-9]*; do
		root=$(readlink "$p/root" 2>/dev/null) || continue
		for r in "${ROOTS[@]:-}"; do
			[ -n "$r" ] && [ "${root#"$r"}" != "$root" ] || continue
			kill "-$sig" "${p#/proc/}" 2>/dev/null && found=0
		done
	done
	return $found
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ $rc -ne 0 ]; then
		mkdir -p "$logs"
		cp "$work"/*.log "$logs/" 2>/dev/null || true
		echo "check-fresh: FAILED at $STEP (exit $rc; logs: $logs/)" >&2
	fi
	if kill_inside TERM; then sleep 2; kill_inside KILL && sleep 1; fi
	unmount_all
	# never remove a tree something is still mounted in (it would reach /dev)
	if findmnt -rn -o TARGET | grep -q "^$work/"; then
		echo "check-fresh: something is still mounted under $work: left in place" >&2
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

new_root() {   # new_root NAME -> $NEWROOT: an extracted copy of the base, mounted
	NEWROOT="$work/$1"
	mkdir -p "$NEWROOT"
	tar -C "$NEWROOT" -xf "$base"
	cp /etc/resolv.conf "$NEWROOT/etc/resolv.conf"
	ROOTS+=("$NEWROOT")
	# the root a mount point of its own (private), as on a real machine:
	# tests that unshare a mount namespace make / private, which a plain
	# directory refuses (EINVAL)
	mount --bind "$NEWROOT" "$NEWROOT"
	mount --make-private "$NEWROOT"
	mount -t proc proc "$NEWROOT/proc"
	mount -t sysfs sysfs "$NEWROOT/sys"
	mount --bind /dev "$NEWROOT/dev"
	mount --bind /dev/pts "$NEWROOT/dev/pts"
}
in_root() {    # in_root ROOT CMD...: as a fresh login shell of root would
	local r=$1; shift
	env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		chroot "$r" "$@"
}

# ---- 2. the .deb on a fresh root ----------------------------------------------
STEP="the .deb on a fresh root: dpkg -i, apt-get -f install"
new_root deb; R2=$NEWROOT
cp "$deb" "$R2/tmp/"
t0=$(date +%s)
in_root "$R2" dpkg -i "/tmp/$(basename "$deb")" >"$work/deb.log" 2>&1 || true
in_root "$R2" sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -f install -y' \
	>>"$work/deb.log" 2>&1 || { tail -n 30 "$work/deb.log"; echo "check-fresh: apt-get -f install failed" >&2; exit 1; }
in_root "$R2" dpkg-query -W -f='${Status}\n' svc | grep -q "install ok installed" ||
	{ tail -n 30 "$work/deb.log"; echo "check-fresh: svc is not installed" >&2; exit 1; }
STEP="the .deb on a fresh root: svc --version, svc status, the cold path"
out=$(in_root "$R2" svc --version)
[ "$out" = "svc $version" ] || { echo "check-fresh: svc --version says '$out'" >&2; exit 1; }
in_root "$R2" svc status >/dev/null || { echo "check-fresh: svc status failed" >&2; exit 1; }
[ -d "$R2/etc/svc/trusted" ] && [ -d "$R2/var/lib/svc" ] && [ -f "$R2/etc/apt/apt.conf.d/80svc" ] ||
	{ echo "check-fresh: the package lacks /etc/svc/trusted, /var/lib/svc or the apt hook" >&2; exit 1; }
# the demo's cold path, with the installed svc, on a scratch root inside:
# fixtures built here (the fresh root has no compiler), installed there
D="$R2/tmp/demo"; mkdir -p "$D/root/usr/lib" "$D/root/usr/bin" "$D/root/etc/svc/trusted" "$D/v1" "$D/v2"
source "$top/tests/fixtures/cold/build.sh"   # greet_lib, greet_prog: as every test builds them
greet_lib 1 "$D/v1"
greet_lib 2 "$D/v2"
cp "$D/v1/libgreet.so.1" "$D/root/usr/lib/"
greet_prog "$D/root/usr/bin/greeter" "$D/v1"
in_root "$R2" svc --quiet keygen --out /tmp/demo/vendor
cp "$D/vendor.pub" "$D/root/etc/svc/trusted/"
in_root "$R2" svc --quiet pack --key /tmp/demo/vendor.key --out /tmp/demo/FIX-1.hfx --id FIX-1 \
	--series greet --seq 1 --target /usr/lib/libgreet.so.1=/tmp/demo/v1/libgreet.so.1:/tmp/demo/v2/libgreet.so.1
in_root "$R2" svc --root /tmp/demo/root install /tmp/demo/FIX-1.hfx >>"$work/deb.log"
[ "$(in_root "$R2" /tmp/demo/root/usr/bin/greeter)" = "hello from FIX-1" ] ||
	{ echo "check-fresh: the installed svc did not swap the fix in" >&2; exit 1; }
in_root "$R2" svc --root /tmp/demo/root status | grep -q "^FIX-1 *installed" ||
	{ echo "check-fresh: status after install" >&2; exit 1; }
in_root "$R2" svc --root /tmp/demo/root rollback FIX-1 >>"$work/deb.log"
[ "$(in_root "$R2" /tmp/demo/root/usr/bin/greeter)" = "hello from base" ] ||
	{ echo "check-fresh: rollback did not restore the base" >&2; exit 1; }
t_deb=$(( $(date +%s) - t0 ))
echo "check-fresh: the .deb installs on a fresh root (dpkg -i + apt-get -f install); svc --version,"
echo "check-fresh: svc status, and the cold path (install, status, rollback) pass (${t_deb}s)"
# ---- 3. the README's two commands --------------------------------------------
STEP="the README's commands: a fresh root with the tree cloned into it"
new_root fresh; R1=$NEWROOT
head=$(git -C "$top" rev-parse HEAD)
git clone -q --no-checkout "$top" "$R1/root/svc"
git -C "$R1/root/svc" checkout -q "$head"
echo "check-fresh: commit $head cloned into a fresh root; make demo"
STEP="the README's commands: make demo"
t0=$(date +%s)
in_root "$R1" sh -c 'cd /root/svc && make demo' >"$work/demo.log" 2>&1 || {
	tail -n 40 "$work/demo.log"; echo "check-fresh: make demo FAILED on a fresh root" >&2; exit 1; }
t_demo=$(( $(date +%s) - t0 ))
grep -q "Done. The scratch root is removed" "$work/demo.log" || { tail -n 20 "$work/demo.log"; echo "check-fresh: the demo did not finish" >&2; exit 1; }
echo "check-fresh: make demo passed (${t_demo}s, first-time package installs included); make check"
STEP="the README's commands: make check"
t0=$(date +%s)
in_root "$R1" sh -c 'cd /root/svc && make check' >"$work/check.log" 2>&1 || {
	tail -n 40 "$work/check.log"; grep -E '^FAIL|FAILED' "$work/check.log" | head -n 5 >&2
	echo "check-fresh: make check FAILED on a fresh root" >&2; exit 1; }
t_check=$(( $(date +%s) - t0 ))
grep -q "check: all suites passed" "$work/check.log" || { echo "check-fresh: make check did not finish" >&2; exit 1; }
echo "check-fresh: make check passed (${t_check}s)"

echo "check-fresh: passed. base root ${t_base}s (0 when cached), make demo ${t_demo}s, make check ${t_check}s, .deb ${t_deb}s"
