# cgroup v2 test lane; included by the top-level Makefile (-include mk/*.mk).
#   v2-fetch   qemu-system-x86 (apt) on the host; Debian's stock kernel package unpacked into .build/v2
#   test-v2    boot that kernel under QEMU (TCG; V2_ACCEL=kvm where KVM takes stock kernels) with a
#              busybox initramfs, the host root read-only over 9p under a tmpfs overlay and only
#              cgroup2 mounted, and run the cgroup tests there (scripts/v2-guest/test-v2.sh).
#              Prints the guest console and "v2: PASS" / "v2: FAIL ..." and fails accordingly.

HAVE_TEST_V2 := 1

.PHONY: v2-fetch test-v2

v2-fetch:
	bash scripts/v2-guest/fetch.sh

test-v2: v2-fetch
	CARGO=$(CARGO) bash scripts/v2-guest/test-v2.sh
