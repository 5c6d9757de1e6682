#!/usr/bin/env bash
# make run: a private redis-server (its own free port, data under run/) and rt-server on
# 127.0.0.1:${RT_PORT:-8080} with a generated publish token (run/token), and the demo site
# (web/, its backend on 127.0.0.1:${DEMO_PORT:-8090}). Prints the URLs and ready-to-paste
# curl commands. Ctrl-C stops everything this script started (by PID).
#
# Environment: RT_PORT (rt-server's port, default 8080), RT_BIN (default build/rt-server),
# RT_ARGS (extra rt-server flags, e.g. "--log-level debug"), RT_CORS_ORIGIN (an origin
# allowed to poll cross-origin; default the demo site's), DEMO_PORT (the demo site's port,
# default 8090; DEMO_PORT=0 runs without the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_DIR=$ROOT/run
RT_PORT=${RT_PORT:-8080}
RT_BIN=${RT_BIN:-build/rt-server}
DEMO_PORT=${DEMO_PORT:-8090}
mkdir -p "$RUN_DIR/redis"

PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3  # pyenv shims can take seconds to start
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_taken() {
  "$PY" -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}
wait_for() {  # wait_for <what> <tries> <command...>: retry every 0.1 s
  local what=$1 tries=$2; shift 2
  for ((i = 0; i < tries; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "run.sh: $what did not come up (see $RUN_DIR/*.log)" >&2
  return 1
}

[ -x "$RT_BIN" ] || { echo "run.sh: $RT_BIN is missing: run 'make server' first" >&2; exit 1; }
if port_taken "$RT_PORT"; then
  echo "run.sh: 127.0.0.1:$RT_PORT is taken; choose another port with RT_PORT=..." >&2
  exit 1
fi
if [ "$DEMO_PORT" != 0 ]; then
  [ -f build/client/rt-client.mjs ] || { echo "run.sh: build/client is missing: run 'make client' first" >&2; exit 1; }
  if port_taken "$DEMO_PORT"; then
    echo "run.sh: 127.0.0.1:$DEMO_PORT is taken; choose another port with DEMO_PORT=..." >&2
    exit 1
  fi
  # The demo's pages poll rt-server cross-origin.
  RT_CORS_ORIGIN=${RT_CORS_ORIGIN:-http://127.0.0.1:$DEMO_PORT}
fi

# Everything started below is stopped by PID on exit, Ctrl-C or kill.
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "run.sh: stopping"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup INT TERM EXIT

# --- redis-server: private, never the system service, never a fixed port -------------------
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$RUN_DIR/redis" --logfile "$RUN_DIR/redis.log" &
PIDS+=($!)
wait_for "redis-server" 50 redis-cli -p "$REDIS_PORT" ping

# --- rt-server ------------------------------------------------------------------------------
if [ ! -s "$RUN_DIR/token" ]; then
  (umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$RUN_DIR/token")
fi
TOKEN=$(cat "$RUN_DIR/token")
RT_FLAGS=(--listen "127.0.0.1:$RT_PORT" --redis "redis://127.0.0.1:$REDIS_PORT"
          --publish-token-file "$RUN_DIR/token")
# The demo backend serves web/ itself (pages, client, API); rt-server serves it only
# without the demo.
if [ "$DEMO_PORT" = 0 ]; then
  if [ -d web/public ]; then RT_FLAGS+=(--web web/public)
  elif [ -d web ]; then RT_FLAGS+=(--web web); fi
fi
[ -n "${RT_CORS_ORIGIN:-}" ] && RT_FLAGS+=(--cors-origin "$RT_CORS_ORIGIN")
# shellcheck disable=SC2206
[ -n "${RT_ARGS:-}" ] && RT_FLAGS+=($RT_ARGS)
"$RT_BIN" "${RT_FLAGS[@]}" 2> >(tee "$RUN_DIR/rt-server.log" >&2) &
PIDS+=($!)
wait_for "rt-server" 100 curl -sf "http://127.0.0.1:$RT_PORT/healthz"

# --- the demo site: pages, client and API on one origin; publishes with run/token ----------
DEMO=http://127.0.0.1:$DEMO_PORT
if [ "$DEMO_PORT" != 0 ]; then
  node web/backend/server.mjs --port "$DEMO_PORT" --rt-url "http://127.0.0.1:$RT_PORT" \
    --token-file "$RUN_DIR/token" --client-dir build/client > "$RUN_DIR/demo.log" 2>&1 &
  PIDS+=($!)
  wait_for "demo backend" 100 curl -sf "$DEMO/api/config"
fi

# --- more processes go here: start them, append their PIDs to PIDS ---------------------------

BASE=http://127.0.0.1:$RT_PORT
cat <<INFO

rt is running (Ctrl-C stops it)
  rt-server    $BASE   (log: run/rt-server.log)
  redis-server 127.0.0.1:$REDIS_PORT   (redis-cli -p $REDIS_PORT)
  health       $BASE/healthz
  metrics      $BASE/metrics
  token        run/token
INFO
if [ "$DEMO_PORT" != 0 ]; then
  cat <<INFO
  demo site    $DEMO/   (a thread: $DEMO/thread.html?id=1; log: run/demo.log)
INFO
fi
cat <<INFO

Publish a message:
  curl -s -X POST -H "Authorization: Bearer \$(cat run/token)" -H 'Content-Type: application/json' \\
       -d '{"comment":"hello"}' '$BASE/publish?c=demo'

Poll (waits for the next message after id 0, or answers at once when there is one):
  curl -s '$BASE/rt?c=demo&m=0'

INFO

# Stop when any child exits (or on Ctrl-C via the trap).
wait -n "${PIDS[@]}" || true
