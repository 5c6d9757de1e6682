#!/usr/bin/env bash
# rt benchmarks side by side with Nchan and the floors (nginx `return 200`, Redis scripts).
#
#   bench/run.sh            the full run (make bench): a few minutes
#   bench/run.sh --smoke    tiny loads, about a second each (make bench-smoke): asserts only
#                           that every figure came out
#
# Environment: BENCH_TARGETS (default "rt nchan-r nchan-m"), BENCH_SCENARIOS (default
# "held fanout catchup publish multi"; the floors come with catchup and publish), BENCH_THREADS (rt's --threads and
# nginx's worker_processes, default 2), BENCH_DURATION (s per closed-loop figure, default 10),
# BENCH_HELD (held polls, default min(50000, file limit - 500)), BENCH_PAIR_ROUNDS (interleaved
# pairs behind the ratio goals, default 4), BENCH_PIN=1 (pin servers and
# generator to separate CPUs; needs >= 2 CPUs), BENCH_DIR (run directory, default
# build/bench/run), RT_SERVER (the rt-server binary to measure, default build/rt-server).
#
# Starts a private redis-server, rt-server and nginx (+Nchan) on free loopback ports, stops
# them by PID on exit. Raw results: build/bench/run/results.txt; the table: build/bench/table.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1

DIR=${BENCH_DIR:-$ROOT/build/bench/run}
[ "$SMOKE" = 1 ] && DIR=$ROOT/build/bench/smoke
RESULTS=$DIR/results.txt
TABLE=$ROOT/build/bench/table.txt
[ "$SMOKE" = 1 ] || [ -n "${BENCH_DIR:-}" ] && TABLE=$DIR/table.txt
PUBLISH_LUA=$ROOT/server/lua/publish.lua

TARGETS=${BENCH_TARGETS:-rt nchan-r nchan-m}
SCENARIOS=${BENCH_SCENARIOS:-held fanout catchup publish multi}
if [ "$SMOKE" = 1 ]; then
  DUR=${BENCH_DURATION:-1}; WARM=0.2; HELD=${BENCH_HELD:-200}; FANOUT_NS="100"
  CATCHUP_CONNS=8; PUB_CONNS=8; MULTI_CONNS=2; REDIS_N=2000; FANOUT_ROUNDS=1; GEN_PROCS=1
  CATCHUP_MANY=""; MULTI_HELD=20; PAIR_ROUNDS=${BENCH_PAIR_ROUNDS:-1}; PAIR_DUR=$DUR
else
  DUR=${BENCH_DURATION:-10}; WARM=1
  HELD=${BENCH_HELD:-50000}
  FANOUT_NS="1000 10000"; CATCHUP_CONNS=100; PUB_CONNS=50; MULTI_CONNS=10; REDIS_N=300000
  FANOUT_ROUNDS=${BENCH_FANOUT_ROUNDS:-3}
  # Two generator processes for the closed loops, like wrk -t2 and the servers' two event
  # loops: on a machine shared with other work the scheduler's share goes by thread.
  GEN_PROCS=${BENCH_GEN_PROCS:-2}
  CATCHUP_MANY=1000; MULTI_HELD=1000
  # Interleaved pairs behind the two ratio goals measured against a sibling figure
  # (catch-up vs rt's HTTP floor, 200-channel poll vs Nchan): rounds of half length.
  PAIR_ROUNDS=${BENCH_PAIR_ROUNDS:-4}; PAIR_DUR=$(( DUR > 3 ? DUR / 2 : DUR ))
fi

for f in "$LOADGEN" "$RT_SERVER"; do
  case " $TARGETS " in *" rt "*) ;; *) [ "$f" = "$RT_SERVER" ] && continue ;; esac
  [ -x "$f" ] || { echo "bench: $f is missing (make bench-build server)" >&2; exit 1; }
done

rm -rf "$DIR"; mkdir -p "$DIR/tmp"
: > "$RESULTS"

