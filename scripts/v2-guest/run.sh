#!/bin/bash
# Boot the cgroup v2 guest (stock Debian kernel, busybox initramfs, host root over 9p under a tmpfs
# overlay, only cgroup2 mounted) and run SCRIPT inside it; the serial console goes to LOG.
# Prints the console and exits 0 only if the guest printed "V2-GUEST-RESULT: PASS".
# Usage: run.sh SCRIPT LOG
#   V2_ACCEL=auto|kvm|tcg (default auto: KVM if /dev/kvm boots this stock kernel in a short probe,
#   else TCG software emulation — this project's hosts only take patched kernels under KVM)
#   V2_MEM (MiB, default 2048), V2_CPUS (default 2), V2_TIMEOUT (seconds, default 3000)
#   V2_CGROUP=v1 mounts only cgroup v1 hierarchies instead of cgroup2 (init's brisk.cgroup=v1)
set -euo pipefail
script=$(realpath "$1") log=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/.build/v2
kernel=$(ls "$out"/kernel/boot/vmlinuz-* | head -1)
initrd=$out/initramfs.cpio.gz
if [ ! -s "$initrd" ] || [ "$initrd" -ot "$top/scripts/v2-guest/init" ] || [ "$initrd" -ot "$top/scripts/v2-guest/initramfs.sh" ]; then
	bash "$top/scripts/v2-guest/initramfs.sh" "$out/kernel" "$initrd"
fi

# boot ACCEL SCRIPT LOG TIMEOUT
boot() {
	local accel=$1 cpu=max
	[ "$accel" = kvm ] && cpu=host
	[ "$accel" = tcg ] && accel=tcg,thread=multi
	: >"$3"
	timeout "$4" qemu-system-x86_64 \
		-machine q35 -accel "$accel" -cpu "$cpu" -smp "${V2_CPUS:-2}" -m "${V2_MEM:-2048}" \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 loglevel=4 brisk.run=$2${V2_CGROUP:+ brisk.cgroup=$V2_CGROUP}" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-display none -monitor none -serial "file:$3" -no-reboot -nic none
}

accel=${V2_ACCEL:-auto}
if [ "$accel" = auto ]; then
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		echo 'echo "V2-GUEST-RESULT: PASS"' >"$out/probe.sh"
		if boot kvm "$out/probe.sh" "$out/probe.log" 60 >/dev/null 2>&1 && grep -q '^V2-GUEST-RESULT: PASS' "$out/probe.log"; then
			accel=kvm
		fi
	fi
fi
echo "v2: booting $(basename "$kernel") with $accel"
set +e
boot "$accel" "$script" "$log" "${V2_TIMEOUT:-3000}"
rc=$?
set -e
cat "$log"
if grep -q '^V2-GUEST-RESULT: PASS' "$log"; then
	echo "v2: PASS"
	exit 0
fi
echo "v2: FAIL (qemu exit $rc; result line: $(grep '^V2-GUEST-RESULT' "$log" || echo none))"
exit 1
