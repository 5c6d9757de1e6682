# rt WebAssembly client: the no-I/O C++ core (client-wasm/src), its C exports, the wasm loader, the JS
# host/public API, and their tests. Included by the top-level Makefile, which defines BUILD,
# CXX, CXXSTD, WARN, OPT, ASAN_FLAGS, BOOTSTRAP_ALL, TEST_TARGETS and (protocol.mk)
# PROTO_SRCS.
#
#   make client                  build/client/{rt-client.mjs,rt-client.d.ts,rt-core.mjs,rt-core.wasm}
#   make client-size             gzipped bytes a page downloads
#   make test-client-unit        CMocka tests of the native core (simulated time)
#   make test-client-unit-asan   the same under ASan/UBSan
#   make test-client-wasm        the wasm build in Node (fake fetch; smoke test vs real servers)

CLIENT_OUT        := $(BUILD)/client
CLIENT_SRC_DIR    := client-wasm/src
# The core as the wasm links it (no JSON parser: host.mjs parses with JSON.parse), and the
# native build's extra way in (response_text: a body read with jansson, for tests and fuzzers).
CLIENT_WASM_CORE_SRCS := $(addprefix $(CLIENT_SRC_DIR)/,backoff.cpp channel_state.cpp poll_planner.cpp \
                       scroll_selector.cpp client_core.cpp wire_json.cpp)