# ---- servers ---------------------------------------------------------------------------
# fresh TARGET: (re)starts the server of a target (nchan-r and nchan-m share one nginx).
start_redis
RT_PORT=""; RT_PID=""; NGINX_PORT=""; NGINX_PID=""
fresh() {
  case "$1" in
    rt) [ -n "$RT_PID" ] && stop_rt; start_rt ;;
    *)  [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID"; start_nginx ;;
  esac
}

# ---- helpers ---------------------------------------------------------------------------
# lg TARGETNAME MODE ARGS...: runs the generator against rt / nchan-r / nchan-m / plain and
# appends its RESULT line (prefixed with the target name) to $RESULTS.
lg() {
  local name=$1 mode=$2; shift 2
  local args=()
  case "$name" in
    rt)      args=(--target rt --port "$RT_PORT" --token-file "$DIR/token" --pids "$RT_PIDS" --aux-pids "$REDIS_PID") ;;
    nchan-r) args=(--target nchan --port "$NGINX_PORT" --prefix /nchan-r --pids "$NGINX_PID" --aux-pids "$REDIS_PID") ;;
    nchan-m) args=(--target nchan --port "$NGINX_PORT" --prefix /nchan-m --pids "$NGINX_PID" --aux-pids "$REDIS_PID") ;;
    floor)   args=(--target plain --port "$NGINX_PORT" --path /floor --pids "$NGINX_PID") ;;
    rt-http) args=() ;;  # all given by the caller
  esac
  local out
  echo "bench: $name $mode $*" >&2
  if out=$("${GEN_PIN[@]}" "$LOADGEN" "$mode" "${args[@]}" "$@" 2> >(tail -3 >&2) | grep '^RESULT'); then
    echo "$name $out${LG_TAG:+ tag=$LG_TAG}" >> "$RESULTS"
  else
    echo "$name RESULT mode=$mode failed=1" >> "$RESULTS"
    echo "bench: $name $mode failed" >&2
  fi
}

redis_rps() {  # redis-benchmark -q output "NAME: 12345.67 requests per second, ..."
  awk -F'[: ]+' '/requests per second/ {for (i=1;i<=NF;i++) if ($(i+1)=="requests") {print int($i); exit}}'
}

RUN_ID=$(date +%s)
# Every scenario uses fresh channel names.
ch() { echo "b$RUN_ID-$1"; }

# ---- scenarios -------------------------------------------------------------------------
# Memory per held poll first, each target on a freshly started server.
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# Memory per held poll first, each measurement on a freshly started server (memory freed by
# an earlier scenario would be reused and flatter the figure). One process holds at most
# the file limit (20,000 here) of connections: HELD_PROCS processes share the port (rt:
# --reuseport, one thread each; nginx: as many workers, `listen ... reuseport`).
HELD_PROCS=$(( (HELD + NOFILE - 2001) / (NOFILE - 2000) ))
if want held; then
  for t in $TARGETS; do
    if [ "$t" = rt ]; then
      [ -n "$RT_PID" ] && stop_rt
      RT_PROCS=$HELD_PROCS RT_THREADS=$(( HELD_PROCS > 1 ? 1 : THREADS )) start_rt
    else
      [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID"
      NGINX_WORKERS=$(( HELD_PROCS > 1 ? HELD_PROCS : THREADS )) NGINX_REUSEPORT=$([ "$HELD_PROCS" -gt 1 ] && echo reuseport) start_nginx
    fi
    lg "$t" held --n "$HELD" --channel "$(ch "$t-held")"
  done
  # The other scenarios run on the usual servers.
  [ -n "$RT_PID" ] && stop_rt
  [ -n "$NGINX_PID" ] && { stop_pid "$NGINX_PID"; NGINX_PID=""; }
fi
if want multi; then
  for t in $TARGETS; do
    fresh "$t"
    LG_TAG=fresh lg "$t" multi-fanout --n "$MULTI_HELD" --channels 200 --channel "$(ch "$t-mfm")"
  done
fi
[ -n "$NGINX_PID" ] || start_nginx
case " $TARGETS " in *" rt "*) [ -n "$RT_PID" ] || start_rt ;; esac

