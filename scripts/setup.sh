#!/usr/bin/env bash
# First command on a fresh machine: installs what runward needs, builds the CLI, and runs the
# health checks of the quick-start demo on the embedded default (SQLite, state in .runward/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/install.sh"

install_system

log "building the runward CLI"
cargo build --quiet -p runward-cli --manifest-path "$ROOT/Cargo.toml"
RUNWARD="$RUNWARD_BIN"

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

log "a durable runbook: the controlled restart of the demo service (examples/runbooks)"
# The run's state and evidence stay in target/setup-demo (ignored by git), so the commands
# printed below keep working; the demo service's scratch data goes away on exit.
RUNS="$ROOT/target/setup-demo"
rm -rf "$RUNS"
mkdir -p "$RUNS"
SCRATCH="$(mktemp -d)"
python3 "$ROOT/examples/demo_service/demo_service.py" --port 0 --data "$SCRATCH/data" \
  --port-file "$SCRATCH/port" --startup-delay 0 >"$SCRATCH/service.log" 2>&1 &
SERVICE_PID=$!
trap 'kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
for _ in $(seq 1 100); do [ -s "$SCRATCH/port" ] && break; sleep 0.1; done
PORT="$(cat "$SCRATCH/port")"
cd "$RUNS"
"$RUNWARD" runbook run "$ROOT/examples/runbooks/controlled-restart-demo.toml" \
  --param "service_url=http://127.0.0.1:$PORT" --as "${USER:-setup}"
"$RUNWARD" runbook list
RUN_ID="$("$RUNWARD" runbook list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')"
"$RUNWARD" runbook export "$RUN_ID" -o evidence.md
log "its evidence, hash chain verified: $RUNS/evidence.md"
log "again, or as JSON: cd $RUNS && $RUNWARD runbook export $RUN_ID --format json"
log "the CLI is $RUNWARD; put it on PATH with: cargo install --path $ROOT/crates/runward-cli"
