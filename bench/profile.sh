#!/usr/bin/env bash
# Profiles rt-server (and its redis-server) under one load of the benchmark.
#
#   bench/profile.sh [catchup|multi|publish|fanout] [seconds]     (default: catchup 8)
#
# Uses `perf record` on the rt-server and redis-server PIDs when perf works here, else runs
# rt-server under `valgrind --tool=callgrind` (much slower: the figures are then only shares).
# Output: build/bench/profile/<scenario>.txt (top symbols by process, CPU split).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SCEN=${1:-catchup}
SECS=${2:-8}
DIR=$ROOT/build/bench/profile
mkdir -p "$DIR"
OUT=$DIR/$SCEN.txt

USE_PERF=0
if command -v perf >/dev/null && perf record -o "$DIR/probe.data" -- true >/dev/null 2>&1; then USE_PERF=1; fi
if [ "$USE_PERF" = 0 ]; then
  RT_WRAP="valgrind --tool=callgrind --callgrind-out-file=$DIR/callgrind.out.%p"
fi

start_redis
start_rt

lg_args=(--target rt --port "$RT_PORT" --token-file "$DIR/token" --pids "$RT_PID" --warmup 0.5
         --duration "$SECS" --channel "prof$(date +%s)")
case "$SCEN" in
  catchup) lg_args=(catchup "${lg_args[@]}" --conns 100) ;;
  multi)   lg_args=(multi "${lg_args[@]}" --conns 10 --channels 200) ;;
  publish) lg_args=(publish "${lg_args[@]}" --conns 50) ;;
  fanout)  lg_args=(fanout --target rt --port "$RT_PORT" --token-file "$DIR/token" --pids "$RT_PID"
                    --n 10000 --channel "prof$(date +%s)") ;;
  *) echo "profile: unknown scenario $SCEN" >&2; exit 2 ;;
esac

redis_ticks() { awk '{print $14+$15}' "/proc/$REDIS_PID/stat"; }
rt_ticks() { awk '{print $14+$15}' "/proc/$RT_PID/stat"; }
r0=$(redis_ticks); t0=$(rt_ticks); w0=$(date +%s.%N)

PERF_PID=""
if [ "$SCEN" = fanout ]; then
  # Profile only the fan-out itself: perf starts once every poll is held.
  rm -f "$DIR/held"
  lg_args+=(--ready-file "$DIR/held" --publish-delay 1)
  if [ "$USE_PERF" = 1 ]; then
    ( for i in $(seq 1 600); do [ -f "$DIR/held" ] && break; sleep 0.1; done
      exec perf record -k mono -F 999 --call-graph dwarf,16384 -p "$RT_PID,$REDIS_PID" -o "$DIR/$SCEN.data" \
        > "$DIR/perf-record.log" 2>&1 ) &
    PERF_PID=$!
  fi
elif [ "$USE_PERF" = 1 ]; then
  perf record -F 999 --call-graph dwarf,16384 -p "$RT_PID,$REDIS_PID" -o "$DIR/$SCEN.data" \
    > "$DIR/perf-record.log" 2>&1 &
  PERF_PID=$!
  sleep 0.3
fi
"$LOADGEN" "${lg_args[@]}" | tee "$DIR/$SCEN.result"
w1=$(date +%s.%N); r1=$(redis_ticks); t1=$(rt_ticks)
if [ -n "$PERF_PID" ]; then
  kill -INT "$PERF_PID"; wait "$PERF_PID" || true
fi

hz=$(getconf CLK_TCK)
{
  echo "scenario: $SCEN, ${SECS}s, rt threads $THREADS; $(grep -o 'rps=[^ ]*\|p50_ms=[^ ]*\|p99_ms=[^ ]*\|max_ms=[^ ]*' "$DIR/$SCEN.result" | tr '\n' ' ')"
  awk -v a="$t0" -v b="$t1" -v c="$r0" -v d="$r1" -v w0="$w0" -v w1="$w1" -v hz="$hz" 'BEGIN {
    w = w1 - w0; printf "CPU during the run (100%% = one core): rt-server %.0f%%, redis-server %.0f%%\n",
    100 * (b - a) / hz / w, 100 * (d - c) / hz / w }'
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  if [ "$USE_PERF" = 1 ]; then
    # Fan-out: only the samples between the publish and the last answer.
    window=$(grep -o 'window_mono=[^ ]*' "$DIR/$SCEN.result" | cut -d= -f2 || true)
    tfilter=(); [ -n "$window" ] && tfilter=(--time "$window") && echo "(samples from the publish to the last answer only)"
    echo "== self time by process and symbol (top 45) =="
    perf report -i "$DIR/$SCEN.data" "${tfilter[@]}" --no-children --sort comm,sym --stdio -g none 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -45 || true
    echo
    echo "== rt-server: inclusive time by symbol (top 60, userspace) =="
    perf report -i "$DIR/$SCEN.data" "${tfilter[@]}" --children --comm rt-server --sort sym --stdio -g none 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | grep -v '\[k\]' | grep -v ' 0x0000' | head -60 || true
  fi
} > "$OUT"
if [ "$USE_PERF" = 0 ]; then
  cleanup  # callgrind writes its file when rt-server exits
  f=$(ls -t "$DIR"/callgrind.out.* | head -1)
  callgrind_annotate --inclusive=yes "$f" | head -60 >> "$OUT" || true
fi
cat "$OUT"
