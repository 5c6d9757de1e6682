# Integration tests of rt-server against a real redis-server (included by the top-level
# Makefile). Node 20's built-in test runner, no npm dependencies.
#
#   make test-integration        build/rt-server
#   make test-integration-asan   build/asan/rt-server (ASan+UBSan; any sanitizer report or an
#                                unclean exit after SIGTERM fails the run)
#
#   make test-integration-tsan   build/tsan/rt-server (ThreadSanitizer) with --threads 4 (via
#                                RT_SERVER_ARGS) on the files in TSAN_TEST_FILES: the parts
#                                where workers run at the same time (concurrency, fan-out,
#                                mirrors, drops, lost history, token rotation, limits under load),
#                                then the Redis outages
#                                (TSAN_OUTAGE_FILES; only their sanitizer reports count).
#                                Any ThreadSanitizer report fails the run (the harness's
#                                sanitizer patterns). tests/integration/tsan.supp holds the one
#                                suppressed pattern, with its reasoning.
#
# Each test file starts its own redis-server and rt-server on free loopback ports.
# Files run one at a time (--test-concurrency=1): the timing assertions are loose, but the
# machine has two cores. The TAP summary at the end reads "# pass N" / "# fail N".
# RT_KEEP_LOGS=1 keeps the servers' logs (they are kept anyway when a test fails).

NODE_TEST         := node --test --test-concurrency=1 --test-reporter=tap tests/integration/

TSAN_TEST_FILES   ?= concurrency drops history mirror poll publish-token limits
TSAN_OUTAGE_FILES ?= redis-outage

.PHONY: test-integration test-integration-asan test-integration-tsan
test-integration: server | $(BOOTSTRAP_SERVER)
	RT_SERVER_BIN=$(BUILD)/rt-server $(NODE_TEST)

test-integration-asan: server-asan | $(BOOTSTRAP_SERVER)
	RT_SERVER_BIN=$(BUILD)/asan/rt-server \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(NODE_TEST)

TSAN_ENV := RT_SERVER_BIN=$(BUILD)/tsan/rt-server RT_SERVER_ARGS='--threads 4' \
            TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/integration/tsan.supp

test-integration-tsan: server-tsan | $(BOOTSTRAP_SERVER)
	$(TSAN_ENV) node --test --test-concurrency=1 --test-reporter=tap \
	  $(patsubst %,tests/integration/%.test.mjs,$(TSAN_TEST_FILES))
	@# The outage file's own checks assume one worker (/healthz answered by one worker, then
	@# a publish or poll served by another that has not reconnected yet): with 4 workers only
	@# its sanitizer reports count here.
	@out=$$(mktemp); $(TSAN_ENV) node --test --test-reporter=tap $(patsubst %,tests/integration/%.test.mjs,$(TSAN_OUTAGE_FILES)) \
	  >$$out 2>&1 || true; \
	echo "$(TSAN_OUTAGE_FILES) at --threads 4: $$(grep -cE '^(not )?ok ' $$out) tests run for ThreadSanitizer (their own checks assume one worker)"; \
	if grep -qE 'WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|sanitizer report\(s\) in' $$out; then cat $$out; rm -f $$out; \
	  echo 'test-integration-tsan: ThreadSanitizer report in $(TSAN_OUTAGE_FILES)'; exit 1; fi; rm -f $$out

# The production topology (tests/topology/): rt-servers behind Debian's nginx running
# deploy/nginx.conf, Redis replicas and Sentinels, a master killed mid-stream. Needs nginx
# (bootstrap part `topology`).
NODE_TEST_TOPOLOGY := node --test --test-concurrency=1 --test-reporter=tap tests/topology/

.PHONY: test-topology
test-topology: server | $(BOOTSTRAP_SERVER)
	scripts/bootstrap.sh topology
	RT_SERVER_BIN=$(BUILD)/rt-server $(NODE_TEST_TOPOLOGY)

# Redis Cluster (tests/cluster/): rt-server on redis+cluster:// against 3 masters + 3
# replicas started by each file (redis-server --cluster-enabled, redis-cli --cluster
# create): the contract subset, a slot migration during traffic, a master killed.
NODE_TEST_CLUSTER := node --test --test-concurrency=1 --test-reporter=tap tests/cluster/

.PHONY: test-cluster
test-cluster: server | $(BOOTSTRAP_SERVER)
	RT_SERVER_BIN=$(BUILD)/rt-server $(NODE_TEST_CLUSTER)

TEST_TARGETS += test-integration test-integration-asan test-integration-tsan test-topology test-cluster
