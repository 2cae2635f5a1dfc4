#!/bin/sh
# make lint: cppcheck and clang-tidy over every C file of the tree; each must
# report nothing.  Run from the top of the tree.
#
# cppcheck: warning, portability and performance checks (style is the
# compiler's and STYLE.md's business).  A finding that is a false positive is
# suppressed in place with `// cppcheck-suppress ID` and a comment saying why.
#
# clang-tidy: the static analyzer (clang-analyzer-*) and bugprone-*, minus:
#  - bugprone-easily-swappable-parameters: (dfd, name) and (buf, len) pairs
#    are the house API shape; flagging every one says nothing;
#  - bugprone-reserved-identifier: _cleanup_free_/_cleanup_close_ are the
#    house cleanup macros (systemd's names), deliberately;
#  - bugprone-narrowing-conversions, -implicit-widening-of-multiplication-
#    result: -Wall -Wextra -Werror already rule on conversions, and the
#    -fsanitize=integer build checks them at run time;
#  - bugprone-branch-clone: parallel branches that do the same thing for
#    different reasons (error paths) are written out on purpose;
#  - clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling:
#    it flags every memcpy/snprintf (Annex K advice), not a bug class;
#  - bugprone-sizeof-expression: `calloc(n, sizeof(*p))` with p an array of
#    pointers is the house idiom and means exactly sizeof(pointer);
#  - clang-analyzer-unix.Malloc: it does not follow __attribute__((cleanup))
#    (the house _cleanup_free_), so every early return after a strdup into a
#    cleanup variable reads as a leak; every finding of it was that.  Leaks
#    are checked at run time instead: `make check SAN=-fsanitize=address`
#    (LeakSanitizer) and `make valgrind`.
set -u
SRCS=$(ls base/*.c elf/*.c manifest/*.c pending/*.c hotpatch/*.c svc/*.c tools/*.c)
FLAGS="-std=c11 -D_GNU_SOURCE -I. -DSVC_VERSION=\"lint\""
rc=0

echo "lint: cppcheck"
cppcheck --quiet --std=c11 --enable=warning,portability,performance --inline-suppr \
	--error-exitcode=1 -D_GNU_SOURCE -DSVC_VERSION='"lint"' -I. $SRCS || rc=1

echo "lint: clang-tidy"
export CHECKS='-*,clang-analyzer-*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-bugprone-narrowing-conversions,-bugprone-implicit-widening-of-multiplication-result,-bugprone-branch-clone,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,-clang-analyzer-unix.Malloc,-bugprone-sizeof-expression'
# one clang-tidy per file, as many at once as there are cores (LINT_JOBS):
# each prints its findings whole, and any finding fails the run
export FLAGS
printf '%s\n' $SRCS | xargs -P "${LINT_JOBS:-$(nproc)}" -n 1 sh -c '
	out=$(clang-tidy --quiet -checks="$CHECKS" --warnings-as-errors="*" "$1" -- $FLAGS 2>&1) ||
		{ echo "$out" | grep -v "warnings generated"; exit 1; }' sh || rc=1
[ $rc = 0 ] && echo "lint: cppcheck and clang-tidy: no warnings"
exit $rc
