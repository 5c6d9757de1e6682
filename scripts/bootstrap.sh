#!/usr/bin/env bash
# Installs what rt needs on a fresh Debian machine (the base image has g++, cmake, node, npm).
# Idempotent: packages already present are skipped, and apt-get update runs only when
# something is missing. Usage: scripts/bootstrap.sh [server|client|e2e|bench|topology|fuzz|all]...
set -euo pipefail
what=("$@"); [ ${#what[@]} -eq 0 ] && what=(all)

server_pkgs=(pkg-config libevent-dev libhiredis-dev libjansson-dev libcmocka-dev redis-server redis-tools curl
             python3-redis ruby-redis)  # the last two: the integration test of README's publishers
client_pkgs=(emscripten)
e2e_pkgs=(chromium)
bench_pkgs=(nginx libnginx-mod-nchan wrk)
topology_pkgs=(nginx)
# The fuzz targets (tests/fuzz/): clang with libFuzzer and its sanitizer runtimes.
fuzz_pkgs=(clang libfuzzer-14-dev)

want=()
for w in "${what[@]}"; do
  case "$w" in
    server) want+=("${server_pkgs[@]}") ;;
    client) want+=("${server_pkgs[@]}" "${client_pkgs[@]}") ;;
    e2e)    want+=("${server_pkgs[@]}" "${client_pkgs[@]}" "${e2e_pkgs[@]}") ;;
    bench)  want+=("${server_pkgs[@]}" "${bench_pkgs[@]}") ;;
    topology) want+=("${server_pkgs[@]}" "${topology_pkgs[@]}") ;;
    fuzz)   want+=("${server_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
    all)    want+=("${server_pkgs[@]}" "${client_pkgs[@]}" "${e2e_pkgs[@]}" "${topology_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
    *) echo "bootstrap: unknown part '$w'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# de-duplicate
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # redis-server's and nginx's postinst may try to start the system service; we never use it.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Stop system services the packages may have started: rt runs its own private instances.
  for svc in redis-server nginx; do
    if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi
exit 0
