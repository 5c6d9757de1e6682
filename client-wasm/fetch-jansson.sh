#!/usr/bin/env bash
# Fetches Debian's `jansson` source package and unpacks it under $1 (default
# build/client/jansson-src), for the wasm build of jansson. Skips every step already done:
# the unpacked tree is marked by a stamp file. Uses a private apt state directory so the
# machine's own apt configuration and lists are never touched (and no root is needed for
# the source download itself).
#
# Usage: client-wasm/fetch-jansson.sh [DEST_DIR]
# Prints the path of the unpacked source tree (containing src/ and jansson_config.h.in).
set -euo pipefail

dest="${1:-build/client/jansson-src}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
stamp="$dest/.unpacked"

if [ -f "$stamp" ]; then
  cat "$stamp"
  exit 0
fi

apt_dir="$dest/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"

# Use the mirror the machine already uses (deb822 or one-line sources), else deb.debian.org.
mirror=""
suite=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  m=$(awk '/^URIs:/ {print $2; exit}' "$f")
  s=$(awk '/^Suites:/ {print $2; exit}' "$f")
  if [ -n "$m" ] && [[ "$m" != *security* ]]; then mirror="$m"; suite="$s"; break; fi
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  line=$(grep -E '^deb[[:space:]]' /etc/apt/sources.list | grep -v security | head -1 || true)
  if [ -n "$line" ]; then
    mirror=$(awk '{print $2}' <<<"$line"); suite=$(awk '{print $3}' <<<"$line")
  fi
fi
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
if [ -z "$suite" ]; then
  suite=$( (. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}") 2>/dev/null || echo bookworm)
fi

printf 'deb-src %s %s main\n' "$mirror" "$suite" > "$apt_dir/sources.list"

apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Debug::NoLocking=1"
)
# As root, apt would drop privileges to _apt, which cannot write our private dirs.
if [ "$(id -u)" -eq 0 ]; then apt_opts+=(-o "APT::Sandbox::User=root"); fi

echo "fetch-jansson: apt-get update ($mirror $suite, private lists)" >&2
apt-get "${apt_opts[@]}" update -qq >&2

dl="$dest/dl"
mkdir -p "$dl"
if ! ls "$dl"/jansson_*.dsc >/dev/null 2>&1; then
  echo "fetch-jansson: apt-get source --download-only jansson" >&2
  (cd "$dl" && apt-get "${apt_opts[@]}" source --download-only jansson >&2)
fi
dsc=$(ls "$dl"/jansson_*.dsc | head -1)

tree="$dest/jansson"
rm -rf "$tree"
# --no-check: the private apt run above already verified the files against the signed
# Sources index; the .dsc signing key is not needed here.
dpkg-source --no-check -x "$dsc" "$tree" >&2
[ -f "$tree/src/jansson.h" ] || { echo "fetch-jansson: unpacked tree lacks src/jansson.h" >&2; exit 1; }
echo "$tree" > "$stamp"
echo "$tree"
