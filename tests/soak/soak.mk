# Chaos soak (tests/soak/soak.mjs; included by the top-level Makefile): a real redis-server
# and rt-server, >= 50 subscribers (stream and state channels, multi-channel polls, wasm
# clients in Node), steady publishers, faults at random times from a seeded RNG (the seed is
# printed; SOAK_SEED=<n> repeats a schedule). Ends with `N lost, N duplicated, N unexplained
# resets` and pass/fail; exits non-zero on fail.
#
#   make soak          SOAK_SECONDS (default 600); not part of make test
#   make soak-smoke    60 s; part of make test

SOAK_SECONDS ?= 600
SOAK_RUN = RT_SERVER_BIN=$(abspath $(BUILD)/rt-server) RT_CLIENT_DIR=$(abspath $(CLIENT_OUT)) node tests/soak/soak.mjs

.PHONY: soak soak-smoke
soak: server client | $(BOOTSTRAP_SERVER)
	SOAK_SECONDS=$(SOAK_SECONDS) $(SOAK_RUN)

soak-smoke: server client | $(BOOTSTRAP_SERVER)
	SOAK_SECONDS=60 $(SOAK_RUN)

TEST_TARGETS += soak-smoke