# Then scenario by scenario, the targets one after the other and the floor right after them,
# so that the load other work puts on the machine hits them alike.
# Fan-out is short and noisy: several rounds, the table shows the median round.
if want fanout; then
  for n in $FANOUT_NS; do
    for r in $(seq 1 "$FANOUT_ROUNDS"); do
      for t in $TARGETS; do lg "$t" fanout --n "$n" --channel "$(ch "$t-fo$n-$r")"; done
    done
  done
fi

if want catchup; then
  for t in $TARGETS; do
    lg "$t" catchup --conns "$CATCHUP_CONNS" --procs "$GEN_PROCS" --duration "$DUR" --warmup "$WARM" --channel "$(ch "$t-cu")"
  done
  # The HTTP floor: nginx answering a fixed 60-byte JSON.
  lg floor plain --conns "$CATCHUP_CONNS" --procs "$GEN_PROCS" --duration "$DUR" --warmup "$WARM"
  # rt's own HTTP floor: rt answering a 400 (an /rt query without m) with no Redis work,
  # what rt costs per request before any of its poll logic.
  if [ -n "$RT_PID" ]; then
    lg rt-http plain --target plain --port "$RT_PORT" --path '/rt?c=a' --pids "$RT_PID" \
      --conns "$CATCHUP_CONNS" --procs "$GEN_PROCS" --duration "$DUR" --warmup "$WARM"
  fi
  # Interleaved pairs for the goal "catch-up vs rt's own HTTP floor": on a machine shared
  # with other work the load drifts between two closed loops run a minute apart, so the
  # goal takes the median of PAIR_ROUNDS pairs run back to back, the order flipped every
  # round (ABBA) so that a steady drift hits both sides alike.
  if [ -n "$RT_PID" ]; then
    for r in $(seq 1 "$PAIR_ROUNDS"); do
      pair_catchup() { LG_TAG=pair$r lg rt catchup --conns "$CATCHUP_CONNS" --procs "$GEN_PROCS" --duration "$PAIR_DUR" --warmup "$WARM" --channel "$(ch "rt-cup$r")"; }
      pair_floor() { LG_TAG=pair$r lg rt-http plain --target plain --port "$RT_PORT" --path '/rt?c=a' --pids "$RT_PID" \
        --conns "$CATCHUP_CONNS" --procs "$GEN_PROCS" --duration "$PAIR_DUR" --warmup "$WARM"; }
      if [ $((r % 2)) = 1 ]; then pair_catchup; pair_floor; else pair_floor; pair_catchup; fi
    done
  fi
  # Many connections: the same with 10x the connections (tagged "many" in the results).
  if [ -n "$CATCHUP_MANY" ]; then
    for t in $TARGETS floor; do
      if [ "$t" = floor ]; then
        LG_TAG=many lg floor plain --conns "$CATCHUP_MANY" --procs "$GEN_PROCS" --duration "$DUR" --warmup "$WARM"
      else
        LG_TAG=many lg "$t" catchup --conns "$CATCHUP_MANY" --procs "$GEN_PROCS" --duration "$DUR" --warmup "$WARM" --channel "$(ch "$t-cum")"
      fi
    done
  fi
  if command -v wrk >/dev/null; then
    # The generator check: wrk on the same floor (2 threads). If wrk is much faster than
    # rt-loadgen here, the generator is the bottleneck of the catch-up figures.
    TIMEFORMAT='%U %S'
    { time "${GEN_PIN[@]}" wrk -t 2 -c "$CATCHUP_CONNS" -d "${DUR}s" --latency \
        "http://127.0.0.1:$NGINX_PORT/floor" > "$DIR/wrk-floor.txt" 2>&1 || true; } 2> "$DIR/wrk-time.txt"
    wrk_rps=$(awk '/^Requests\/sec/ {print int($2)}' "$DIR/wrk-floor.txt")
    wrk_n=$(awk '/requests in/ {print $1}' "$DIR/wrk-floor.txt")
    wrk_us=$(awk -v n="${wrk_n:-0}" 'NR == 1 && n > 0 {printf "%.1f", ($1 + $2) / n * 1e6}' "$DIR/wrk-time.txt")
    echo "wrk RESULT mode=plain rps=${wrk_rps:-0} gen_us_per_req=${wrk_us:-0}" >> "$RESULTS"
  fi
  # For reference: Redis alone answering the catch-up's range read.
  ZKEY="channel:{b$RUN_ID-zr}:msg_backlog"
  for i in 1 2; do redis-cli -p "$REDIS_PORT" zadd "$ZKEY" "$i" "{\"id\":$i,\"prev\":$((i - 1)),\"payload\":{\"tag\":\"m$i\"}}" >/dev/null; done
  zr=$(redis-benchmark -p "$REDIS_PORT" -c 50 -n "$REDIS_N" -q zrangebyscore "$ZKEY" '(1' +inf 2>&1 | tr '\r' '\n' | redis_rps)
  echo "redis RESULT mode=zrange rps=${zr:-0}" >> "$RESULTS"
