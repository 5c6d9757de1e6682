# Benchmarks: rt side by side with Nchan and the two floors (nginx, Redis). Not part of
# `make test`, except for `bench-smoke` (a seconds-long run of the harness with tiny loads).
#
#   make bench-build   the load generator, build/bench/rt-loadgen
#   make bench         the full run (bench/run.sh): prints the table of docs/PERFORMANCE.md
#   make bench-smoke   tiny loads, a couple of seconds each; asserts only that figures came out
#   make bench-replicas  publish latency/rate with and without --publish-min-replicas
#   make bench-cluster   publishes/s and catch-up polls/s on a 3-master Redis Cluster vs 1 Redis
#   make bench-limits  limits under load, bigger than in make test (bench/limits.sh)

BENCH_BUILD   := $(BUILD)/bench
LOADGEN       := $(BENCH_BUILD)/rt-loadgen
LOADGEN_SRCS  := $(wildcard bench/loadgen/*.cpp)
LOADGEN_HDRS  := $(wildcard bench/loadgen/*.hpp)
BOOTSTRAP_BENCH := $(BUILD)/.bootstrap-bench

$(BOOTSTRAP_BENCH):
	@mkdir -p $(BUILD)
	scripts/bootstrap.sh bench
	@touch $@

$(LOADGEN): $(LOADGEN_SRCS) $(LOADGEN_HDRS) | $(BOOTSTRAP_BENCH)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(WARN) -O2 -g $(LOADGEN_SRCS) -o $@ $$(pkg-config --cflags --libs libevent)

.PHONY: bench-build bench bench-smoke bench-replicas bench-cluster bench-limits
bench-build: $(LOADGEN)

bench: $(BOOTSTRAP_BENCH) server bench-build
	bench/run.sh
	bench/cluster.sh

bench-smoke: $(BOOTSTRAP_BENCH) server bench-build
	bench/run.sh --smoke

bench-replicas: $(BOOTSTRAP_BENCH) server bench-build
	bench/replicas.sh

bench-cluster: $(BOOTSTRAP_BENCH) server bench-build
	bench/cluster.sh

bench-limits: server | $(BOOTSTRAP_SERVER)
	RT_SERVER_BIN=$(BUILD)/rt-server bench/limits.sh

TEST_TARGETS += bench-smoke
