# Docker as the client (Debian bookworm's docker.io 20.10: /usr/sbin/dockerd, /usr/bin/docker; never
# the machine's /usr/local/bin/docker): integration/tests/docker_cli.rs, each scenario with
# `--runtime runc` and `--runtime brisk` on a private dockerd (integration/src/docker.rs). Included by the
# top-level Makefile; `make test` runs test-docker. Needs root.
#   docker-deps   Debian's docker.io (its service is not started: the tests start their own dockerd)
#   test-docker   both runtimes
#   test-docker-runc  runc only (proves the tests)
DOCKER_DEBS := docker.io

.PHONY: docker-deps test-docker test-docker-runc

docker-deps:
	@bash scripts/apt-deps.sh $(DOCKER_DEBS)

test-docker: build docker-deps
	$(CARGO) test -p brisk-integration --test docker_cli -- --test-threads=1

test-docker-runc: docker-deps
	$(CARGO) test -p brisk-integration --test docker_cli -- --test-threads=1 runc
