#!/usr/bin/env bash
# make deb: build build/svc_VERSION_amd64.deb with dpkg-buildpackage from
# debian/, in a copy of the working tree (dpkg-buildpackage writes its
# output into the parent directory of the tree it builds: build/deb/ here,
# never the directory above the checkout), then check it with lintian.
# debian/changelog is written here from VERSION (the one place it lives).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
version=$(cat VERSION)
work=build/deb
src="$work/svc-$version"
rm -rf "$work"
mkdir -p "$src"
# the working tree as it is (uncommitted edits included), without build
# products, caches or git metadata
tar --exclude=./build --exclude=./.cache --exclude=./.git -cf - . | tar -C "$src" -xf -
cat >"$src/debian/changelog" <<CL
svc ($version) unstable; urgency=medium

  * svc $version (see docs/ROADMAP.md in the source).

 -- svc maintainers <maintainers@users.noreply.r-seed-b938bcc7.example>  $(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
CL
# Build-Depends in debian/control is the one list of what the package build
# needs: whatever of it is missing here is installed from it (as root), so the
# Makefile's dependency groups and debian/control cannot drift apart
if ! dpkg-checkbuilddeps "$src/debian/control" >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		echo "deb: installing debian/control's missing Build-Depends (apt-get output follows)"
		DEBIAN_FRONTEND=noninteractive apt-get build-dep -y --no-install-recommends "$top/$src" || {
			echo "deb: debian/control: 'apt-get build-dep' failed; see apt's messages above" >&2
			exit 1
		}
	else
		dpkg-checkbuilddeps "$src/debian/control" >&2 || true
		echo "deb: debian/control: Build-Depends missing; as root, run: apt-get build-dep $top/$src" >&2
		exit 1
	fi
fi
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log" >&2
	echo "deb: dpkg-buildpackage failed; full log: $work/build.log" >&2
	exit 1
}
deb="svc_${version}_amd64.deb"
mv "$work/$deb" "build/$deb"
echo "deb: built build/$deb"
# lintian: an error or a warning fails the build (a tag svc has a reason to
# keep goes into debian/svc.lintian-overrides with that reason)
set +e
lintian --tag-display-limit 0 "build/$deb" 2>&1 | grep -v '^running with root privileges' |
	tee "$work/lintian.log"
set -e
if grep -q '^[EW]:' "$work/lintian.log"; then
	echo "deb: lintian reports errors or warnings (above)" >&2
	exit 1
fi
echo "deb: lintian: no error, no warning"