fi

if want publish; then
  for t in $TARGETS; do
    lg "$t" publish --conns "$PUB_CONNS" --procs "$GEN_PROCS" --duration "$DUR" --warmup "$WARM" --channel "$(ch "$t-pub")"
  done
  # The Redis floor: redis-benchmark running the publish script as rt runs it.
  if [ -f "$PUBLISH_LUA" ]; then
    sha=$(redis-cli -p "$REDIS_PORT" script load "$(cat "$PUBLISH_LUA")")
    # KEYS and ARGV as the script's --input: comment describes them; backlog 100 and ttl
    # 7 days are rt-server's defaults.
    pkey="b$RUN_ID-rp"
    # shellcheck disable=SC2086
    pub=$(redis-benchmark -p "$REDIS_PORT" -c 50 -n "$REDIS_N" -q evalsha "$sha" ${PUBLISH_LUA_ARGS:-3 "channel:{$pkey}:msg_id" "channel:{$pkey}:msg_backlog" "channel:{$pkey}:pubsub" '{"tag":"publish","text":"a comment of a typical length"}' 100 604800} 2>&1 | tr '\r' '\n' | redis_rps)
    echo "redis RESULT mode=publish_script rps=${pub:-0}" >> "$RESULTS"
  else
    echo "redis RESULT mode=publish_script failed=1 missing=server/lua/publish.lua" >> "$RESULTS"
  fi
fi

if want multi; then
  for t in $TARGETS; do
    lg "$t" multi --channels 200 --conns "$MULTI_CONNS" --procs "$GEN_PROCS" --duration "$DUR" --warmup "$WARM" --channel "$(ch "$t-mu")"
  done
  # Interleaved pairs for the goal "200-channel poll vs Nchan" (see the catch-up pairs).
  if [[ " $TARGETS " == *" rt "* && " $TARGETS " == *" nchan-r "* ]]; then
    for r in $(seq 1 "$PAIR_ROUNDS"); do
      pair_order="rt nchan-r"; [ $((r % 2)) = 0 ] && pair_order="nchan-r rt"
      for t in $pair_order; do
        LG_TAG=pair$r lg "$t" multi --channels 200 --conns "$MULTI_CONNS" --procs "$GEN_PROCS" --duration "$PAIR_DUR" --warmup "$WARM" --channel "$(ch "$t-mup$r")"
      done
    done
  fi
  # Held 200-channel polls (pages waiting for a sticker count), one publish to one channel.
  for r in $(seq 1 "$FANOUT_ROUNDS"); do
    for t in $TARGETS; do
      lg "$t" multi-fanout --n "$MULTI_HELD" --channels 200 --channel "$(ch "$t-mf$r")"
    done
  done
fi

# ---- the table -------------------------------------------------------------------------
bench/table.py "$RESULTS" | tee "$TABLE"
{
  echo
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
  held_how="one process"
  [ "${HELD_PROCS:-1}" -gt 1 ] && held_how="$HELD_PROCS rt processes of one thread each, $HELD_PROCS nginx workers"
  echo "rt threads / nginx workers: $THREADS; held polls asked: $HELD (file limit $NOFILE per process; held polls on $held_how)"
} | tee -a "$TABLE"

if [ "$SMOKE" = 1 ]; then
  bench/table.py --check "$RESULTS"
fi
