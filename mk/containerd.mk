# containerd end-to-end targets; included by the top-level Makefile (-include mk/*.mk).
#   containerd-fetch  containerd 1.7.24 (trixie) and 2.1.9 (sid) into .build/, 1.6.20 from bookworm apt
#   test-ctr          ctr Task API tests: {1.6,1.7,2.1} x {io.containerd.runc.v2, io.containerd.brisk.v2}
#   test-ctr-runc     the same tests on the runc shim only (proves the tests themselves)
#   demo              scripts/demo.sh: hello from brisk through a private containerd

CARGO ?= cargo
# Each test starts its own containerd; keep parallelism modest on 2 cores.
CTR_TEST_THREADS ?= 2
CTR_TESTS := --test ctr_cgroups --test ctr_cleanup --test ctr_config --test ctr_run --test ctr_task --test ctr_pty --test ctr_events --test ctr_restart --test ctr_shim_kill --test ctr_shim_lifecycle --test ctr_security_5736 --test ctr_shim_parity --test ctr_signals

.PHONY: containerd-fetch test-ctr test-ctr-runc demo

containerd-fetch:
	bash scripts/fetch-containerd.sh

test-ctr: containerd-fetch
	$(CARGO) build --release -p containerd-shim-brisk-v2
	SHIM_BIN=$(CURDIR)/target/release $(CARGO) test -p brisk-integration $(CTR_TESTS) -- --test-threads=$(CTR_TEST_THREADS)

test-ctr-runc: containerd-fetch
	$(CARGO) test -p brisk-integration $(CTR_TESTS) -- --test-threads=$(CTR_TEST_THREADS) --skip brisk

demo:
	bash scripts/demo.sh
