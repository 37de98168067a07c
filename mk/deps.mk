# Debian packages the build and the tests need, installed when missing (scripts/apt-deps.sh), so
# `make demo` and `make test` work on a fresh Debian machine with only a Rust toolchain; included
# by the top-level Makefile.
#   build-deps  what `cargo build` links: libseccomp-dev (the runtime links -lseccomp), pkg-config
#   test-deps   build-deps plus what the CLI suites and the runtime's root tests run: runc (the
#               reference), busybox-static (every test rootfs, /bin/busybox), procps (ps for
#               `runc ps`/`brisk ps`), iproute2 (test netns), util-linux (unshare, nsenter, mount),
#               uidmap + passwd (cli_rootless: newuidmap/newgidmap, useradd for its test user)
# The containerd, CRI, runc-bats and guest lanes install theirs in containerd-fetch, cri-deps,
# runc-bats-fetch and v2-fetch.

BUILD_DEBS := libseccomp-dev pkg-config
TEST_DEBS := $(BUILD_DEBS) runc busybox-static procps iproute2 util-linux uidmap passwd

.PHONY: build-deps test-deps

build-deps:
	@bash scripts/apt-deps.sh $(BUILD_DEBS)

test-deps:
	@bash scripts/apt-deps.sh $(TEST_DEBS)

# Prerequisites added to the targets of the Makefile and the other mk/*.mk files.
build: build-deps
test-unit test-cli test-cli-runc test-cli-brisk test-ctr test-ctr-runc bench: test-deps
demo: build-deps
