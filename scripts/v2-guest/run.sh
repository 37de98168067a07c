#!/bin/bash
# Boot the cgroup v2 guest (stock Debian kernel, busybox initramfs, host root over 9p under a tmpfs
# overlay, only cgroup2 mounted) and run SCRIPT inside it; the serial console goes to LOG.
# Prints the console and exits 0 only if the guest printed "V2-GUEST-RESULT: PASS".
# Usage: run.sh SCRIPT LOG
#   V2_ACCEL=auto|kvm|tcg (default auto: KVM if /dev/kvm boots this stock kernel in a short probe,
#   else TCG software emulation — this project's hosts only take patched kernels under KVM)
#   V2_MEM (MiB, default 2048), V2_CPUS (default 2), V2_TIMEOUT (seconds, default 3000)
#   V2_CGROUP=v1 mounts only cgroup v1 hierarchies instead of cgroup2 (init's brisk.cgroup=v1)
#   V2_INIT=systemd: systemd is PID 1 in the guest (the script runs as a oneshot unit);
#   V2_CMDLINE: extra kernel command line words (e.g. systemd.unified_cgroup_hierarchy=0)
set -euo pipefail
script=$(realpath "$1") log=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/.build/v2
kernel=$(ls "$out"/kernel/boot/vmlinuz-* | head -1)
initrd=$out/initramfs.cpio.gz
if [ ! -s "$initrd" ] || [ "$initrd" -ot "$top/scripts/v2-guest/init" ] || [ "$initrd" -ot "$top/scripts/v2-guest/initramfs.sh" ]; then
	bash "$top/scripts/v2-guest/initramfs.sh" "$out/kernel" "$initrd"
fi

# boot ACCEL SCRIPT LOG TIMEOUT [EXTRA-CMDLINE]
boot() {
	local accel=$1 cpu=max
	[ "$accel" = kvm ] && cpu=host
	[ "$accel" = tcg ] && accel=tcg,thread=multi
	: >"$3"
	timeout "$4" qemu-system-x86_64 \
		-machine q35 -accel "$accel" -cpu "$cpu" -smp "${V2_CPUS:-2}" -m "${V2_MEM:-2048}" \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 softlockup_panic=1 loglevel=4 brisk.run=$2${V2_CGROUP:+ brisk.cgroup=$V2_CGROUP}${5:+ $5}" \
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
extra=${V2_CMDLINE:-}
if [ "${V2_INIT:-}" = systemd ]; then
	# fstab=no: the host's /etc/fstab describes the host's disks, not the guest's.
	# systemd.unit: the boot's only goal is the oneshot running the script (init writes it).
	extra="brisk.init=systemd systemd.unit=brisk-run.service fstab=no systemd.show_status=0 $extra"
fi
boot "$accel" "$script" "$log" "${V2_TIMEOUT:-3000}" "$extra"
rc=$?
# Under TCG the guest kernel has locked up (soft lockup, RCU stall) inside a container runtime's
# process, seen once in a CI run (runc's init, ctr_task on containerd 2.1): an emulation stall, not
# a test verdict. softlockup_panic=1 turns it into a prompt power-off; such a boot is run once more,
# and said so. A second lockup fails the lane.
if ! grep -q '^V2-GUEST-RESULT' "$log" && grep -q 'soft lockup' "$log"; then
	echo "v2: the guest kernel locked up (console: $log.lockup); booting once more"
	mv "$log" "$log.lockup"
	boot "$accel" "$script" "$log" "${V2_TIMEOUT:-3000}" "$extra"
	rc=$?
fi
set -e
cat "$log"
if grep -q '^V2-GUEST-RESULT: PASS' "$log"; then
	echo "v2: PASS"
	exit 0
fi
echo "v2: FAIL (qemu exit $rc; result line: $(grep '^V2-GUEST-RESULT' "$log" || echo none))"
exit 1
