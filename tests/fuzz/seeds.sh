#!/usr/bin/env bash
# Seed corpora for the fuzz harnesses, made from real files: the test
# fixtures are built, packed, signed, installed, live-patched, and the
# packages, records, payloads, ELF files and a process's state mapping they
# produce are copied to build/fuzz/seeds/<harness>/.  The key that signed
# the seed packages is left in build/fuzz/trust/ (SVC_FUZZ_TRUST).
source "$(dirname "$0")/../lib.sh"
SEEDS="$SVC_TOP/build/fuzz/seeds"
TRUST="$SVC_TOP/build/fuzz/trust"
rm -rf "$SEEDS" "$TRUST"
mkdir -p "$TRUST"
for h in manifest package package-tar signature record payload elf state diff build coldpatch; do
	mkdir -p "$SEEDS/$h"
done

# parts OUT FILE...: the fz_split shape (tests/fuzz/fuzz.h)
parts() {
	python3 - "$@" <<'PY'
import struct, sys
out, files = sys.argv[1], sys.argv[2:]
data = b""
for i, f in enumerate(files):
    b = open(f, "rb").read()
    data += (struct.pack("<I", len(b)) + b) if i + 1 < len(files) else b
open(out, "wb").write(data)
PY
}

scratch_new fuzzseeds
fixture_root
hot_fixture_root
cp "$S/vendor.pub" "$TRUST/vendor.pub"
pack_fix FIX-1 1 "$S/build/v1" "$S/build/v2"
"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/HOT.hfx" --id HOT-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o" \
	--target "/usr/bin/pieprog=$S/o/pieprog" --objects "$S/o/pie1.o:$S/o/pie2.o"
for p in FIX-1 HOT; do
	cp "$S/$p.hfx" "$SEEDS/package/"
	gzip -dc "$S/$p.hfx" >"$SEEDS/package-tar/$p.tar"
	mkdir -p "$S/x-$p"; tar -xzf "$S/$p.hfx" -C "$S/x-$p"
	cp "$S/x-$p/manifest" "$SEEDS/manifest/$p"
	parts "$SEEDS/signature/$p" "$S/x-$p/manifest" "$S/x-$p/manifest.sig"
done
# the tar layer as GNU tar writes it (gnu and pax: pax headers with times)
# and bsdtar (pax): shapes svc's own writer never produces
members=$(cd "$S/x-FIX-1" && echo manifest manifest.sig $(grep '^member ' manifest | cut -d' ' -f2))
(cd "$S/x-FIX-1" && tar --format=gnu -cf "$SEEDS/package-tar/FIX-1-gnu.tar" $members &&
	tar --format=pax -cf "$SEEDS/package-tar/FIX-1-gnupax.tar" $members &&
	bsdtar --format=pax -cf "$SEEDS/package-tar/FIX-1-bsdpax.tar" $members)
# payload members: hp/0 (libcalc), hp/1 (pieprog), as the manifest lists them
cp "$S/x-HOT/hp/0" "$SEEDS/payload/libcalc.hp"
cp "$S/x-HOT/hp/1" "$SEEDS/payload/pieprog.hp"
HPCALC="$S/x-HOT/hp/0"; HPPIE="$S/x-HOT/hp/1"

# records: a pending install, its applied form, a rollback
start_greeter "$S/out"; expect_exit 3 "$SVC" --root "$R" install "$S/FIX-1.hfx"
cp "$R"/var/lib/svc/pending/*.txn "$SEEDS/record/"
stop_pid "$GPID"; "$SVC" --quiet --root "$R" boot
"$SVC" --quiet --root "$R" rollback FIX-1
for f in "$R"/var/lib/svc/applied/*.txn; do cp "$f" "$SEEDS/record/applied-$(basename "$f")"; done

# ELF files: shared objects, a PIE, objects, a coldpatch with its lineage
cp "$S/build/v1/libgreet.so.1" "$SEEDS/elf/libgreet.so.1"
cp "$R/usr/bin/greeter" "$SEEDS/elf/greeter"
cp "$S/o/libcalc.so.1" "$S/o/pieprog" "$S/o/calc1.o" "$S/o/pie2.o" "$SEEDS/elf/"
"$SVC" --quiet --root "$R" install "$S/HOT.hfx"
cp "$R/usr/lib/libcalc.so.1" "$SEEDS/elf/libcalc.coldpatch"

# the state of a live-patched process: in a memfd mapping, or (a first fix
# placed in a cave) in the tail of a module's last code page
start_bg "$S/a.out" "$R/usr/bin/worker" 2 50 2000; A=$BGPID
"$SVC" --quiet --root "$R" rollback HOT-1 >/dev/null 2>&1 || true
"$SVC" --quiet --root "$R" install "$S/HOT.hfx" /hotpatch:enable >/dev/null 2>&1 || true
python3 - "$A" "$SEEDS/state/worker" <<'PY'
import struct, sys
pid, out = sys.argv[1], sys.argv[2]
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    if len(f) < 6 or f[1][0] != "r":
        continue
    if not (f[5].startswith("/memfd:svc-hotpatch") or f[1][2] == "x"):
        continue
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    with open(f"/proc/{pid}/mem", "rb") as m:
        m.seek(lo)
        data = m.read(hi - lo)
    at = data.find(b"SVCHPST1")
    if at < 0:
        continue
    capacity = struct.unpack_from("<Q", data, at + 16)[0]
    state = data[at:at + capacity]
    # the records end where the zeros of the unused capacity begin
    open(out, "wb").write(state.rstrip(b"\0") + b"\0" * 8)
    break
else:
    sys.exit("no svc state (mapping or cave) in the patched worker")
PY
stop_pid "$A"

# vendor side: object pairs, base + pair, base + payload
parts "$SEEDS/diff/calc" "$S/o/calc1.o" "$S/o/calc2.o"
parts "$SEEDS/diff/pie" "$S/o/pie1.o" "$S/o/pie2.o"
parts "$SEEDS/build/calc" "$S/o/libcalc.so.1" "$S/o/calc1.o" "$S/o/calc2.o"
parts "$SEEDS/build/pie" "$S/o/pieprog" "$S/o/pie1.o" "$S/o/pie2.o"
parts "$SEEDS/coldpatch/calc" "$S/o/libcalc.so.1" "$HPCALC"
parts "$SEEDS/coldpatch/pie" "$S/o/pieprog" "$HPPIE"
for d in "$SEEDS"/*; do
	[ -n "$(ls -A "$d")" ] || fail "no seed for $(basename "$d")"
done
echo "seeds: $(find "$SEEDS" -type f | wc -l) files in $SEEDS"
