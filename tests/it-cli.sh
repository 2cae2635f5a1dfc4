#!/usr/bin/env bash
# The command line as a new user meets it: help, version, usage errors that
# name the offending word, global options before and after the command,
# numbers validated, read-only commands that change nothing, error messages
# with the next step, man pages and bash completion.
source "$(dirname "$0")/lib.sh"
scratch_new cli
fixture_root
pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2"
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }
has() { echo "$OUT" | grep -qF -- "$1" || fail "expected '$1' in: $OUT"; }

# --- help and version
expect_exit 0 "$SVC" help
for c in install rollback boot status list keygen pack inspect hotpatch help; do has "  $c "; done
expect_exit 0 "$SVC" --help
has "usage: svc"
expect_exit 0 "$SVC" help install
has "usage: svc install PKG"
[ "$(echo "$OUT" | wc -l)" -lt 25 ] || fail "help install is not short: $OUT"
echo "$OUT" | grep -q "keygen" && fail "help install lists other commands: $OUT"
expect_exit 0 "$SVC" install --help
has "usage: svc install PKG"
# install and rollback share --dry-run and --json: one text, in both helps
expect_exit 0 "$SVC" help rollback
has "usage: svc rollback FIXID"
has "--dry-run: verify fully and say what would be done, changing nothing"
has '("changed": false when nothing was, or would be, changed)'
echo "$OUT" | grep -q -- "--allow-older" && fail "help rollback offers --allow-older: $OUT"
expect_exit 2 "$SVC" rollback FIX-1 --allow-older
has "--allow-older"
expect_exit 0 "$SVC" --root "$R" hotpatch -h
has "usage: svc hotpatch apply"
expect_exit 2 "$SVC" help frobnicate
has "unknown command 'frobnicate'"
expect_exit 0 "$SVC" --version
[ "$OUT" = "svc $(cat "$SVC_TOP/VERSION")" ] || fail "--version: $OUT"
ok "help, help CMD, CMD --help (short), --version from VERSION"

# --- usage errors name the offending word and the help to read
expect_exit 2 "$SVC" --root "$R" install --bogus "$S/FIX-1.hfx"
[ "$OUT" = "svc: unknown option '--bogus' (see 'svc help install')" ] || fail "bogus: $OUT"
expect_exit 2 "$SVC" --bogus status
has "unknown option '--bogus' (see 'svc help')"
expect_exit 2 "$SVC" --root
has "option '--root' needs a value"
expect_exit 2 "$SVC" status --root
has "option '--root' needs a value"
expect_exit 2 "$SVC" --root "$R" frobnicate
has "unknown command 'frobnicate'"
expect_exit 2 "$SVC" --root "$R" status extra
has "unexpected argument 'extra'"
expect_exit 2 "$SVC" --root "$R" install
has "install needs a package file"
expect_exit 2 "$SVC" --root "$R" boot --json
has "boot has no --json output"
expect_exit 2 "$SVC"
has "no command"
ok "usage errors: one line naming the word, exit 2"

# --- numbers validated
for w in abc -5 1.5 "" 99999999999; do
	expect_exit 2 "$SVC" --root "$R" --wait "$w" status
	has "--wait takes a whole number"
done
expect_exit 2 "$SVC" --root "$R" status --wait=x
expect_exit 2 "$SVC" pack --key k --out o --id I --series s --seq x --target /a=b:c
has "--seq takes a whole number from 0"
expect_exit 2 "$SVC" pack --key k --out o --id I --series s --seq -1 --target /a=b:c
# pack and build share one parser of the signing options
expect_exit 2 "$SVC" build --deb x --patch p --key k --out o --id I --series s --seq x
has "--seq takes a whole number from 0"
expect_exit 2 "$SVC" build --deb x --patch p --key k --out o --id I --seq 1
has "build needs --patch, --key, --out, --id, --series and --seq"
expect_exit 2 "$SVC" pack --key k --out o --series s --seq 1 --target /a=b:c
has "pack needs --key, --out, --id, --series, --seq and --target"
expect_exit 2 "$SVC" hotpatch list --pid abc
has "--pid takes a whole number"
expect_exit 2 "$SVC" hotpatch apply x --all --workers -2
# one --pid parser: the same word and the same limit for hotpatch and converge
for cmd in "hotpatch list" converge; do
	expect_exit 2 "$SVC" $cmd --pid 0
	has "--pid takes a whole number from 1 to 2147483647, not '0'"
	expect_exit 2 "$SVC" $cmd $(for i in $(seq 4097); do printf -- '--pid %d ' "$i"; done)
	has "at most 4096 --pid"
