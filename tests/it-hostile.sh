#!/usr/bin/env bash
# Hostile input and odd sequences against the svc program, on a scratch root
# with real packages, keys and processes.  Each attack is tried once; it must
# be refused (the documented exit code, one line naming the file and the
# reason, within a time limit: a hang is a failure) and the tree under the
# root must hash the same before and after.  docs/security.md lists each
# attack with what svc does.  Prints:
#   hostile: N attacks, N refused, 0 changed anything
source "$(dirname "$0")/lib.sh"
scratch_new hostile
fixture_root
LIB="$R/usr/lib/libgreet.so.1"
V1=$(sha "$S/build/v1/libgreet.so.1"); V2=$(sha "$S/build/v2/libgreet.so.1")
pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2"
pack_fix FIX-2 2 "$S/build/v2" "$S/build/v3"
"$SVC" --quiet keygen --out "$S/rogue"
# the state directories and the lock file exist from here on (status only
# reads: a first `svc boot` with nothing pending creates them)
"$SVC" --root "$R" boot >/dev/null

TRIED=0; REFUSED=0; CHANGED=0
# attack NAME WANT_EXIT WANT_TEXT CMD...: run CMD (at most 30 s), expect the
# exit code and WANT_TEXT in its output, and an unchanged tree under $R
attack() {
	local name=$1 want=$2 text=$3; shift 3
	local before after got
	TRIED=$((TRIED + 1))
	before=$(tree_state "$R")
	set +e
	OUT=$(timeout 30 "$@" 2>&1)
	got=$?
	set -e
	after=$(tree_state "$R")
	[ "$got" = 124 ] && fail "$name: hung (killed after 30 s)"
	[ "$got" = "$want" ] || fail "$name: expected exit $want, got $got: $OUT"
	[ -z "$text" ] || echo "$OUT" | grep -q -- "$text" || fail "$name: '$text' not said: $OUT"
	if [ "$before" != "$after" ]; then
		CHANGED=$((CHANGED + 1))
		fail "$name: changed the tree: $(diff <(echo "$before") <(echo "$after") | head -5)"
	fi
	REFUSED=$((REFUSED + 1))
	echo "   refused $name: $(echo "$OUT" | tail -n1 | cut -c1-150)"
}

# --- FIFOs where files should be: never a blocking open
mv "$R/etc/svc/trusted/vendor.pub" "$S/vendor.pub.away"
mkfifo "$R/etc/svc/trusted/evil.pub"
attack "fifo-as-trusted-key" 1 "trusted key" "$SVC" --root "$R" install "$S/FIX-1.hfx"
rm "$R/etc/svc/trusted/evil.pub"; mv "$S/vendor.pub.away" "$R/etc/svc/trusted/vendor.pub"
mkfifo "$S/fifo.hfx"
attack "fifo-as-package" 1 "not a regular file" "$SVC" --root "$R" install "$S/fifo.hfx"
mkfifo "$R/usr/lib/libfifo.so.1"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIFO.hfx" --id FIFO-1 --series fifo --seq 1 \
	--target "/usr/lib/libfifo.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"
attack "fifo-as-target" 1 "not a regular file" "$SVC" --root "$R" install "$S/FIFO.hfx"
rm "$R/usr/lib/libfifo.so.1"
mkfifo "$R/var/lib/svc/pending/0000000099.txn"
attack "fifo-as-record (status)" 0 "unreadable record" "$SVC" --root "$R" status
rm "$R/var/lib/svc/pending/0000000099.txn"

# --- signer before anything is unpacked: an untrusted package whose member
# inflates to 128 MiB is refused quickly and small
head -c $((128 << 20)) /dev/zero >"$S/zeros.so"
"$SVC" --quiet pack --key "$S/rogue.key" --out "$S/bomb.hfx" --id BOMB-1 --series greet --seq 99 \
	--target "/usr/lib/libgreet.so.1=$S/build/v1/libgreet.so.1:$S/zeros.so"
