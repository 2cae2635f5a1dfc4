#!/bin/sh
# Installs the Debian packages svc needs, when they are missing.
#   sh tools/deps.sh [GROUP...]     GROUP: base (default) | fuzz | deb | fresh | bench | fleet | stock | lint
# base is everything `make`, `make check` and `make demo` use, the compiler
# included (a fresh minbase Debian 12 has none).  The other groups are the
# slow or optional targets' own tools.
# As root it runs apt-get itself, with apt's own progress on the terminal
# (a fresh machine's first install takes minutes: silence looks like a hang);
# otherwise it prints the one command a root shell needs (minimal Debian has
# no sudo, so the command is given bare, to be run as root).
set -u
group_pkgs() {
	case "$1" in
	# compiler and libc headers; the libraries svc links; CUnit; the tools the
	# tests call (python3 crafts tar members, binutils/elfutils read ELF files,
	# the x86 decoder, unwinder and seccomp for the live patcher, libdebuginfod
	# and a real debuginfod server for symbols, bsdtar which debuginfod needs,
	# dpkg-dev for the local apt repository of it-dpkg; man-db and groff-base
	# render the generated man pages in the tests;
	# node_exporter and curl read svc metrics back, it-metrics.sh;
	# libarchive-dev: not for svc (manifest/tar.c is its own tar reader and
	# writer, svc links no libarchive) but for the tests, which check svc's
	# tar against libarchive's writer and reader (test-manifest) and against
	# bsdtar and GNU tar (it-tar, it-hostile); svc build
	# applies patches with patch(1), and it-build builds a base with clang to
	# see it refused as another compiler's)
	base) echo "gcc make libc6-dev pkg-config binutils python3 zlib1g-dev libarchive-dev \
libmbedtls-dev libcunit1-dev libunwind-dev libcapstone-dev libseccomp-dev \
libdebuginfod-dev debuginfod libarchive-tools elfutils dpkg-dev man-db groff-base \
prometheus-node-exporter curl patch clang" ;;
	fuzz) echo "clang libclang-rt-14-dev" ;;
	deb) echo "dpkg-dev debhelper lintian fakeroot" ;;
	fresh) echo "mmdebstrap git" ;;
	# make bench: tests/bench-redis.sh builds redis-server from Debian's
	# source package (apt-get source with its own apt configuration, whose
	# deb-src lines are checked with the archive keyring; dpkg-source and
	# patch apply Debian's series; make and gcc build it)
	bench) echo "dpkg-dev patch make gcc debian-archive-keyring" ;;
	# make check-fleet: the Ansible collection through real ansible-playbook
	fleet) echo "ansible-core" ;;
	# check-stock: Debian's build of xz-utils (its build-depends, doxygen for
	# the arch-independent part svc build --deb builds too) and the archive
	# keyring the private apt configuration trusts
	stock) echo "dpkg-dev debhelper autoconf automake libtool gettext autopoint po4a doxygen debian-archive-keyring" ;;
	# make lint (cppcheck, clang-tidy), make valgrind, and the sanitizer
	# builds (make check CC=clang SAN=...: clang's runtime for -fsanitize=integer)
	lint) echo "cppcheck clang-tidy valgrind clang libclang-rt-14-dev" ;;
	*) echo "deps: unknown group '$1' (base, fuzz, deb, fresh, bench, fleet, stock, lint)" >&2; exit 2 ;;
	esac
}
[ $# -eq 0 ] && set -- base
pkgs=""
for g in "$@"; do pkgs="$pkgs $(group_pkgs "$g")" || exit 2; done
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "deps: installing$missing (apt-get output follows)"
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing || {
		echo "deps: 'apt-get install -y$missing' failed; see apt's messages above" >&2; exit 1; }
	echo "deps: installed$missing"
else
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: as root, run: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
