#!/usr/bin/env bash
# svc's own tar against the two independent tar implementations, through the
# svc program: GNU tar and bsdtar (libarchive) list and extract what `svc
# pack` writes identically, and packages they write (in the shapes a package
# allows) install.  The hostile shapes are in it-hostile.sh, the header-level
# ones in tests/test-manifest.c.  Prints:
#   tar: GNU tar and bsdtar agree on svc packages; svc installs theirs
source "$(dirname "$0")/lib.sh"
scratch_new tar
fixture_root
LIB="$R/usr/lib/libgreet.so.1"
V2=$(sha "$S/build/v2/libgreet.so.1"); V3=$(sha "$S/build/v3/libgreet.so.1")
pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2"
pack_fix FIX-2 2 "$S/build/v2" "$S/build/v3"

for p in FIX-1 FIX-2; do
	gnu=$(tar tzf "$S/$p.hfx"); bsd=$(bsdtar tzf "$S/$p.hfx")
	[ "$gnu" = "$bsd" ] || fail "$p: GNU tar and bsdtar list different entries: $gnu / $bsd"
	[ "$(echo "$gnu" | head -n2 | tr '\n' ' ')" = "manifest manifest.sig " ] ||
		fail "$p: manifest and manifest.sig are not the first two entries: $gnu"
	mkdir "$S/$p.gnu" "$S/$p.bsd"
	tar xzf "$S/$p.hfx" -C "$S/$p.gnu"
	bsdtar xzf "$S/$p.hfx" -C "$S/$p.bsd"
	diff -r "$S/$p.gnu" "$S/$p.bsd" >/dev/null || fail "$p: GNU tar and bsdtar extract different bytes"
	# what they extracted is what the signed manifest lists, byte for byte
	while read -r key name size hash; do
		[ "$key" = member ] || continue
		[ "$(stat -c %s "$S/$p.gnu/$name")" = "$size" ] || fail "$p: $name: size differs"
		[ "$(sha "$S/$p.gnu/$name")" = "$hash" ] || fail "$p: $name: bytes differ"
	done <"$S/$p.gnu/manifest"
done
echo "   GNU tar and bsdtar list and extract svc's packages identically"

# the other way: the same members, in the required order, archived by each tool
order() { echo manifest manifest.sig; grep '^member ' "$1/manifest" | cut -d' ' -f2; }
(cd "$S/FIX-1.gnu" && tar --format=gnu -czf "$S/FIX-1.tar.hfx" $(order .))
(cd "$S/FIX-2.bsd" && bsdtar --format=pax -czf "$S/FIX-2.tar.hfx" $(order .))
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.tar.hfx"
[ "$(sha "$LIB")" = "$V2" ] || fail "FIX-1 repacked by GNU tar did not install"
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-2.tar.hfx"
[ "$(sha "$LIB")" = "$V3" ] || fail "FIX-2 repacked by bsdtar (pax) did not install"
echo "   svc installs packages written by GNU tar (gnu format) and bsdtar (pax)"
echo "tar: GNU tar and bsdtar agree on svc packages; svc installs theirs"
