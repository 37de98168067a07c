# cgroup v2 test lane; included by the top-level Makefile (-include mk/*.mk).
#   v2-fetch   qemu-system-x86 (apt) on the host; Debian's stock kernel package unpacked into .build/v2
#   test-v2    boot that kernel under QEMU (KVM when a short probe boot works, else TCG) with a
#              busybox initramfs, the host root read-only over 9p under a tmpfs overlay and only
#              cgroup2 mounted, and run the cgroup tests there (scripts/v2-guest/test-v2.sh).
#              Prints the guest console and "v2: PASS" / "v2: FAIL ..." and fails accordingly.

HAVE_TEST_V2 := 1

.PHONY: v2-fetch test-v2

v2-fetch:
	bash scripts/v2-guest/fetch.sh

test-v2: v2-fetch containerd-fetch
	CARGO=$(CARGO) bash scripts/v2-guest/test-v2.sh

# The same guest with only cgroup v1 hierarchies mounted, every controller including the ones this
# hybrid CI host leaves unmounted (net_cls/net_prio, hugetlb, rdma): the side-by-side cgroup file
# values for those, for runc and brisk.
.PHONY: test-v1-guest
test-v1-guest: v2-fetch
	V2_CGROUP=v1 V2_TESTS=cli_cgroups CARGO=$(CARGO) bash scripts/v2-guest/test-v2.sh

# systemd driver lane: the same guest with systemd as PID 1 (scripts/v2-guest/test-systemd.sh);
# prints "v2: PASS" / "v2: FAIL ..." like test-v2.
.PHONY: test-systemd
test-systemd: v2-fetch
	CARGO=$(CARGO) bash scripts/v2-guest/test-systemd.sh
