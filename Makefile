# rt — top-level build. Out-of-tree outputs in build/.
#
#   make run     build everything, start a private redis-server + rt-server (+ demo)
#   make test    install what is missing, then every suite (unit, integration, ASan, client, e2e)
#   make bench   benchmarks side by side with Nchan (not part of make test)
#
# Each part owns a fragment: server/server.mk, client-wasm/client.mk, tests/tests.mk,
# e2e/e2e.mk, bench/bench.mk, tests/fuzz/fuzz.mk, tests/soak/soak.mk. Fragments add their
# test targets to TEST_TARGETS.

SHELL      := /bin/bash
BUILD      := build
CXX        ?= g++
CXXSTD     := -std=c++17
WARN       := -Wall -Wextra -Wno-unused-parameter
OPT        ?= -O2 -g
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Stamp files: set-up runs once per machine state, skipped when everything is present.
BOOTSTRAP_SERVER := $(BUILD)/.bootstrap-server
BOOTSTRAP_ALL    := $(BUILD)/.bootstrap-all

TEST_TARGETS :=

.PHONY: all run test bench clean bootstrap
all: server client

$(BOOTSTRAP_SERVER):
	@mkdir -p $(BUILD)
	scripts/bootstrap.sh server
	@touch $@

$(BOOTSTRAP_ALL):
	@mkdir -p $(BUILD)
	scripts/bootstrap.sh all
	@touch $@ $(BOOTSTRAP_SERVER)

bootstrap: $(BOOTSTRAP_ALL)

-include server/protocol/protocol.mk
-include server/server.mk
-include tests/tests.mk
-include client-wasm/client.mk
-include e2e/e2e.mk
-include bench/bench.mk
-include tests/fuzz/fuzz.mk
-include tests/soak/soak.mk

# make test: everything, in order, failing on the first failing suite.
test: $(BOOTSTRAP_ALL)
	@set -e; for t in $(TEST_TARGETS); do \
	  echo "=== $$t ==="; $(MAKE) --no-print-directory $$t; done
	@echo "=== all test suites passed: $(TEST_TARGETS) ==="

run: $(BOOTSTRAP_ALL) all
	scripts/run.sh

clean:
	rm -rf $(BUILD)
