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
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log" >&2
	echo "deb: dpkg-buildpackage failed; full log: $work/build.log" >&2
	exit 1
}
deb="svc_${version}_amd64.deb"
mv "$work/$deb" "build/$deb"
echo "deb: built build/$deb"
# lintian: errors fail the build, warnings are shown
set +e
lintian --tag-display-limit 0 "build/$deb" | tee "$work/lintian.log"
set -e
if grep -q '^E:' "$work/lintian.log"; then
	echo "deb: lintian reports errors (above)" >&2
	exit 1
fi
echo "deb: lintian: $(grep -c '^W:' "$work/lintian.log" || true) warning(s), no error"