done
ok "--wait, --seq, --pid, --workers refuse what is not a whole number in range"

# --- global options before and after the command, with = or a separate word
tree_state "$R" >"$S/before"
expect_exit 0 "$SVC" --root="$R" --wait=1 install "$S/FIX-1.hfx"
expect_exit 0 "$SVC" status --root "$R" --json
has '"id":"FIX-1"'
expect_exit 0 "$SVC" --json status --root="$R"
has '"id":"FIX-1"'
expect_exit 0 "$SVC" list --quiet --root="$R" --wait 2
has "FIX-1"
expect_exit 0 "$SVC" rollback FIX-1 --root="$R" /quiet
[ -z "$OUT" ] || fail "/quiet after the command not quiet: $OUT"
expect_exit 0 "$SVC" rollback --root "$R" FIX-1 --wait=3
has "already rolled back"
ok "--root=DIR, --root DIR, --wait=N, --quiet, --json before or after the command"

# --- read-only commands create nothing: an empty root stays empty
E="$S/empty"; mkdir -p "$E"
tree_state "$E" >"$S/empty.before"
expect_exit 0 "$SVC" --root "$E" status
expect_exit 0 "$SVC" --root "$E" list --json
has '"fixes":[]'
expect_exit 0 "$SVC" --root "$E" inspect "$S/FIX-1.hfx"
expect_exit 0 "$SVC" --root "$E" hotpatch list --pid $$
expect_exit 0 "$SVC" --root "$E" __complete ids
expect_exit 0 "$SVC" --root "$E" verify
tree_state "$E" >"$S/empty.after"
cmp -s "$S/empty.before" "$S/empty.after" || fail "a read-only command changed the root: $(diff "$S/empty.before" "$S/empty.after")"
[ -z "$(ls -A "$E")" ] || fail "state created in an empty root: $(find "$E")"
# and on a root with state: byte-identical before and after
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx"
tree_state "$R" >"$S/r.before"
expect_exit 0 "$SVC" --root "$R" status
expect_exit 0 "$SVC" --root "$R" status --json
expect_exit 0 "$SVC" --root "$R" __complete ids
expect_exit 0 "$SVC" --root "$R" verify
tree_state "$R" >"$S/r.after"
cmp -s "$S/r.before" "$S/r.after" || fail "status changed the root: $(diff "$S/r.before" "$S/r.after")"
ok "status, list, verify, inspect, hotpatch list create nothing (empty root stays empty; a ledger stays byte-identical)"

# --- times as ISO 8601 local time (the records keep epoch seconds)
expect_exit 0 "$SVC" --root "$R" boot
ISO='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}'
OUT=$(TZ=UTC0 "$SVC" --root "$R" status)
echo "$OUT" | grep -Eq "^FIX-1 +installed .* $ISO\$" || fail "fix time not ISO 8601: $OUT"
echo "$OUT" | grep -Eq "^last boot replay, $ISO: ok\$" || fail "boot time not ISO 8601: $OUT"
echo "$OUT" | grep -Eq "at [0-9]{9,}" && fail "epoch seconds shown: $OUT"
AT=$(sed -n '1s/^svc boot at \([0-9]*\): .*/\1/p' "$R/var/lib/svc/last-boot")
[ -n "$AT" ] || fail "last-boot record no longer epoch: $(head -n1 "$R/var/lib/svc/last-boot")"
want=$(TZ=Asia/Kolkata date -d "@$AT" +%Y-%m-%dT%H:%M:%S+05:30)
OUT=$(TZ=Asia/Kolkata "$SVC" --root "$R" status)
echo "$OUT" | grep -q "^last boot replay, $want: ok" || fail "not local time ($want): $OUT"
OUT=$(TZ=Asia/Kolkata "$SVC" --root "$R" status --json)
echo "$OUT" | grep -q "\"last_boot_at\":$AT,\"last_boot_at_local\":\"$want\"" || fail "json boot time: $OUT"
echo "$OUT" | grep -Eq '"created":[0-9]+,"created_local":"[^"]+\+05:30"' || fail "json fix time: $OUT"
ok "status shows fix and boot times as ISO 8601 local time; JSON has epoch and local"

