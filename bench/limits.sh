#!/usr/bin/env bash
# Limits under load, bigger than in `make test` (docs/HARDENING.md "Limits under load"):
# the scenarios of tests/integration/limits.test.mjs (--max-connections, slowloris, a
# 1 MiB fan-out, a publish storm over 10,000 channels) at a larger scale, printing their
# figures (connections, times, RSS, rates). The test's correctness and bound checks still
# apply; nothing here asserts a speed.
#
#   bench/limits.sh                    (make bench-limits)
#   RT_LIMITS_TRICKLERS=8000 bench/limits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export RT_SERVER_BIN=${RT_SERVER_BIN:-build/rt-server}
export RT_LIMITS_TRICKLERS=${RT_LIMITS_TRICKLERS:-5000}
export RT_LIMITS_TRICKLE_BOUND=${RT_LIMITS_TRICKLE_BOUND:-4000}
export RT_LIMITS_TRICKLE_SECONDS=${RT_LIMITS_TRICKLE_SECONDS:-20}
export RT_LIMITS_FANOUT=${RT_LIMITS_FANOUT:-2000}
export RT_LIMITS_STORM_CHANNELS=${RT_LIMITS_STORM_CHANNELS:-10000}
export RT_LIMITS_STORM_ROUNDS=${RT_LIMITS_STORM_ROUNDS:-10}
export RT_LIMITS_STORM_CONCURRENCY=${RT_LIMITS_STORM_CONCURRENCY:-64}
export RT_LIMITS_REPEAT_ATTACKS=${RT_LIMITS_REPEAT_ATTACKS:-16}
echo "bench-limits: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), tricklers $RT_LIMITS_TRICKLERS" \
  "(bound $RT_LIMITS_TRICKLE_BOUND), fan-out $RT_LIMITS_FANOUT, storm $RT_LIMITS_STORM_CHANNELS channels x" \
  "$RT_LIMITS_STORM_ROUNDS rounds over $RT_LIMITS_STORM_CONCURRENCY connections" >&2
out=$(mktemp)
status=0
node --test --test-reporter=spec tests/integration/limits.test.mjs >"$out" 2>&1 || status=$?
# The figures (test diagnostics) under the name of each scenario, then the verdict.
grep -E '^(✔|✖|ℹ) ' "$out" | grep -vE '^ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) '
if [ "$status" -ne 0 ]; then cat "$out"; fi
rm -f "$out"
exit "$status"
