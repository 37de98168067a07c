# CRI end-to-end targets; included by the top-level Makefile (-include mk/*.mk).
#   cri-deps       Debian packages the CRI tests need: protoc (k8s-cri's build
#                  script), gcc + libc6-dev (static pause binary), CNI plugins
#   test-cri       pods through containerd's CRI plugin: {1.6,1.7,2.1} x {runc, brisk}
#   test-cri-runc  the same tests on the runc handler only (proves the tests)

CARGO ?= cargo
CRI_TEST_THREADS ?= 2
CRI_DEBS := protobuf-compiler gcc libc6-dev containernetworking-plugins iproute2

.PHONY: cri-deps test-cri test-cri-runc

cri-deps:
	@bash scripts/apt-deps.sh $(CRI_DEBS)

test-cri: cri-deps containerd-fetch
	$(CARGO) build --release -p containerd-shim-brisk-v2
	SHIM_BIN=$(CURDIR)/target/release $(CARGO) test -p brisk-integration --features cri --test cri_pods --test cri_options -- --test-threads=$(CRI_TEST_THREADS)

test-cri-runc: cri-deps containerd-fetch
	$(CARGO) test -p brisk-integration --features cri --test cri_pods --test cri_options -- --test-threads=$(CRI_TEST_THREADS) --skip brisk
