# rt-server build fragment (included by the top-level Makefile).
#
#   make server                 build/rt-server            (objects in build/obj/)
#   make server-asan            build/asan/rt-server       (ASan+UBSan, objects in build/asan/obj/)
#   make server-tsan            build/tsan/rt-server       (ThreadSanitizer, objects in build/tsan/obj/)
#   make test-server-unit       CMocka unit tests of the server modules (tests/unit/server/)
#   make test-server-unit-asan  the same tests built with the sanitizers
#
# pkg-config runs lazily (recursive variables, expanded in recipes) so that a fresh machine
# can install pkg-config and the -dev packages via $(BOOTSTRAP_SERVER) first.

SERVER_PKGS      := libevent hiredis jansson
SERVER_CFLAGS     = $(shell pkg-config --cflags $(SERVER_PKGS))
SERVER_LIBS       = $(shell pkg-config --libs $(SERVER_PKGS)) -lpthread
SERVER_TEST_LIBS  = $(shell pkg-config --libs cmocka)

SERVER_MAIN      := server/src/main.cpp
# server/src by role: http/ (evhttp, answers, routes), redis/ (connections, scripts,
# Sentinel; cluster/: Redis Cluster routing and sharded pub/sub), channels/ (hub, channel
# registry, mirrors, polls), endpoints/ (the handlers), support/ (config,
# log, metrics, JSON check); main and the worker at the top.
SERVER_DIRS      := server/src server/src/http server/src/redis server/src/redis/cluster server/src/channels server/src/endpoints server/src/support
SERVER_LIB_SRCS  := $(filter-out $(SERVER_MAIN),$(sort $(foreach d,$(SERVER_DIRS),$(wildcard $(d)/*.cpp)))) $(PROTO_SRCS)
SERVER_TEST_SRCS := $(sort $(wildcard tests/unit/server/test_*.cpp))

SERVER_OBJS      := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(SERVER_LIB_SRCS))
SERVER_ASAN_OBJS := $(patsubst %.cpp,$(BUILD)/asan/obj/%.o,$(SERVER_LIB_SRCS))
SERVER_TSAN_OBJS := $(patsubst %.cpp,$(BUILD)/tsan/obj/%.o,$(SERVER_LIB_SRCS))
TSAN_FLAGS       := -fsanitize=thread -fno-omit-frame-pointer
SERVER_TESTS      := $(patsubst tests/unit/server/%.cpp,$(BUILD)/tests/unit/server/%,$(SERVER_TEST_SRCS))
SERVER_TESTS_ASAN := $(patsubst tests/unit/server/%.cpp,$(BUILD)/asan/tests/unit/server/%,$(SERVER_TEST_SRCS))

SERVER_TEST_OBJS := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(SERVER_TEST_SRCS)) \
                    $(patsubst %.cpp,$(BUILD)/asan/obj/%.o,$(SERVER_TEST_SRCS))
.SECONDARY: $(SERVER_TEST_OBJS)

SERVER_CXXFLAGS   = $(CXXSTD) $(WARN) -MMD -MP $(addprefix -I,$(SERVER_DIRS)) -Iserver -Itests/unit/server $(SERVER_CFLAGS)

.PHONY: server server-asan server-tsan test-server-unit test-server-unit-asan
server: $(BUILD)/rt-server
server-asan: $(BUILD)/asan/rt-server
server-tsan: $(BUILD)/tsan/rt-server

$(BUILD)/obj/%.o: %.cpp | $(BOOTSTRAP_SERVER)
	@mkdir -p $(@D)
	$(CXX) $(SERVER_CXXFLAGS) $(OPT) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.cpp | $(BOOTSTRAP_SERVER)
	@mkdir -p $(@D)
	$(CXX) $(SERVER_CXXFLAGS) -O1 -g $(ASAN_FLAGS) -c $< -o $@

$(BUILD)/tsan/obj/%.o: %.cpp | $(BOOTSTRAP_SERVER)
	@mkdir -p $(@D)
	$(CXX) $(SERVER_CXXFLAGS) -O1 -g $(TSAN_FLAGS) -c $< -o $@

$(BUILD)/rt-server: $(BUILD)/obj/$(SERVER_MAIN:.cpp=.o) $(SERVER_OBJS)
	$(CXX) $(OPT) -o $@ $^ $(SERVER_LIBS)

$(BUILD)/asan/rt-server: $(BUILD)/asan/obj/$(SERVER_MAIN:.cpp=.o) $(SERVER_ASAN_OBJS)
	$(CXX) -O1 -g $(ASAN_FLAGS) -o $@ $^ $(SERVER_LIBS)

$(BUILD)/tsan/rt-server: $(BUILD)/tsan/obj/$(SERVER_MAIN:.cpp=.o) $(SERVER_TSAN_OBJS)
	$(CXX) -O1 -g $(TSAN_FLAGS) -o $@ $^ $(SERVER_LIBS)

$(BUILD)/tests/unit/server/%: $(BUILD)/obj/tests/unit/server/%.o $(SERVER_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(OPT) -o $@ $^ $(SERVER_LIBS) $(SERVER_TEST_LIBS)

$(BUILD)/asan/tests/unit/server/%: $(BUILD)/asan/obj/tests/unit/server/%.o $(SERVER_ASAN_OBJS)
	@mkdir -p $(@D)
	$(CXX) -O1 -g $(ASAN_FLAGS) -o $@ $^ $(SERVER_LIBS) $(SERVER_TEST_LIBS)

# Each test binary runs from the repo root; cmocka prints part of its summary on stderr.
test-server-unit: $(SERVER_TESTS)
	@set -e; for t in $^; do echo "--- $$t"; $$t 2>&1; done

test-server-unit-asan: $(SERVER_TESTS_ASAN)
	@set -e; for t in $^; do echo "--- $$t"; ASAN_OPTIONS=detect_leaks=1 $$t 2>&1; done

TEST_TARGETS += test-server-unit test-server-unit-asan

-include $(wildcard $(BUILD)/obj/server/src/*.d $(BUILD)/asan/obj/server/src/*.d $(BUILD)/tsan/obj/server/src/*.d \
  $(BUILD)/obj/server/src/*/*.d $(BUILD)/asan/obj/server/src/*/*.d $(BUILD)/tsan/obj/server/src/*/*.d \
  $(BUILD)/obj/server/src/*/*/*.d $(BUILD)/asan/obj/server/src/*/*/*.d $(BUILD)/tsan/obj/server/src/*/*/*.d \
  $(BUILD)/obj/server/protocol/*.d $(BUILD)/asan/obj/server/protocol/*.d \
  $(BUILD)/obj/tests/unit/server/*.d $(BUILD)/asan/obj/tests/unit/server/*.d)
