#!/bin/bash
# Build the v2 guest's initramfs: Debian's static busybox, the kernel modules needed to reach the
# host root over virtio-9p and put a tmpfs overlay on it (resolved with their dependencies from the
# same kernel package, in load order), and scripts/v2-guest/init as /init.
# Usage: initramfs.sh KERNEL_TREE OUT.cpio.gz
set -euo pipefail
tree=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
moddir=$(echo "$tree"/lib/modules/*/kernel)
[ -d "$moddir" ] || { echo "initramfs: no modules under $tree/lib/modules" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,mnt,newroot,modules}
cp /bin/busybox "$work/bin/busybox"
ln -s busybox "$work/bin/sh"
cp "$here/init" "$work/init"
chmod 755 "$work/init"

declare -A seen=()
order=()
resolve() {
	local m=$1 f deps d
	[ -n "${seen[$m]:-}" ] && return 0
	seen[$m]=1
	f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
	[ -n "$f" ] || { echo "initramfs: module $m not found in $moddir" >&2; exit 1; }
	# The .modinfo section's "depends=" (modinfo is not needed on the host).
	deps=$(tr '\0' '\n' <"$f" | grep -a '^depends=' | head -1 | cut -d= -f2)
	for d in ${deps//,/ }; do resolve "$d"; done
	case $f in
	*.xz) xz -dc "$f" >"$work/modules/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$work/modules/$m.ko" ;;
	*) cp "$f" "$work/modules/$m.ko" ;;
	esac
	order+=("$m")
}
# loop: gives the guest block devices (I/O throttle tests) and /dev/loop-control (device rule tests).
for m in virtio_pci 9pnet_virtio 9p overlay loop; do resolve "$m"; done
printf '%s\n' "${order[@]}" >"$work/modules/order"

(cd "$work" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out (modules: ${order[*]})"
