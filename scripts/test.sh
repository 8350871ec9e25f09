#!/usr/bin/env bash
# Runs every test suite: Rust (fmt, clippy, unit, integration, doc tests), the CLI end to end,
# Python, Node, and the README tried as a newcomer would. Each suite is a function; pass names
# to run only some:
#   scripts/test.sh rust cli python node readme
# One cargo target directory serves every step.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/install.sh"
cd "$ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

suite_rust() {
  log "rust: fmt"
  cargo fmt --all -- --check
  log "rust: clippy (core, CLI and both bindings)"
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  log "rust: tests (core + CLI, including doc tests)"
  cargo test --quiet
}

suite_cli() {
  install_system
  log "cli: end-to-end (serve, SIGTERM sequence, promtool)"
  cargo build --quiet -p runward-cli
  RUNWARD="$RUNWARD_BIN" bash tests/e2e/serve.sh
  log "cli: hostile clients against runward serve"
  RUNWARD_BIN="$RUNWARD_BIN" python3 tests/e2e/hostile/suite.py cli
}

suite_python() {
  log "python: maturin develop + pytest (packages into .venv)"
  bash bindings/python/run-tests.sh
  log "python: hostile clients against Health.serve"
  PYTHON="${RUNWARD_VENV:-${VENV:-$ROOT/.venv}}/bin/python" python3 tests/e2e/hostile/suite.py python
}

suite_node() {
  log "node: napi build + node --test + tsc (packages into bindings/node/node_modules)"
  bash bindings/node/run-tests.sh
  log "node: hostile clients against health.serve"
  python3 tests/e2e/hostile/suite.py node
}

suite_readme() {
  install_system
  log "readme: setup.sh, pip install, the packed npm package, cargo install, the snippets"
  bash tests/e2e/readme.sh
}

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(rust cli python node readme)
timings=()
for suite in "${suites[@]}"; do
  started=$SECONDS
  "suite_$suite"
  timings+=("$suite $((SECONDS - started)) s")
done
log "all suites passed: ${suites[*]}"
log "wall time per suite: $(IFS=,; echo "${timings[*]}" | sed 's/,/, /g')"
