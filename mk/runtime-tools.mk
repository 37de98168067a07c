# The OCI runtime-tools validation suite (opencontainers/runtime-tools validation/*.t, the suite youki
# and crun run in CI), built from Debian's source package; included by the top-level Makefile; `make test`
# runs test-runtime-tools. Needs root. See scripts/runtime-tools/README.md.
#   runtime-tools-fetch      Debian golang-*-dev build deps, the source, runtimetest and validation/*.t
#   test-runtime-tools       the assertions runc passes here (scripts/runtime-tools/runc-pass) against
#                            $(BRISK_BIN); fails on any that does not pass and is not in
#                            scripts/runtime-tools/known-failures
#   test-runtime-tools-runc  the same assertions against $(RUNC_BIN), with no known failures (the baseline)
#   runtime-tools-all        every test of the suite against $(BRISK_BIN), report only (to refresh the lists)
RUNTIME_TOOLS := scripts/runtime-tools

.PHONY: runtime-tools-fetch test-runtime-tools test-runtime-tools-runc runtime-tools-all

runtime-tools-fetch:
	$(RUNTIME_TOOLS)/fetch.sh

test-runtime-tools: build runtime-tools-fetch
	$(RUNTIME_TOOLS)/run.sh -r $(BRISK_BIN) -e $(RUNTIME_TOOLS)/runc-pass -k $(RUNTIME_TOOLS)/known-failures

test-runtime-tools-runc: runtime-tools-fetch
	$(RUNTIME_TOOLS)/run.sh -r $(RUNC_BIN) -e $(RUNTIME_TOOLS)/runc-pass -k ""

runtime-tools-all: build runtime-tools-fetch
	$(RUNTIME_TOOLS)/run.sh -r $(BRISK_BIN)
