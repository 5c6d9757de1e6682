# The protocol module shared by rt-server and the client core (native and wasm).
# Defines PROTO_SRCS for the other parts, and its own unit tests.

PROTO_SRCS := server/protocol/protocol.cpp server/protocol/protocol_json.cpp
# The rules without jansson: what the wasm client links (its host parses JSON with JSON.parse).
PROTO_CORE_SRCS := server/protocol/protocol.cpp
PROTO_HDRS := server/protocol/protocol.hpp server/protocol/keys.hpp
PROTO_TEST_SRCS := tests/unit/protocol/test_protocol.cpp

$(BUILD)/unit/test_protocol: $(PROTO_TEST_SRCS) $(PROTO_SRCS) $(PROTO_HDRS) | $(BOOTSTRAP_SERVER)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(WARN) $(OPT) -Iserver/protocol $(PROTO_TEST_SRCS) $(PROTO_SRCS) -o $@ \
	  $$(pkg-config --cflags --libs jansson cmocka)

$(BUILD)/unit-asan/test_protocol: $(PROTO_TEST_SRCS) $(PROTO_SRCS) $(PROTO_HDRS) | $(BOOTSTRAP_SERVER)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(WARN) -O1 -g $(ASAN_FLAGS) -Iserver/protocol $(PROTO_TEST_SRCS) $(PROTO_SRCS) -o $@ \
	  $$(pkg-config --cflags --libs jansson cmocka)

.PHONY: test-protocol-unit test-protocol-unit-asan
test-protocol-unit: $(BUILD)/unit/test_protocol
	$< 2>&1

test-protocol-unit-asan: $(BUILD)/unit-asan/test_protocol
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $< 2>&1

TEST_TARGETS += test-protocol-unit test-protocol-unit-asan
