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

$(E2E_STAMP): $(E2E_DIR)/package.json $(E2E_DIR)/package-lock.json
	cd $(E2E_DIR) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

.PHONY: e2e e2e-asan e2e-deps
e2e-deps: $(E2E_STAMP)

e2e: $(BOOTSTRAP_ALL) server client $(E2E_STAMP)
	@mkdir -p $(BUILD)/e2e/tmp
	cd $(E2E_DIR) && RT_E2E_TMP=$(abspath $(BUILD))/e2e/tmp \
	  RT_E2E_OUTPUT=$(abspath $(BUILD))/e2e/test-results \
	  ./node_modules/.bin/playwright test $(E2E_ARGS)

e2e-asan: $(BOOTSTRAP_ALL) server-asan client $(E2E_STAMP)
	@mkdir -p $(BUILD)/e2e/tmp
	cd $(E2E_DIR) && RT_E2E_TMP=$(abspath $(BUILD))/e2e/tmp \
	  RT_E2E_OUTPUT=$(abspath $(BUILD))/e2e/test-results-asan \
	  RT_SERVER_BIN=$(abspath $(BUILD))/asan/rt-server \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./node_modules/.bin/playwright test $(E2E_ARGS)

TEST_TARGETS += e2e
