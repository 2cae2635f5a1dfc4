#!/usr/bin/env bash
# Boot-time servicing without a VM: the installed systemd unit verifies clean,
# a transaction whose files changed behind its back is refused whole, and the
# last boot's record shows in svc status.  (The real boot: make check-boot.)
source "$(dirname "$0")/lib.sh"
scratch_new boot
fixture_root
cp "$R/usr/lib/libgreet.so.1" "$R/usr/lib/libaux.so.1"
V1=$(sha "$S/build/v1/libgreet.so.1")
pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2" \
	--target "/usr/lib/libaux.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
n=0; ok() { n=$((n + 1)); echo "ok $n - $*"; }

# --- the unit, as make install writes it, passes systemd-analyze verify
if command -v systemd-analyze >/dev/null; then
	make -s -C "$SVC_TOP" install DESTDIR="$S/dest" PREFIX=/usr >/dev/null
	U=/lib/systemd/system/svc-boot.service
	[ -f "$S/dest$U" ] || fail "make install wrote no unit"
	[ -L "$S/dest/lib/systemd/system/sysinit.target.wants/svc-boot.service" ] || fail "unit not enabled"
	grep -q "^ExecStart=/usr/bin/svc boot$" "$S/dest$U" || fail "ExecStart not substituted"
	out=$(systemd-analyze verify --root="$S/dest" "$U" 2>&1) || fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
	ok "svc-boot.service verifies clean"
else
	echo "skip - systemd-analyze not installed"
fi

# --- changed behind its back: a target is no longer the base
start_greeter "$S/out"; expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx"; stop_pid "$GPID"
printf 'x' >>"$R/usr/lib/libaux.so.1"
TAMPERED=$(sha "$R/usr/lib/libaux.so.1")
expect_exit 4 "$SVC" --root "$R" boot
echo "$OUT" | grep -q "QUARANTINED.*libaux.so.1.*changed behind" || fail "boot does not say why: $OUT"
[ "$(sha "$R/usr/lib/libgreet.so.1")" = "$V1" ] || fail "half-applied: libgreet swapped"
[ "$(sha "$R/usr/lib/libaux.so.1")" = "$TAMPERED" ] || fail "tampered file touched"
ls -A "$R/usr/lib" | grep -q '\.new$' && fail "staged files left after quarantine"
js=$("$SVC" --root "$R" status --json)
echo "$js" | grep -q '"state":"quarantined","reason":"[^"]*libaux' || fail "status: no quarantine reason: $js"
echo "$js" | grep -q '"last_boot":"svc boot at [0-9]*: quarantined some' || fail "status: no boot record: $js"
ok "a target changed behind svc's back: refused whole, quarantined, reason in status"

# --- a staged file lost before boot: refused whole
printf '' >/dev/null; cp "$S/build/v1/libgreet.so.1" "$R/usr/lib/libaux.so.1"
pack_fix FIX-2 2 "$S/build/v1" "$S/build/v2" \
	--target "/usr/lib/libaux.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
start_greeter "$S/out"; expect_exit 3 "$SVC" --root "$R" install "$S/FIX-2.hfx"; stop_pid "$GPID"
rm "$R/usr/lib/".libaux.so.1.svc-*.new
expect_exit 4 "$SVC" --root "$R" boot
echo "$OUT" | grep -q "QUARANTINED.*replacement .* is missing" || fail "boot does not say why: $OUT"
[ "$(sha "$R/usr/lib/libgreet.so.1")" = "$V1" ] && [ "$(sha "$R/usr/lib/libaux.so.1")" = "$V1" ] ||
	fail "half-applied after a lost staged file"
ok "a staged file lost before boot: refused whole"

# --- the journal gets priorities; a clean boot says nothing pending
JOURNAL_STREAM=1:1 expect_exit 0 "$SVC" --root "$R" boot
[ "$OUT" = "<6>nothing pending" ] || fail "journal line without priority: $OUT"
"$SVC" --root "$R" status | grep -Eq "^last boot replay, [0-9T:+-]+: ok$" || fail "status text lacks the boot record"
ok "boot lines carry syslog priorities under systemd; status shows the last boot"
echo "it-boot: $n passed, 0 failed"