rm "$S/zeros.so"
cost=$(python3 - "$SVC" "$R" "$S/bomb.hfx" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run([sys.argv[1], "--root", sys.argv[2], "install", sys.argv[3]],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "%.3f" % (time.monotonic() - t))
PY
)
kib=${cost% *}; secs=${cost#* }
echo "   untrusted $(stat -c %s "$S/bomb.hfx")-byte package inflating to 128 MiB: peak RSS $kib KiB, $secs s"
[ "$kib" -lt 65536 ] || fail "untrusted package unpacked before its signer was checked ($kib KiB)"
attack "untrusted-bomb" 1 "not signed by a trusted key" "$SVC" --root "$R" install "$S/bomb.hfx"

# --- a second spelling of a valid signature (high S)
repack "$S/FIX-1.hfx" "$S/highs.hfx" '
n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
for m in members:
    if m[0] != "manifest.sig": continue
    lines = m[1].decode().split("\n")
    d = bytes.fromhex(lines[3].split(" ")[1])
    lr = d[3]; r = d[4:4 + lr]; ls = d[5 + lr]; s = int.from_bytes(d[6 + lr:6 + lr + ls], "big")
    t = n - s; b = t.to_bytes((t.bit_length() + 8) // 8, "big")
    if len(b) > 1 and b[0] == 0 and b[1] < 0x80: b = b[1:]
    body = bytes([2, len(r)]) + r + bytes([2, len(b)]) + b
    lines[3] = "signature " + (bytes([0x30, len(body)]) + body).hex()
    m[1] = "\n".join(lines).encode()'
attack "high-s-signature" 1 "one accepted spelling" "$SVC" --root "$R" install "$S/highs.hfx"

# --- tar shapes a package may not hold (svc's own tar reader, manifest/tar.c)
tar_shape() {   # tar_shape OUT.hfx SHAPE: FIX-1 with one hostile tar entry or header
	python3 - "$S/FIX-1.hfx" "$1" "$2" <<'PY'
import gzip, io, sys, tarfile
src, dst, shape = sys.argv[1:4]
raw = gzip.decompress(open(src, "rb").read())
if shape in ("checksum", "cut-body"):
    # the first member after manifest.sig: its header's offset
    t = tarfile.open(fileobj=io.BytesIO(raw))
    off = t.getmembers()[2].offset
    if shape == "checksum":
        raw = raw[:off] + bytes([raw[off] ^ 1]) + raw[off + 1:]
    else:
        raw = raw[:off + 512 + 3]
else:
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(raw)) as t, \
         tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as w:
        for m in t.getmembers():
            w.addfile(m, t.extractfile(m))
        i = tarfile.TarInfo("hp/dev")
        if shape == "device":
            i.type, i.devmajor, i.devminor = tarfile.CHRTYPE, 1, 3
        elif shape == "pax-key":
            i.pax_headers = {"comment": "hello"}
        w.addfile(i, io.BytesIO(b""))
    raw = out.getvalue()
open(dst, "wb").write(gzip.compress(raw, mtime=0))
PY
}
tar_shape "$S/tar-checksum.hfx" checksum
attack "tar-bad-header-checksum" 1 "header checksum does not match" "$SVC" --root "$R" install "$S/tar-checksum.hfx"
tar_shape "$S/tar-cut.hfx" cut-body
attack "tar-truncated-member" 1 "truncated data" "$SVC" --root "$R" install "$S/tar-cut.hfx"
tar_shape "$S/tar-device.hfx" device
attack "tar-device-entry" 1 "hp/dev: not a regular file" "$SVC" --root "$R" install "$S/tar-device.hfx"
tar_shape "$S/tar-pax.hfx" pax-key
attack "tar-unsupported-pax-key" 1 "pax key 'comment' not supported" "$SVC" --root "$R" install "$S/tar-pax.hfx"

# --- anti-rollback: the high-water mark survives rollback
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-1.hfx"
expect_exit 0 "$SVC" --root "$R" install "$S/FIX-2.hfx"
expect_exit 0 "$SVC" --root "$R" rollback FIX-2
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
attack "reinstall-below-high-water-mark" 1 "high-water mark" "$SVC" --root "$R" install "$S/FIX-1.hfx"

# --- a failed rollback changes nothing (no ledger lie): FIX-1 rolled back
# while in use (pending), installed again while in use, the user gone
expect_exit 0 "$SVC" --root "$R" install --allow-older "$S/FIX-1.hfx"
start_greeter "$S/out1"; P1=$GPID
expect_exit 3 "$SVC" --root "$R" rollback FIX-1
expect_exit 3 "$SVC" --root "$R" install --allow-older "$S/FIX-1.hfx"
stop_pid "$P1"
attack "rollback-past-an-earlier-pending-rollback" 1 "still pending" "$SVC" --root "$R" rollback FIX-1
expect_exit 0 "$SVC" --root "$R" boot
[ "$(sha "$LIB")" = "$V2" ] || fail "boot did not replay rollback then install in order"
"$SVC" --root "$R" status --json | grep -q '"id":"FIX-1"[^}]*"state":"installed"' ||
	fail "ledger and file disagree after the refused rollback"
expect_exit 0 "$SVC" --root "$R" rollback FIX-1
[ "$(sha "$LIB")" = "$V1" ] || fail "rollback after boot did not restore base"

# --- targets svc must not service
ln "$LIB" "$R/usr/lib/libgreet.hardlink"
attack "hard-linked-target" 1 "hard links" "$SVC" --root "$R" install --allow-older "$S/FIX-1.hfx"
rm "$R/usr/lib/libgreet.hardlink"
mkdir -p "$R/usr/share"; echo "plain text" >"$R/usr/share/greet.txt"; echo "evil text" >"$S/greet.txt"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/TXT.hfx" --id TXT-1 --series txt --seq 1 \
	--target "/usr/share/greet.txt=$R/usr/share/greet.txt:$S/greet.txt"
attack "non-elf-target" 1 "not an ELF file" "$SVC" --root "$R" install "$S/TXT.hfx"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/TRUST.hfx" --id TRUST-1 --series trust --seq 1 \
	--target "/etc/svc/trusted/vendor.pub=$R/etc/svc/trusted/vendor.pub:$S/rogue.pub"
attack "target-in-trust-store" 1 "trust store or state" "$SVC" --root "$R" install "$S/TRUST.hfx"

# --- /proc that is not procfs (an empty tmpfs in a private mount namespace)
if unshare -m true 2>/dev/null; then
	attack "proc-not-procfs (install)" 1 "not procfs" unshare -m sh -c \
		'mount -t tmpfs none /proc && exec "$0" --root "$1" install --allow-older "$2"' \
		"$SVC" "$R" "$S/FIX-1.hfx"
	attack "proc-not-procfs (status)" 1 "not procfs" unshare -m sh -c \
		'mount -t tmpfs none /proc && exec "$0" --root "$1" status' "$SVC" "$R"
else
	echo "   (no mount namespace here: the /proc attacks are not tried)"
fi

# --- control bytes from a process name and a quarantine reason never reach
# the terminal raw
python3 - "$LIB" >"$S/esc.out" 2>&1 <<'PY' &
import ctypes, sys, time
ctypes.CDLL(sys.argv[1])
open("/proc/self/comm", "w").write("\x1b[2Jevil")
print("ready", flush=True)
time.sleep(60)
PY
EP=$!; STARTED_PIDS+=("$EP")
wait_line "$S/esc.out" ready || fail "escape process did not start"
printf 'refused: \033]0;owned\007 by an edited reason\n' >"$R/var/lib/svc/quarantine/0000000098.txn.reason"
printf 'x\n' >"$R/var/lib/svc/quarantine/0000000098.txn"
attack "control-bytes-in-names" 0 '\\x1b\[2Jevil' "$SVC" --root "$R" status
echo "$OUT" | grep -q $'\033' && fail "an escape byte reached the terminal: $OUT"
echo "$OUT" | grep -q $'\007' && fail "a BEL byte reached the terminal: $OUT"
stop_pid "$EP"
rm "$R/var/lib/svc/quarantine/0000000098.txn" "$R/var/lib/svc/quarantine/0000000098.txn.reason"

# --- a hostile svc-hotpatch state mapping (capacity below its header)
python3 - >"$S/hs.out" 2>&1 <<'PY' &
import mmap, os, struct, time
fd = os.memfd_create("svc-hotpatch", 0)
os.ftruncate(fd, 1 << 20)
hdr = b"SVCHPST1" + struct.pack("<IIQQII", 1, 72, 8, 1 << 19, 0, 0) + b"svc-hotpatch".ljust(32, b"\0")
os.pwrite(fd, hdr, 0)
m = mmap.mmap(fd, 1 << 20, mmap.MAP_PRIVATE, mmap.PROT_READ)
print("ready", flush=True)
time.sleep(60)
PY
HP=$!; STARTED_PIDS+=("$HP")
wait_line "$S/hs.out" ready || fail "hostile state process did not start"
attack "hostile-state-mapping" 3 "pid $HP: unknown" "$SVC" hotpatch list --pid "$HP" --pid $$
echo "$OUT" | grep -q "pid $$: no fixes" || fail "one hostile process hid the others: $OUT"
stop_pid "$HP"

# --- one rule for ids: a 64-byte id cannot be packed (records and the
# patcher hold 63)
long=FIX-$(printf 'x%.0s' $(seq 60))
attack "id-longer-than-records-hold" 1 "63 characters" "$SVC" pack --key "$S/vendor.key" \
	--out "$S/long.hfx" --id "$long" --series greet --seq 7 \
	--target "/usr/lib/libgreet.so.1=$S/build/v1/libgreet.so.1:$S/build/v2/libgreet.so.1"

[ "$CHANGED" = 0 ] || fail "$CHANGED attacks changed the tree"
echo "hostile: $TRIED attacks, $REFUSED refused, $CHANGED changed anything"
