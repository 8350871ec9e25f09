#!/usr/bin/env bash
# Builds the `runward` Python package into a virtualenv and runs its test suite.
#
#   bindings/python/run-tests.sh [pytest arguments...]
#
# The virtualenv is $RUNWARD_VENV or $VENV (default: <repo>/.venv), created with $PYTHON (default:
# python3) when missing; requirements-test.txt is installed when it changed. Cargo builds into
# $CARGO_TARGET_DIR (default: <repo>/target, shared with the workspace). Exits non-zero when
# the build or any test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${RUNWARD_VENV:-${VENV:-$root/.venv}}"

if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
stamp="$venv/.runward-requirements"
if ! cmp -s "$here/requirements-test.txt" "$stamp" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt"
    cp "$here/requirements-test.txt" "$stamp"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# The same explicit target as the workspace and napi builds (scripts/install.sh).
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
cd "$here"
maturin develop --quiet
python -m pytest -q "$@"
