# libFuzzer targets for every parser rt owns, built with clang 14 and ASan+UBSan (included
# by the top-level Makefile). Sources mirror the modules: tests/fuzz/{protocol,server,client}/.
#
#   make fuzz          each target for FUZZ_SECONDS (default 60), one after another, from the
#                      committed seeds (tests/fuzz/corpus/<target>/) plus what earlier runs
#                      found (build/fuzz/corpus/<target>/, never committed)
#   make fuzz-smoke    FUZZ_SMOKE_SECONDS (default 4) per target: part of make test
#   make fuzz-build    only build them (build/fuzz/<target>)
#
# tests/fuzz/corpus/<target>.dict is its libFuzzer dictionary, <target>.args extra flags.
# A crash, a sanitizer report or a failed invariant stops the run and leaves the input in
# build/fuzz/artifacts/; reproduce with build/fuzz/<target> <file>. FUZZ_ARGS adds libFuzzer
# flags (e.g. FUZZ_ARGS=-runs=10000000 for a campaign of a fixed size).

FUZZ_CXX           ?= $(shell command -v clang++-14 || command -v clang++)
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 4
FUZZ_ARGS          ?=
FUZZ_FLAGS         := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                      -fno-omit-frame-pointer -O1 -g
FUZZ_INCLUDES      := -Iserver/protocol $(addprefix -I,$(SERVER_DIRS)) -Iserver -Iclient-wasm/src
FUZZ_OUT           := $(BUILD)/fuzz

FUZZ_TARGETS := fuzz_rt_query fuzz_response fuzz_publish_query fuzz_json_check fuzz_message fuzz_client_core

fuzz_rt_query_SRCS      := tests/fuzz/protocol/fuzz_rt_query.cpp $(PROTO_SRCS)
fuzz_response_SRCS      := tests/fuzz/protocol/fuzz_response.cpp $(PROTO_SRCS)
fuzz_publish_query_SRCS := tests/fuzz/server/fuzz_publish_query.cpp server/src/endpoints/publish_query.cpp $(PROTO_SRCS)
fuzz_json_check_SRCS    := tests/fuzz/server/fuzz_json_check.cpp server/src/support/json_check.cpp $(PROTO_SRCS)
fuzz_message_SRCS       := tests/fuzz/server/fuzz_message.cpp server/src/support/json_check.cpp $(PROTO_SRCS)
fuzz_client_core_SRCS   := tests/fuzz/client/fuzz_client_core.cpp $(CLIENT_CORE_SRCS) $(PROTO_SRCS)

FUZZ_HDRS = tests/fuzz/fuzz_check.hpp $(PROTO_HDRS) $(wildcard server/src/*/*.hpp client-wasm/src/*.hpp)

BOOTSTRAP_FUZZ := $(BUILD)/.bootstrap-fuzz
$(BOOTSTRAP_FUZZ):
	@mkdir -p $(BUILD)
	scripts/bootstrap.sh fuzz
	@touch $@

define fuzz_rule
$(FUZZ_OUT)/$(1): $$($(1)_SRCS) $$(FUZZ_HDRS) | $$(BOOTSTRAP_FUZZ)
	@mkdir -p $$(@D)
	$$(FUZZ_CXX) $$(CXXSTD) $$(WARN) $$(FUZZ_FLAGS) $$(FUZZ_INCLUDES) $$($(1)_SRCS) -o $$@ \
	  $$$$(pkg-config --cflags --libs jansson)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

# Runs every target for $(1) seconds; any crash fails the recipe (set -e).
define fuzz_run
	@set -e; mkdir -p $(FUZZ_OUT)/artifacts; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$t; \
	  dict=tests/fuzz/corpus/$$t.dict; [ -f $$dict ] && d=-dict=$$dict || d=; \
	  [ -f tests/fuzz/corpus/$$t.args ] && d="$$d $$(cat tests/fuzz/corpus/$$t.args)"; \
	  echo "--- $$t ($(1) s)"; \
	  log=$(FUZZ_OUT)/$$t.log; rc=0; \
	  $(FUZZ_OUT)/$$t -max_total_time=$(1) -print_final_stats=1 $$d \
	    -artifact_prefix=$(FUZZ_OUT)/artifacts/$$t- $(FUZZ_ARGS) \
	    $(FUZZ_OUT)/corpus/$$t tests/fuzz/corpus/$$t >$$log 2>&1 || rc=$$?; \
	  grep -E '^(#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|==[0-9]+==|SUMMARY|.*invariant failed|.*deadly signal|.*Test unit written)' $$log || true; \
	  [ $$rc -eq 0 ] || { tail -n 40 $$log; echo "fuzz: $$t FAILED (log $$log, input in $(FUZZ_OUT)/artifacts/)"; exit 1; }; \
	done
endef

.PHONY: fuzz fuzz-smoke fuzz-build
fuzz-build: $(addprefix $(FUZZ_OUT)/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS))

fuzz-smoke: fuzz-build
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS))

TEST_TARGETS += fuzz-smoke
