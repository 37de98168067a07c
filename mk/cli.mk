# End-to-end tests of the runc-compatible `brisk` CLI; included by the top-level Makefile.
# Every test runs twice: `<name>::runc` against $(RUNC_BIN) (proves the test) and `<name>::brisk`
# against $(BRISK_BIN).
#   test-cli        both variants (needs root; builds brisk first)
#   test-cli-runc   runc variants only
#   test-cli-brisk  brisk variants only

CLI_TESTS := --test cli_process --test cli_namespaces --test cli_lifecycle --test cli_exec \
             --test cli_hooks --test cli_errors --test cli_spec
CLI_TEST_THREADS ?= 2

.PHONY: test-cli test-cli-runc test-cli-brisk

test-cli: build
	$(CARGO) test -p brisk-integration $(CLI_TESTS) -- --test-threads=$(CLI_TEST_THREADS)

test-cli-runc:
	$(CARGO) test -p brisk-integration $(CLI_TESTS) -- --test-threads=$(CLI_TEST_THREADS) runc

test-cli-brisk: build
	$(CARGO) test -p brisk-integration $(CLI_TESTS) -- --test-threads=$(CLI_TEST_THREADS) brisk
