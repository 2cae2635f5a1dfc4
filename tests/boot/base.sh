#!/usr/bin/env bash
# Build the base root of the boot-test guest from Debian's packages only:
#   bash tests/boot/base.sh OUT
# leaves OUT/root (the root tree), OUT/vmlinuz and OUT/initrd.img (taken from
# the linux-image package installed in it).  Slow (minutes): run.sh caches OUT
# under a hash of this file, packages.list and initramfs-hook.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$1
ROOT="$OUT/root"
rm -rf "$ROOT"
mkdir -p "$OUT"

pkgs=$(grep -v '^#' "$HERE/packages.list" | grep -v '^$' | paste -sd, -)

# Keep the root small: no documentation, and none of the kernel's drivers a
# virtio guest never loads (the initramfs is built after these are left out).
excl=()
# (file patterns only: an excluded directory breaks the packages' deeper ones;
# dpkg's glob lets * match "/" too)
for p in /usr/share/man/*.gz /usr/share/locale/*.mo /usr/share/doc/*.gz \
	/lib/modules/*/kernel/drivers/gpu/*.ko /lib/modules/*/kernel/drivers/net/wireless/*.ko \
	/lib/modules/*/kernel/drivers/net/ethernet/*.ko /lib/modules/*/kernel/drivers/media/*.ko \
	/lib/modules/*/kernel/drivers/infiniband/*.ko /lib/modules/*/kernel/drivers/staging/*.ko \
	/lib/modules/*/kernel/drivers/scsi/*.ko /lib/modules/*/kernel/drivers/iio/*.ko \
	/lib/modules/*/kernel/sound/*.ko /lib/modules/*/kernel/net/wireless/*.ko \
	/lib/modules/*/kernel/net/mac80211/*.ko /lib/modules/*/kernel/drivers/bluetooth/*.ko; do
	excl+=(--dpkgopt="path-exclude=$p")
done

# The essential hook runs before the --include packages are unpacked, so the
# initramfs built by the kernel's postinst already has the virtio modules and
# only the listed ones (MODULES=list: small, quick to unpack under emulation).
mmdebstrap --mode=root --variant=minbase --include="$pkgs" "${excl[@]}" \
	--essential-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" \"\$1/etc/initramfs-tools/hooks\"" \
	--essential-hook="echo MODULES=list >\"\$1/etc/initramfs-tools/conf.d/svc-boot-test\"" \
	--essential-hook="install -m 0755 '$HERE/initramfs-hook' \"\$1/etc/initramfs-tools/hooks/svc-boot-test\"" \
	--customize-hook="echo svc-guest >\"\$1/etc/hostname\"" \
	--customize-hook="echo 5f1c0b2a9d3e4f6789abcdef01234567 >\"\$1/etc/machine-id\"" \
	--customize-hook="printf '/dev/vda / ext4 errors=remount-ro 0 1\n' >\"\$1/etc/fstab\"" \
	bookworm "$ROOT"

cp "$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -n1)" "$OUT/vmlinuz"
cp "$(ls "$ROOT"/boot/initrd.img-* | sort -V | tail -n1)" "$OUT/initrd.img"
echo "base: $(du -sh "$ROOT" | cut -f1) root, kernel $(basename "$(ls "$ROOT"/boot/vmlinuz-*)")"
