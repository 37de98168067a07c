# runc 1.1.5's own integration suite (bats, from Debian's runc source package) against brisk; included by
# the top-level Makefile; `make test` runs test-runc-bats. Needs root.
#   runc-bats-fetch      source, bats, Go helpers (recvtty, seccompagent), offline busybox image
#   test-runc-bats       the tests that pass with runc here (scripts/runc-bats/runc-pass), against
#                        $(BRISK_BIN); fails on any failure not in scripts/runc-bats/known-failures
#   test-runc-bats-runc  the same tests against $(RUNC_BIN), with no known failures (the baseline)
#   runc-bats-all        every test of the suite against $(BRISK_BIN), report only (to refresh the lists)
RUNC_BATS := scripts/runc-bats

.PHONY: runc-bats-fetch test-runc-bats test-runc-bats-runc runc-bats-all

runc-bats-fetch:
	$(RUNC_BATS)/fetch.sh

test-runc-bats: build runc-bats-fetch
	$(RUNC_BATS)/run.sh -r $(BRISK_BIN) -e $(RUNC_BATS)/runc-pass -k $(RUNC_BATS)/known-failures

test-runc-bats-runc: runc-bats-fetch
	$(RUNC_BATS)/run.sh -r $(RUNC_BIN) -e $(RUNC_BATS)/runc-pass -k ""

runc-bats-all: build runc-bats-fetch
	$(RUNC_BATS)/run.sh -r $(BRISK_BIN)
