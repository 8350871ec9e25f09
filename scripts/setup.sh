#!/usr/bin/env bash
# First command on a fresh machine: installs what runward needs, builds the CLI, and runs the
# health checks of the quick-start demo on the embedded default (SQLite, state in .runward/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/install.sh"

install_system

log "building the runward CLI"
cargo build --quiet -p runward-cli --manifest-path "$ROOT/Cargo.toml"
RUNWARD="$ROOT/target/debug/runward"

DEMO="$ROOT/examples/quickstart"
log "preparing the demo database ($DEMO/data/app.db)"
python3 "$DEMO/make_demo_db.py" "$DEMO/data/app.db"

log "runward doctor --fix (creates missing directories)"
"$RUNWARD" --config "$DEMO/runward.toml" doctor --fix || true

log "runward check"
status=0
"$RUNWARD" --config "$DEMO/runward.toml" check || status=$?
case "$status" in
  0) log "all checks pass" ;;
  3) log "checks pass with warnings (optional dependencies are degraded)" ;;
  *) log "some checks fail (exit $status): see the table above"; exit "$status" ;;
esac
