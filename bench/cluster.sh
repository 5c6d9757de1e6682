#!/usr/bin/env bash
# rt on a Redis Cluster against rt on one Redis (README "Redis Cluster"): publishes/s and
# catch-up polls/s through one rt-server, its connections spread over 30 channels (so over
# every master of the cluster), on 1 standalone redis-server and on a cluster of 3 masters
# (no replicas) started here on loopback. Rows: each figure on both, and cluster ÷ single.
#
# This machine has 2 cores for the load generator, rt-server and every Redis process: the
# cluster's extra masters add no CPU, so the ratio shows what routing, one connection per
# master and SPUBLISH cost here, not the capacity 3 masters on 3 machines have.
#
#   bench/cluster.sh            (make bench-cluster; make bench runs it too)
#   BENCH_DURATION=10 bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mktemp -d /tmp/rt-bench-cluster.XXXXXX)
source bench/lib.sh
DUR=${BENCH_DURATION:-5}
SPREAD=${BENCH_SPREAD:-30}
RESULTS=$DIR/results

start_redis   # the single Redis: REDIS_PORT, REDIS_PID
SINGLE_PORT=$REDIS_PORT SINGLE_PID=$REDIS_PID

# A port whose cluster bus port (+10000) is free too and below 65536.
cluster_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(free_port)
    if [ $((p + 10000)) -lt 65536 ] && python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$((p + 10000)))); s.close()" 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}
NODES=(); NODE_PIDS=()
for i in 1 2 3; do
  port=$(cluster_port)
  mkdir -p "$DIR/node$i"
  "${SERVER_PIN[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR/node$i" \
    --logfile "$DIR/node$i.log" --daemonize no --cluster-enabled yes --cluster-config-file nodes.conf &
  PIDS+=($!); NODE_PIDS+=($!); NODES+=("127.0.0.1:$port")
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create "${NODES[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
for n in "${NODES[@]}"; do
  for _ in $(seq 1 200); do
    redis-cli -p "${n##*:}" cluster info 2>/dev/null | grep -q cluster_state:ok && break; sleep 0.1
  done
done
echo "bench: redis :$SINGLE_PORT, cluster ${NODES[*]}" >&2
CLUSTER_URL="redis+cluster://$(IFS=,; echo "${NODES[*]}")"
CLUSTER_PIDS=$(IFS=,; echo "${NODE_PIDS[*]}")

declare -A RPS CPU
run() {  # run KEY MODE CONNS AUX_PIDS
  local key=$1 mode=$2 conns=$3 aux=$4 out
  out=$("${GEN_PIN[@]}" "$LOADGEN" "$mode" --target rt --port "$RT_PORT" --token-file "$DIR/token" \
    --pids "$RT_PIDS" --aux-pids "$aux" --conns "$conns" --procs 1 --duration "$DUR" --warmup 1 \
    --spread "$SPREAD" --channel "cl-$key-$RANDOM" 2>/dev/null | grep '^RESULT')
  echo "$key $out" >> "$RESULTS"
  RPS[$key]=$(sed -n 's/.* rps=\([^ ]*\).*/\1/p' <<<"$out")
  CPU[$key]=$(sed -n 's/.* cpu_us_per_req=\([^ ]*\).*/\1/p' <<<"$out")
}

start_rt
run single-publish publish 32 "$SINGLE_PID"
run single-catchup catchup 50 "$SINGLE_PID"
stop_rt
start_rt --redis "$CLUSTER_URL"
run cluster-publish publish 32 "$CLUSTER_PIDS"
run cluster-catchup catchup 50 "$CLUSTER_PIDS"
stop_rt

ratio() { python3 -c "a,b=float('$1' or 0),float('$2' or 0); print('%.2fx' % (a/b) if b else '-')"; }
printf '%-52s %6s %12s %12s %8s\n' "" unit "1 Redis" "3 masters" ratio
for m in publish catchup; do
  label=$([ $m = publish ] && echo "publishes ($SPREAD channels, 32 conns)" || echo "catch-up polls ($SPREAD channels, 50 conns)")
  printf '%-52s %6s %12s %12s %8s\n' "$label" "/s" "${RPS[single-$m]}" "${RPS[cluster-$m]}" "$(ratio "${RPS[cluster-$m]}" "${RPS[single-$m]}")"
  printf '%-52s %6s %12s %12s %8s\n' "  CPU per request (rt + Redis processes)" us "${CPU[single-$m]}" "${CPU[cluster-$m]}" "$(ratio "${CPU[cluster-$m]}" "${CPU[single-$m]}")"
done
echo "bench: 2 cores for everything: the cluster's masters share them (a ratio of rt's cost, not of capacity)" >&2
echo "bench: raw results in $RESULTS" >&2
