#!/usr/bin/env bash
# Builds the Node binding and runs its tests (Rust unit tests of the conversions, node:test
# suites) and the TypeScript check. Exits non-zero on any failure.
#
#   bindings/node/run-tests.sh            debug build (fast), tests, typecheck
#   RELEASE=1 bindings/node/run-tests.sh  release build
set -euo pipefail

cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# napi builds for an explicit target; the workspace scripts name the same one (scripts/install.sh).
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"

# npm dependencies, idempotently: `npm ci` installs exactly the committed lockfile, and runs
# again only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

build_flags=(--platform --js binding.js --dts binding.d.ts)
if [ "${RELEASE:-}" = 1 ]; then
  build_flags+=(--release)
fi
npx napi build "${build_flags[@]}"

# The generated loader and declarations are committed: fail when a build changes them.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
  && git -C "$root" ls-files --error-unmatch bindings/node/binding.d.ts >/dev/null 2>&1; then
  if ! git -C "$root" diff --exit-code -- bindings/node/binding.js bindings/node/binding.d.ts; then
    echo "binding.js or binding.d.ts changed when rebuilt: commit the regenerated files" >&2
    exit 1
  fi
fi

cargo test -p runward-node --quiet
node --test __test__/
npx tsc --noEmit -p __test__/tsconfig.json
echo "node binding: tests and typecheck passed"
