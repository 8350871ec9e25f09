#!/usr/bin/env bash
# End to end against the built CLI: `runward serve` on the quick-start demo, its /metrics
# checked by promtool, and the probe endpoints' status codes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNWARD="${RUNWARD:-$ROOT/target/$(rustc -vV | sed -n 's/^host: //p')/debug/runward}"
DEMO="$ROOT/examples/quickstart"
WORK="$(mktemp -d)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
pass=0 fail=0
expect() { # name, expected, actual
  if [ "$2" = "$3" ]; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1: expected $2, got $3"; fi
}

cp -r "$DEMO"/runward.toml "$DEMO"/demo.env "$WORK"/
python3 "$DEMO/make_demo_db.py" "$WORK/data/app.db" >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$RUNWARD" --config "$WORK/runward.toml" serve --addr "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/livez" 2>/dev/null && break
  sleep 0.1
done
sleep 1

code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$1"; }
expect "/livez answers 200" 200 "$(code /livez)"
expect "/readyz answers 200 (optional dependency down: warn)" 200 "$(code /readyz)"
expect "/readyz reports warn" '{"status":"warn"}' "$(curl -s -H 'X-Forwarded-For: 1.2.3.4' "http://127.0.0.1:$PORT/readyz" | python3 -c 'import json,sys; print(json.dumps({"status": json.load(sys.stdin)["status"]}, separators=(",",":")))')"
expect "/startupz answers 200" 200 "$(code /startupz)"
expect "/readyz/db answers 200" 200 "$(code /readyz/db)"
expect "/readyz/nope answers 404" 404 "$(code /readyz/nope)"
expect "health+json content type" "application/health+json" "$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$PORT/healthz")"
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
if promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.txt" 2>&1; then
  expect "promtool check metrics" ok ok
else
  cat "$WORK/promtool.txt"
  expect "promtool check metrics" ok failed
fi
kill -TERM "$PID"
sleep 0.3
expect "readiness fails at once after SIGTERM" 503 "$(code /readyz)"
expect "liveness holds during the drain" 200 "$(code /livez)"
wait "$PID"; status=$?
PID=""
expect "serve exits 0 after the drain" 0 "$status"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
