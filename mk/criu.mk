# CRIU for checkpoint/restore (brisk checkpoint/restore, and runc's as the reference); included by the
# top-level Makefile. Debian bookworm's criu 3.17 fails `criu check` on recent kernels (vDSO), so CRIU
# 4.2.1 is built from Debian sid's source tarball (scripts/criu/build.sh: its own apt deps, a private
# deb-src apt under .build/criu/) and installed as /usr/local/sbin/criu. Needs root.
#   criu   build and install; does nothing when a criu that passes `criu check` is already installed

.PHONY: criu

criu:
	scripts/criu/build.sh

# integration/tests/cli_checkpoint.rs checkpoints and restores with runc and brisk side by side.
test-cli test-cli-runc test-cli-brisk: criu
