#!/usr/bin/env bash
# Builds the addon and packs the `runward` npm package with its native binary, ready for
# `npm install <file>.tgz` in any project on this platform.
#
#   bindings/node/pack.sh [DEST]          release build, the tarball goes to DEST (default .)
#   DEBUG=1 bindings/node/pack.sh [DEST]  debug build (fast; for tests)
#   NO_BUILD=1 bindings/node/pack.sh      pack the addon already built here
#
# Prints the path of the tarball. Needs Rust (cargo) and the dev dependencies (`npm ci`).
set -euo pipefail

cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
dest="$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# napi builds for an explicit target; the workspace scripts name the same one (scripts/install.sh).
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"

if [ ! -f node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
if [ -z "${NO_BUILD:-}" ]; then
  flags=(--platform --js binding.js --dts binding.d.ts)
  [ -n "${DEBUG:-}" ] || flags+=(--release)
  npx napi build "${flags[@]}" >&2
fi
if ! ls ./*.node >/dev/null 2>&1; then
  echo "no native addon (*.node) here: run without NO_BUILD to build it" >&2
  exit 1
fi
tarball="$(npm pack --silent --pack-destination "$dest")"
echo "$dest/$tarball"
