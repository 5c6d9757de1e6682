# Integration tests of rt-server against a real redis-server (included by the top-level
# Makefile). Node 20's built-in test runner, no npm dependencies.
#
#   make test-integration        build/rt-server
#   make test-integration-asan   build/asan/rt-server (ASan+UBSan; any sanitizer report or an
#                                unclean exit after SIGTERM fails the run)
#
# Each test file starts its own redis-server and rt-server on free loopback ports.
# Files run one at a time (--test-concurrency=1): the timing assertions are loose, but the
# machine has two cores. The TAP summary at the end reads "# pass N" / "# fail N".
# RT_KEEP_LOGS=1 keeps the servers' logs (they are kept anyway when a test fails).

NODE_TEST         := node --test --test-concurrency=1 --test-reporter=tap tests/integration/

.PHONY: test-integration test-integration-asan
test-integration: server | $(BOOTSTRAP_SERVER)
	RT_SERVER_BIN=$(BUILD)/rt-server $(NODE_TEST)

test-integration-asan: server-asan | $(BOOTSTRAP_SERVER)
	RT_SERVER_BIN=$(BUILD)/asan/rt-server \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(NODE_TEST)

# The production topology (tests/topology/): rt-servers behind Debian's nginx running
# deploy/nginx.conf, Redis replicas and Sentinels, a master killed mid-stream. Needs nginx
# (bootstrap part `topology`).
NODE_TEST_TOPOLOGY := node --test --test-concurrency=1 --test-reporter=tap tests/topology/

.PHONY: test-topology
test-topology: server | $(BOOTSTRAP_SERVER)
	scripts/bootstrap.sh topology
	RT_SERVER_BIN=$(BUILD)/rt-server $(NODE_TEST_TOPOLOGY)

TEST_TARGETS += test-integration test-integration-asan test-topology
