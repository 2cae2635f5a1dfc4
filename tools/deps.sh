#!/bin/sh
# Installs the Debian packages svc builds against, when they are missing.
# As root it runs apt-get itself; otherwise it prints the one command needed.
# (python3 and binutils: the tests craft tar members and read ELF files with them)
pkgs="zlib1g-dev libarchive-dev libmbedtls-dev libcunit1-dev pkg-config python3 binutils"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "deps: installing$missing"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || {
		echo "deps: apt-get install$missing failed" >&2; exit 1; }
else
	echo "deps: missing packages; run: sudo apt-get install -y$missing" >&2
	exit 1
fi