# --- errors give the next step
scratch_other=$(mktemp -d "${TMPDIR:-/tmp}/svc-cli-u-XXXXXX"); mkdir -p "$scratch_other/etc/svc/trusted"
"$SVC" --quiet keygen --out "$S/other"
cp "$S/other.pub" "$scratch_other/etc/svc/trusted/"
expect_exit 1 "$SVC" --root "$scratch_other" install "$S/FIX-1.hfx"
has "not signed by a trusted key"
has "; next: copy the vendor's public key (its .pub file, from svc keygen) to $scratch_other/etc/svc/trusted/"
rm -rf "$scratch_other"
expect_exit 2 "$SVC" --root "$R" rollback "$S/FIX-1.hfx"
has "rollback takes a fix id, e.g. FIX-1"
expect_exit 2 "$SVC" --root "$R" rollback FIX-1.hfx
has "rollback takes a fix id, e.g. FIX-1"
expect_exit 1 "$SVC" --root "$S/no-such-dir" status
has "; next: --root takes the directory a system is rooted at"
(flock 9; sleep 3) 9>"$R/var/lib/svc/lock" & LOCKER=$!; STARTED_PIDS+=("$LOCKER")
sleep 0.5
expect_exit 1 "$SVC" --root "$R" rollback FIX-1
has "another svc transaction is running; next: wait for it to finish, or give svc --wait SECONDS"
stop_pid "$LOCKER"
ok "errors name the next step: untrusted key, rollback FILE, missing root, lock held"

# --- the demo prints colour only on a terminal
grep -q $'\\\\033\|\\\\e\[' "$SVC_TOP/tools/demo.sh" && fail "demo.sh prints escapes itself, not through say"
OUT=$(bash -c "source '$SVC_TOP/tests/lib.sh'; say step" | od -c)
echo "$OUT" | grep -q '033' && fail "colour into a pipe: $OUT"
OUT=$(script -qec "bash -c \"source '$SVC_TOP/tests/lib.sh'; say step\"" /dev/null | od -c)
echo "$OUT" | grep -q '033' || fail "no colour on a terminal: $OUT"
OUT=$(NO_COLOR=1 script -qec "bash -c \"source '$SVC_TOP/tests/lib.sh'; say step\"" /dev/null | od -c)
echo "$OUT" | grep -q '033' && fail "colour despite NO_COLOR: $OUT"
ok "demo headings: bold on a terminal, plain in a pipe or with NO_COLOR"

# --- man pages: generated from the docs, render without warnings, and name
# every command of the dispatch table and every option of each
for p in svc.8 svc-package.5 svc-cc.1; do
	[ -s "$SVC_TOP/build/man/$p" ] || fail "build/man/$p not built"
	W=$(MANWIDTH=80 man --warnings -l "$SVC_TOP/build/man/$p" 2>&1 >/dev/null)
	[ -z "$W" ] || fail "man -l $p warns: $W"
done
MAN=$(MANWIDTH=200 man -l "$SVC_TOP/build/man/svc.8" 2>/dev/null)
echo "$MAN" | grep -q "^SVC(8)" || fail "svc.8 does not render: $MAN"
CMDS=$(sed -n '/^COMMANDS/,/^[A-Z]/p' <<<"$MAN")
for c in $("$SVC" __complete commands); do
	# a tag line of the COMMANDS section: "       status [--json], list [--json]"
	echo "$CMDS" | grep -Eq "^ {7}(.*, )?$c( |,|\$)" || fail "command $c not in svc.8's COMMANDS"
	for o in $("$SVC" __complete options "$c"); do
		o=${o%=}
		echo "$MAN" | grep -qe "$o\b" || fail "option $o of $c not in svc.8"
	done
