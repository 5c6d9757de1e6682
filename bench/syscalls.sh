#!/usr/bin/env bash
# Counts rt-server's system calls per request under one load of the benchmark: a figure that,
# unlike requests/s, does not move when other work shares the machine.
#
#   bench/syscalls.sh [catchup|multi|publish] [seconds]      (default: catchup 5)
#   RT_SERVER=path/to/rt-server bench/syscalls.sh ...        (compare two builds)
#
# Uses perf's syscall tracepoints on the rt-server PID (perf stat, no sampling).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SCEN=${1:-catchup}
SECS=${2:-5}
DIR=$ROOT/build/bench/syscalls
mkdir -p "$DIR"
start_redis
start_rt

case "$SCEN" in
  catchup) extra=(--conns 100) ;;
  multi)   extra=(--conns 10 --channels 200) ;;
  publish) extra=(--conns 50) ;;
  *) echo "syscalls: unknown scenario $SCEN" >&2; exit 2 ;;
esac

calls=(epoll_wait epoll_ctl readv read writev write ioctl accept4 close)
events=raw_syscalls:sys_enter
for c in "${calls[@]}"; do events+=",syscalls:sys_enter_$c"; done

# Warm the channel and the server up first, then count over the measured run only.
perf stat -x, -e "$events" -p "$RT_PID" -o "$DIR/$SCEN.stat" &
PERF_PID=$!
sleep 0.3
"$LOADGEN" "$SCEN" --target rt --port "$RT_PORT" --token-file "$DIR/token" --pids "$RT_PID" \
  --duration "$SECS" --warmup 0 --channel "sc$(date +%s)" "${extra[@]}" > "$DIR/$SCEN.result"
kill -INT "$PERF_PID"; wait "$PERF_PID" || true

reqs=$(grep -o 'requests=[0-9]*' "$DIR/$SCEN.result" | cut -d= -f2)
echo "$SCEN: $(grep -o 'rps=[^ ]*' "$DIR/$SCEN.result"), $reqs requests; rt-server system calls per request:"
awk -F, -v n="$reqs" '$3 ~ /sys_enter/ { name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "all";
  printf "  %-11s %6.2f\n", name, $1 / n }' "$DIR/$SCEN.stat"
