# brisk: top-level entry points. Component targets live in mk/*.mk (included below).
#
#   make build     release build of the whole workspace
#   make test      unit tests + every end-to-end suite (as root)
#   make demo      hello from brisk through a private containerd (mk/containerd.mk)
#   make bench     `brisk run` vs `runc run` on a busybox `true` bundle
#   make install   install brisk and containerd-shim-brisk-v2 under $(DESTDIR)$(PREFIX)/bin
#   make clean     remove build outputs

CARGO  ?= cargo
PREFIX ?= /usr/local
RELEASE_DIR := $(CURDIR)/target/release

# End-to-end tests find the binaries under test through these.
export BRISK_BIN ?= $(RELEASE_DIR)/brisk
export SHIM_BIN  ?= $(RELEASE_DIR)/containerd-shim-brisk-v2
export RUNC_BIN  ?= /usr/sbin/runc

# Suites that `make test` runs after the unit tests; mk/*.mk files append theirs.
TEST_TARGETS := test-cli

.PHONY: all build test test-unit bench install clean

all: build

build:
	$(CARGO) build --release --workspace

-include mk/*.mk

# mk/containerd.mk defines test-ctr; the guest lanes (test-v2, test-v1-guest, test-systemd), when mk/v2.mk defines them, join too.
ifneq ($(wildcard mk/containerd.mk),)
TEST_TARGETS += test-ctr
endif
ifneq ($(wildcard mk/cri.mk),)
TEST_TARGETS += test-cri
endif
ifneq ($(wildcard mk/runc-bats.mk),)
TEST_TARGETS += test-runc-bats
endif
ifneq ($(wildcard mk/runtime-tools.mk),)
TEST_TARGETS += test-runtime-tools
endif
ifneq ($(wildcard mk/docker.mk),)
TEST_TARGETS += test-docker
endif
ifneq ($(HAVE_TEST_V2),)
TEST_TARGETS += test-v2 test-v1-guest test-systemd
endif

test: build test-unit $(sort $(TEST_TARGETS))

test-unit:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --exclude brisk-integration
	$(CARGO) test -p brisk-integration --lib

bench: build containerd-fetch
	$(CARGO) run --release -p brisk-integration --bin cli-bench
	SHIM_BIN=$(RELEASE_DIR) $(CARGO) run --release -p brisk-integration --bin shim-bench

install: build
	install -D -m 0755 $(RELEASE_DIR)/brisk $(DESTDIR)$(PREFIX)/bin/brisk
	install -D -m 0755 $(RELEASE_DIR)/containerd-shim-brisk-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-brisk-v2

clean:
	$(CARGO) clean
	rm -rf .build
