#!/bin/bash
# Boot the cgroup v2 guest (stock Debian kernel, busybox initramfs, host root over 9p under a tmpfs
# overlay, only cgroup2 mounted) and run SCRIPT inside it; the serial console goes to LOG.
# Prints the console and exits 0 only if the guest printed "V2-GUEST-RESULT: PASS".
# Usage: run.sh SCRIPT LOG
#   V2_ACCEL=kvm to use KVM (default tcg: this host's /dev/kvm only takes patched guest kernels)
#   V2_MEM (MiB, default 2048), V2_CPUS (default 2), V2_TIMEOUT (seconds, default 3000)
set -euo pipefail
script=$(realpath "$1") log=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/.build/v2
kernel=$(ls "$out"/kernel/boot/vmlinuz-* | head -1)
initrd=$out/initramfs.cpio.gz
if [ ! -s "$initrd" ] || [ "$initrd" -ot "$top/scripts/v2-guest/init" ] || [ "$initrd" -ot "$top/scripts/v2-guest/initramfs.sh" ]; then
	bash "$top/scripts/v2-guest/initramfs.sh" "$out/kernel" "$initrd"
fi
accel=${V2_ACCEL:-tcg}
accel_opt=tcg,thread=multi
[ "$accel" = kvm ] && accel_opt=kvm
: >"$log"
set +e
timeout "${V2_TIMEOUT:-3000}" qemu-system-x86_64 \
	-machine q35 -accel "$accel_opt" -cpu max -smp "${V2_CPUS:-2}" -m "${V2_MEM:-2048}" \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 loglevel=4 brisk.run=$script" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-display none -monitor none -serial "file:$log" -no-reboot -nic none
rc=$?
set -e
cat "$log"
if grep -q '^V2-GUEST-RESULT: PASS' "$log"; then
	echo "v2: PASS"
	exit 0
fi
echo "v2: FAIL (qemu exit $rc; result line: $(grep '^V2-GUEST-RESULT' "$log" || echo none))"
exit 1
