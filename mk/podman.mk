# Real podman (Debian's 4.3.1 + conmon) with --runtime runc vs --runtime brisk; included by the
# top-level Makefile; `make test` runs test-podman. Needs root. Each test uses a private podman
# store, config and cgroup parent under a temp dir (integration/tests/podman_cli.rs).
#   podman-deps        Debian packages the tests need
#   test-podman        both variants (`<name>::runc` proves the test, `<name>::brisk`)
#   test-podman-runc   runc variants only
#   test-podman-bats / test-podman-bats-runc   podman 4.3.1's own system tests (Debian's source) with
#                      $(BRISK_BIN) / with $(RUNC_BIN); report only, NOT part of `make test` (minutes
#                      long); see scripts/podman-bats/README.md

PODMAN_DEBS := podman conmon containernetworking-plugins uidmap busybox-static tar
PODMAN_TEST_THREADS ?= 2

.PHONY: podman-deps test-podman test-podman-runc podman-bats-fetch test-podman-bats test-podman-bats-runc

TEST_TARGETS += test-podman

podman-deps:
	@bash scripts/apt-deps.sh $(PODMAN_DEBS)

test-podman: podman-deps
	$(CARGO) build --release -p brisk
	$(CARGO) test -p brisk-integration --test podman_cli -- --test-threads=$(PODMAN_TEST_THREADS)

test-podman-runc: podman-deps
	$(CARGO) test -p brisk-integration --test podman_cli -- --test-threads=$(PODMAN_TEST_THREADS) runc

podman-bats-fetch:
	scripts/podman-bats/fetch.sh

test-podman-bats: podman-bats-fetch
	$(CARGO) build --release -p brisk
	scripts/podman-bats/run.sh -r $(BRISK_BIN)

test-podman-bats-runc: podman-bats-fetch
	scripts/podman-bats/run.sh -r $(RUNC_BIN)