CLIENT_CORE_SRCS  := $(CLIENT_WASM_CORE_SRCS) $(CLIENT_SRC_DIR)/response_text.cpp
CLIENT_CORE_HDRS  := $(wildcard $(CLIENT_SRC_DIR)/*.hpp) server/protocol/protocol.hpp
CLIENT_INCLUDES   := -I$(CLIENT_SRC_DIR) -Iserver/protocol

EMENV             := NODE_PATH=/usr/share/nodejs
EMXX              := $(EMENV) em++

# --- build-time JS tools (npm ci into build/, from client-wasm/package-lock.json) ------------
# esbuild bundles and minifies the host with the wasm loader into one module.
CLIENT_TOOLS       := $(CLIENT_OUT)/tools
CLIENT_TOOLS_STAMP := $(CLIENT_TOOLS)/.installed
ESBUILD            := $(CLIENT_TOOLS)/node_modules/.bin/esbuild

$(CLIENT_TOOLS_STAMP): client-wasm/package.json client-wasm/package-lock.json
	@mkdir -p $(CLIENT_OUT)
	set -e; tmp=$$(mktemp -d $(CLIENT_OUT)/.tools.XXXXXX); \
	cp client-wasm/package.json client-wasm/package-lock.json $$tmp/; \
	(cd $$tmp && npm ci --no-audit --no-fund --loglevel=error); \
	touch $$tmp/.installed; \
	rm -rf $(CLIENT_TOOLS).old; [ ! -e $(CLIENT_TOOLS) ] || mv $(CLIENT_TOOLS) $(CLIENT_TOOLS).old; \
	mv $$tmp $(CLIENT_TOOLS); rm -rf $(CLIENT_TOOLS).old

# --- the wasm module and the JS API --------------------------------------------------------
# A standalone wasm reactor with plain C exports (bindings.cpp), loaded by our own
# client-wasm/rt-core.mjs: no Emscripten JS glue and no embind (together ~11 kB gzipped of
# the 40 kB a page downloaded before). -fno-rtti: nothing uses typeid/dynamic_cast once
# embind is gone; -fno-exceptions: the core throws nothing but bad_alloc, which then aborts
# (no exception classes, typeinfo or dynamic_cast in the wasm: ~1 kB gzipped). The wasm
# imports only what rt-core.mjs provides.
CLIENT_WASM_FLAGS := -Oz -flto -DNDEBUG -fno-rtti -fno-exceptions --no-entry -sSTANDALONE_WASM=1 \
  -sEXPORTED_FUNCTIONS=_malloc,_free -sFILESYSTEM=0 -sMALLOC=emmalloc -sALLOW_MEMORY_GROWTH=1 \
  -sBINARYEN_EXTRA_PASSES=--converge

CLIENT_ARTIFACTS := $(CLIENT_OUT)/rt-core.wasm $(CLIENT_OUT)/rt-core.mjs $(CLIENT_OUT)/rt-client.mjs \
                    $(CLIENT_OUT)/rt-client.d.ts

# Linked in a private temporary directory and moved into place (concurrent `make client`).
$(CLIENT_OUT)/rt-core.wasm: client-wasm/client.mk client-wasm/bindings.cpp $(CLIENT_WASM_CORE_SRCS) $(CLIENT_CORE_HDRS) \
                            $(PROTO_CORE_SRCS) | $(BOOTSTRAP_ALL)
	@mkdir -p $(dir $@)
	set -e; tmp=$$(mktemp -d $(CLIENT_OUT)/.wasm.XXXXXX); \
	$(EMXX) $(CXXSTD) $(WARN) $(CLIENT_INCLUDES) \
	  client-wasm/bindings.cpp $(CLIENT_WASM_CORE_SRCS) $(PROTO_CORE_SRCS) \
	  $(CLIENT_WASM_FLAGS) -o $$tmp/rt-core.wasm; \
	mv $$tmp/rt-core.wasm $@; rm -rf $$tmp

# The loader on its own (debugging; tests may import it); pages load rt-client.mjs.
$(CLIENT_OUT)/rt-core.mjs: client-wasm/rt-core.mjs
	@mkdir -p $(dir $@)
	cp $< $@

# The public entry bundles the host with the loader (one request, one gzip stream);
# rt-core.wasm is found next to it (new URL('./rt-core.wasm', import.meta.url)).
$(CLIENT_OUT)/rt-client.mjs: client-wasm/host.mjs client-wasm/tabs.mjs client-wasm/rt-core.mjs $(CLIENT_TOOLS_STAMP)
	@mkdir -p $(dir $@)
	set -e; tmp=$$(mktemp -d $(CLIENT_OUT)/.bundle.XXXXXX); \
	cp client-wasm/host.mjs client-wasm/tabs.mjs client-wasm/rt-core.mjs $$tmp/; \
	$(ESBUILD) $$tmp/host.mjs --bundle --minify --format=esm --log-level=warning --outfile=$$tmp/out.mjs; \
	mv $$tmp/out.mjs $@; rm -rf $$tmp

$(CLIENT_OUT)/rt-client.d.ts: client-wasm/rt-client.d.ts
	@mkdir -p $(dir $@)
	cp $< $@

.PHONY: client client-size
client: $(CLIENT_ARTIFACTS)

# Gzipped size of what a page downloads (rt-client.mjs, which bundles rt-core.mjs, and the
# wasm), each file compressed on its own; fails above the budget (issue 14: 30 kB).
CLIENT_SIZE_BUDGET := 30000
client-size: client
	@total=0; for f in rt-client.mjs rt-core.wasm; do \
	  raw=$$(wc -c < $(CLIENT_OUT)/$$f); gz=$$(gzip -9c $(CLIENT_OUT)/$$f | wc -c); total=$$((total + gz)); \
	  printf '%-14s %7d bytes, gzip -9: %6d bytes\n' $$f $$raw $$gz; done; \
	printf 'total gzip -9: %d bytes (budget %d)\n' $$total $(CLIENT_SIZE_BUDGET); \
	[ $$total -le $(CLIENT_SIZE_BUDGET) ] || { echo "client-size: over the budget" >&2; exit 1; }

# --- native unit tests (CMocka, simulated time) --------------------------------------------
CLIENT_TEST_NAMES := backoff channel_state poll_planner scroll_selector client_core wire_json
CLIENT_TEST_SUPPORT := tests/unit/client/test_support.hpp
CLIENT_UNIT_BINS  := $(addprefix $(BUILD)/unit/client/test_,$(CLIENT_TEST_NAMES))
CLIENT_ASAN_BINS  := $(addprefix $(BUILD)/unit-asan/client/test_,$(CLIENT_TEST_NAMES))

$(BUILD)/unit/client/test_%: tests/unit/client/test_%.cpp $(CLIENT_TEST_SUPPORT) $(CLIENT_CORE_SRCS) \
                             $(CLIENT_CORE_HDRS) $(PROTO_SRCS) | $(BOOTSTRAP_SERVER)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(WARN) $(OPT) $(CLIENT_INCLUDES) $< $(CLIENT_CORE_SRCS) $(PROTO_SRCS) -o $@ \
	  $$(pkg-config --cflags --libs jansson cmocka)

$(BUILD)/unit-asan/client/test_%: tests/unit/client/test_%.cpp $(CLIENT_TEST_SUPPORT) $(CLIENT_CORE_SRCS) \
                                  $(CLIENT_CORE_HDRS) $(PROTO_SRCS) | $(BOOTSTRAP_SERVER)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(WARN) -O1 -g $(ASAN_FLAGS) $(CLIENT_INCLUDES) $< $(CLIENT_CORE_SRCS) $(PROTO_SRCS) -o $@ \
	  $$(pkg-config --cflags --libs jansson cmocka)

.PHONY: test-client-unit test-client-unit-asan test-client-wasm
test-client-unit: $(CLIENT_UNIT_BINS)
	@set -e; for t in $^; do echo "--- $$t"; $$t 2>&1; done

test-client-unit-asan: $(CLIENT_ASAN_BINS)
	@set -e; for t in $^; do echo "--- $$t"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $$t 2>&1; done

# The wasm build in Node 20. The smoke test also needs build/rt-server (make server) and
# redis-server; it starts both on free ports and stops them by PID.
test-client-wasm: client server
	RT_CLIENT_DIR=$(abspath $(CLIENT_OUT)) RT_SERVER_BIN=$(abspath $(BUILD)/rt-server) \
	  node --test tests/wasm/ 2>&1

TEST_TARGETS += test-client-unit test-client-unit-asan test-client-wasm

# --- the npm package -------------------------------------------------------------------------
# make client-pack: build/client/<name>-<version>.tgz, an ESM package (exports with a `types`
# condition) holding the built module, its types, the prebuilt wasm, README and LICENSE. The
# manifest is client-wasm/package/package.json (name and version are read from it).
CLIENT_PKG_JSON   := client-wasm/package/package.json
CLIENT_PKG_ID     := $(shell node -p "const p=require('./$(CLIENT_PKG_JSON)');p.name.replace('@','').replace('/','-')+'-'+p.version" 2>/dev/null)
CLIENT_PKG_TGZ    := $(CLIENT_OUT)/$(CLIENT_PKG_ID).tgz

$(CLIENT_PKG_TGZ): $(CLIENT_ARTIFACTS) $(CLIENT_PKG_JSON) client-wasm/README.md LICENSE
	set -e; tmp=$$(mktemp -d $(CLIENT_OUT)/.pack.XXXXXX); mkdir -p $$tmp/pkg; \
	cp $(CLIENT_OUT)/rt-client.mjs $(CLIENT_OUT)/rt-core.wasm client-wasm/README.md LICENSE $(CLIENT_PKG_JSON) $$tmp/pkg/; \
	cp $(CLIENT_OUT)/rt-client.d.ts $$tmp/pkg/rt-client.d.mts; \
	(cd $$tmp/pkg && npm pack --silent --pack-destination .. >/dev/null); \
	mv $$tmp/$(CLIENT_PKG_ID).tgz $@; rm -rf $$tmp
	@tar -tzf $@ | sed 's/^/  /'

.PHONY: client-pack
client-pack: $(CLIENT_PKG_TGZ)

# --- the consumer test ----------------------------------------------------------------------
# tests/consumer/app installed as a user would: a fresh copy in build/consumer/app, its tools
# (tsc, esbuild, Playwright) by npm ci from its lock file, then the packed tarball by npm install
# (not saved: its checksum changes with every build). tests/consumer/consumer.test.mjs then
# type-checks, bundles and runs it in Chromium against a real rt-server and redis-server.
CONSUMER_DIR := $(BUILD)/consumer

.PHONY: test-client-consumer
test-client-consumer: client-pack server | $(BOOTSTRAP_ALL)
	set -e; rm -rf $(CONSUMER_DIR)/app; mkdir -p $(CONSUMER_DIR); cp -r tests/consumer/app $(CONSUMER_DIR)/app; \
	cd $(CONSUMER_DIR)/app; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error; \
	npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error $(abspath $(CLIENT_PKG_TGZ))
	RT_SERVER_BIN=$(abspath $(BUILD)/rt-server) RT_CONSUMER_DIR=$(abspath $(CONSUMER_DIR)) \
	  node --test --test-reporter=tap tests/consumer/ 2>&1

TEST_TARGETS += test-client-consumer
