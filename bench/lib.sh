# Shared by bench/run.sh, profile.sh and syscalls.sh: common settings, and private servers on
# free loopback ports, stopped by their PIDs on exit. Sourced from the repository root
# (rt-server finds server/lua there); the caller sets DIR before starting servers.

ROOT=$PWD
LOADGEN=${LOADGEN:-$ROOT/build/bench/rt-loadgen}
RT_SERVER=${RT_SERVER:-$ROOT/build/rt-server}
THREADS=${BENCH_THREADS:-2}   # rt's --threads and nginx's worker_processes
# The hard file limit bounds held polls per process (no CAP_SYS_RESOURCE to raise it here).
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

PIDS=()
cleanup() {
  local i p
  # Newest first: the HTTP servers before the redis-server they use.
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
    p=${PIDS[$i]}; kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

# stop_pid PID: stops one server we started and forgets it.
stop_pid() {
  local p=$1 keep=() q
  kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL: up to 10 s for a 200.
wait_http() {
  local i
  for i in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ] && return 0
    sleep 0.1
  done
  echo "bench: $1 did not come up" >&2; return 1
}

# With BENCH_PIN=1 the servers (and Redis) run on CPU 0, the generators on CPU 1.
# taskset execs its command, so $! stays the server's own PID.
SERVER_PIN=(); GEN_PIN=()
if [ "${BENCH_PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 0); GEN_PIN=(taskset -c 1)
fi

# Sets REDIS_PORT, REDIS_PID.
start_redis() {
  REDIS_PORT=$(free_port)
  "${SERVER_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$DIR" --logfile "$DIR/redis.log" --daemonize no &
  REDIS_PID=$!; PIDS+=("$REDIS_PID")
  local i
  for i in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null
}

# Sets RT_PORT, RT_PID (the first process), RT_PIDS (all, comma-separated); the publish
# token is in $DIR/token. RT_PROCS (default 1) processes share the port with --reuseport,
# each with RT_THREADS (default $THREADS) worker threads: the way past the per-process file
# limit. Extra arguments go to rt-server (a wrapper such as valgrind can be given in RT_WRAP).
start_rt() {
  RT_PORT=$(free_port)
  # Run a private copy: the server's own helpers may rebuild build/rt-server meanwhile.
  local i k procs=${RT_PROCS:-1} extra=() pids=() log
  for i in $(seq 1 60); do
    [ -x "$RT_SERVER" ] && cp "$RT_SERVER" "$DIR/rt-server" 2>/dev/null && break
    sleep 1
  done
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/token"
  [ "$procs" -gt 1 ] && extra=(--reuseport)
  for k in $(seq 1 "$procs"); do
    log=$DIR/rt-server.log; [ "$procs" -gt 1 ] && log=$DIR/rt-server.$k.log
    "${SERVER_PIN[@]}" ${RT_WRAP:-} "$DIR/rt-server" --listen "127.0.0.1:$RT_PORT" --redis "redis://127.0.0.1:$REDIS_PORT" \
      --publish-token-file "$DIR/token" --poll-timeout 600 --max-held $(( NOFILE * procs + 1000 )) \
      --threads "${RT_THREADS:-$THREADS}" "${extra[@]}" "$@" > "$log" 2>&1 &
    pids+=($!); PIDS+=($!)
  done
  RT_PID=${pids[0]}; RT_PIDS=$(IFS=,; echo "${pids[*]}")
  wait_http "http://127.0.0.1:$RT_PORT/healthz"
}

# stop_rt: stops every rt-server process of the last start_rt.
stop_rt() {
  local p
  for p in ${RT_PIDS//,/ }; do stop_pid "$p"; done
  RT_PID=""; RT_PIDS=""
}

# Sets NGINX_PORT, NGINX_PID (the master; it runs in the foreground: daemon off).
start_nginx() {
  NGINX_PORT=$(free_port)
  mkdir -p "$DIR/tmp"
  sed -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@REDIS_PORT@|$REDIS_PORT|g" \
      -e "s|@WORKERS@|${NGINX_WORKERS:-$THREADS}|g" -e "s|@NOFILE@|$NOFILE|g" \
      -e "s|@REUSEPORT@|${NGINX_REUSEPORT:-}|g" \
      -e "s|@WORKER_CONNECTIONS@|$(( NOFILE - 100 ))|g" bench/nchan/nginx.conf.in > "$DIR/nginx.conf"
  "${SERVER_PIN[@]}" nginx -p "$DIR" -e "$DIR/nginx-error.log" -c "$DIR/nginx.conf" &
  NGINX_PID=$!; PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$NGINX_PORT/floor"
  # Nchan's Redis store connects in each worker after start-up: wait until publishing and a
  # catch-up read work, several times so that every worker has been reached.
  local i ok=0 code
  for i in $(seq 1 100); do
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST -d '{"ready":1}' \
      "http://127.0.0.1:$NGINX_PORT/nchan-r/pub?c=ready" 2>/dev/null || true)
    if [[ "$code" == 20? ]] && [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$NGINX_PORT/nchan-r/sub?c=ready" 2>/dev/null || true)" = 200 ]; then
      ok=$((ok + 1)); [ "$ok" -ge 6 ] && return 0
    else
      ok=0; sleep 0.1
    fi
  done
  echo "bench: Nchan's Redis store did not come up" >&2; return 1
}
