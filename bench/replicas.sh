#!/usr/bin/env bash
# Publish latency and rate with and without --publish-min-replicas (docs/PERFORMANCE.md,
# "Acknowledged means replicated"): a master and two replicas on loopback, one rt-server
# per setting, rt-loadgen's closed publish loop with 1 connection (latency) and 32
# (throughput; one WAIT then covers every publish answered before it).
#
#   bench/replicas.sh            (make bench-replicas)
#   BENCH_DURATION=10 bench/replicas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mktemp -d /tmp/rt-bench-replicas.XXXXXX)
source bench/lib.sh
DUR=${BENCH_DURATION:-5}
RESULTS=$DIR/results

start_redis   # the master: REDIS_PORT, REDIS_PID
MASTER_PORT=$REDIS_PORT MASTER_PID=$REDIS_PID
REPLICA_PIDS=()
for i in 1 2; do
  port=$(free_port)
  "${SERVER_PIN[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
    --logfile "$DIR/replica$i.log" --daemonize no --replicaof 127.0.0.1 "$MASTER_PORT" &
  PIDS+=($!); REPLICA_PIDS+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p "$port" info replication 2>/dev/null | grep -q master_link_status:up && break; sleep 0.1
  done
done
echo "bench: master :$MASTER_PORT, replicas in sync" >&2

printf '%-22s %6s %10s %10s %10s %10s %8s\n' "--publish-min-replicas" conns "publish/s" "p50 ms" "p90 ms" "p99 ms" non2xx
for n in 0 1 2; do
  start_rt --publish-min-replicas "$n"
  for conns in 1 32; do
    out=$("${GEN_PIN[@]}" "$LOADGEN" publish --target rt --port "$RT_PORT" --token-file "$DIR/token" \
      --pids "$RT_PIDS" --aux-pids "$MASTER_PID" --conns "$conns" --procs 1 --duration "$DUR" --warmup 1 \
      --channel "replicas-$n-$conns-$RANDOM" 2>/dev/null | grep '^RESULT')
    echo "$out" >> "$RESULTS"
    val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
    printf '%-22s %6s %10s %10s %10s %10s %8s\n' "$n" "$conns" "$(val rps)" "$(val p50_ms)" "$(val p90_ms)" "$(val p99_ms)" "$(val non2xx)"
  done
  stop_rt
done
echo "bench: raw results in $RESULTS" >&2