done
echo "$MAN" | grep -q "^COMMANDS" || fail "no COMMANDS section in svc.8"
for code in 0 1 2 3 4; do
	sed -n '/^EXIT CODES/,/^[A-Z]/p' <<<"$MAN" | grep -Eq "^ +$code +" || fail "exit code $code not in svc.8"
done
MAN5=$(MANWIDTH=200 man -l "$SVC_TOP/build/man/svc-package.5" 2>/dev/null)
echo "$MAN5" | grep -q "manifest.sig" || fail "svc-package.5 lacks the format"
MAN1=$(MANWIDTH=200 man -l "$SVC_TOP/build/man/svc-cc.1" 2>/dev/null)
echo "$MAN1" | grep -q "^SVC-CC(1) *User Commands" && echo "$MAN1" | grep -q "SVC_CC_LOG" ||
	fail "svc-cc.1 does not render the wrapper's page: $MAN1"
make -s -C "$SVC_TOP" --no-print-directory install DESTDIR="$S/inst" PREFIX=/usr >/dev/null
for f in usr/share/man/man8/svc.8 usr/share/man/man5/svc-package.5 usr/share/man/man1/svc-cc.1 \
	usr/share/bash-completion/completions/svc usr/bin/svc; do
	[ -s "$S/inst/$f" ] || fail "make install did not install $f"
done
ok "svc(8), svc-package(5) and svc-cc(1) from the docs: no warnings, every command, option and exit code; installed"

# --- bash completion, driven as bash does it, on the scratch roots
source "$SVC_TOP/tools/completion/svc.bash"
comp() {   # comp LINE: the candidates bash would offer at the end of LINE
	COMP_LINE=$1; COMP_POINT=${#COMP_LINE}
	read -ra COMP_WORDS <<<"$COMP_LINE"
	[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
	set +e; _svc; set -e
	OUT=" ${COMPREPLY[*]} "
}
comp "$SVC "
for c in install rollback boot status list keygen pack inspect hotpatch help; do has " $c "; done
echo "$OUT" | grep -q "__complete" && fail "hidden command offered: $OUT"
comp "$SVC ro"; [ "$OUT" = " rollback " ] || fail "ro: $OUT"
comp "$SVC --ro"; [ "$OUT" = " --root= " ] || fail "--ro: $OUT"
comp "$SVC install --h"; [ "$OUT" = " --hotpatch --help " ] || fail "install --h: $OUT"
comp "$SVC install --a"; [ "$OUT" = " --allow-older " ] || fail "install --a: $OUT"
comp "$SVC rollback --a"; [ "$OUT" = "  " ] || fail "rollback offers --allow-older: $OUT"
comp "$SVC rollback --d"; [ "$OUT" = " --dry-run " ] || fail "rollback --d: $OUT"
comp "$SVC boot --j"; [ "$OUT" = "  " ] || fail "boot offers --json: $OUT"
comp "$SVC status --j"; [ "$OUT" = " --json " ] || fail "status --j: $OUT"
comp "$SVC pack --"; has " --key "; has " --objects "; has " --include-coldpatch "
comp "$SVC install /hotpatch:e"; [ "$OUT" = " enable " ] || fail "/hotpatch:e: $OUT"
comp "$SVC hotpatch "; [ "$OUT" = " apply revert list " ] || fail "hotpatch: $OUT"
comp "$SVC --root $R rollback "; [ "$OUT" = " FIX-1 " ] || fail "fix ids of $R: $OUT"
comp "$SVC rollback --root=$R F"; [ "$OUT" = " FIX-1 " ] || fail "fix ids, --root= after: $OUT"
comp "$SVC --quiet --root $R --wait 3 hotpatch revert "; [ "$OUT" = " FIX-1 " ] || fail "revert ids: $OUT"
comp "$SVC --root $E rollback "; [ "$OUT" = "  " ] || fail "ids of an empty root: $OUT"
[ -z "$(ls -A "$E")" ] || fail "completion created state in $E"
comp "$SVC --root=$S/em"; [ "$OUT" = " $S/empty " ] || fail "--root=DIR: $OUT"
comp "$SVC help insp"; [ "$OUT" = " inspect " ] || fail "help insp: $OUT"
ok "bash completion: commands, options per command, fix ids of the --root given"
echo "it-cli: $n passed, 0 failed"
