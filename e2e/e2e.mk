# End-to-end tests: Debian's Chromium driven by Playwright against a real
# redis-server, rt-server and the demo site (web/), each started per test on free
# ports by e2e/lib/stack.mjs and stopped by PID. Included by the top-level Makefile.
#
#   make e2e                      build server + client, npm ci if needed, run every test
#   make e2e E2E_ARGS='-g Redis'  pass options to `playwright test`
#   make e2e-asan                 the same against the ASan/UBSan rt-server (not in make test:
#                                 slower); a sanitizer report fails the test

E2E_DIR   := e2e
# npm ci runs again when node_modules is missing or older than the lock file.
E2E_STAMP := $(E2E_DIR)/node_modules/.rt-npm-ci
E2E_ARGS  ?=

# The tests run a snapshot of the built server, its Lua scripts and the client, so that a
# rebuild in the tree while they run (make client from another shell) cannot mix versions.
# $(1): the rt-server binary, $(2): the snapshot directory.
define e2e_snapshot
	rm -rf $(2) && mkdir -p $(2)/client
	cp $(BUILD)/client/*.mjs $(BUILD)/client/*.wasm $(2)/client/
	cp -r server/lua $(2)/lua
	cp $(1) $(2)/rt-server
endef
E2E_ENV = RT_E2E_TMP=$(abspath $(BUILD))/e2e/tmp RT_SERVER_BIN=$(abspath $(1))/rt-server \
	  RT_LUA_DIR=$(abspath $(1))/lua RT_CLIENT_DIR=$(abspath $(1))/client

$(E2E_STAMP): $(E2E_DIR)/package.json $(E2E_DIR)/package-lock.json
	cd $(E2E_DIR) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

.PHONY: e2e e2e-asan e2e-deps
e2e-deps: $(E2E_STAMP)

e2e: $(BOOTSTRAP_ALL) server client $(E2E_STAMP)
	@mkdir -p $(BUILD)/e2e/tmp
	$(call e2e_snapshot,$(BUILD)/rt-server,$(BUILD)/e2e/snapshot)
	cd $(E2E_DIR) && $(call E2E_ENV,$(BUILD)/e2e/snapshot) \
	  RT_E2E_OUTPUT=$(abspath $(BUILD))/e2e/test-results \
	  ./node_modules/.bin/playwright test $(E2E_ARGS)

e2e-asan: $(BOOTSTRAP_ALL) server-asan client $(E2E_STAMP)
	@mkdir -p $(BUILD)/e2e/tmp
	$(call e2e_snapshot,$(BUILD)/asan/rt-server,$(BUILD)/e2e/snapshot-asan)
	cd $(E2E_DIR) && $(call E2E_ENV,$(BUILD)/e2e/snapshot-asan) \
	  RT_E2E_OUTPUT=$(abspath $(BUILD))/e2e/test-results-asan \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./node_modules/.bin/playwright test $(E2E_ARGS)

TEST_TARGETS += e2e
