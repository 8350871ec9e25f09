#!/usr/bin/env bash
# Tries README.md as a newcomer would, from clean directories: scripts/setup.sh, `pip install
# ./bindings/python` into a fresh virtualenv, the packed npm package installed in an empty
# project, `cargo install --path crates/runward-cli`, and the README's Python and Node snippets
# run exactly as printed. Expects the Python and Node suites to have run (their builds are
# reused). Exits non-zero at the first failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/scripts/install.sh"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { echo "not ok - $*" >&2; exit 1; }

# The n-th fenced block of `lang` in README.md (1-based), exactly as printed.
snippet() {
  python3 - "$ROOT/README.md" "$1" "${2:-1}" <<'PY'
import sys
text, lang, n = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3])
blocks = text.split("```" + lang + "\n")[1:]
print(blocks[n - 1].split("\n```")[0])
PY
}

# 1. scripts/setup.sh: the run id printed, its scratch removed, no ANSI off a terminal.
mkdir "$WORK/tmp"
TMPDIR="$WORK/tmp" bash "$ROOT/scripts/setup.sh" >"$WORK/setup.log" 2>&1 ||
  { cat "$WORK/setup.log"; fail "scripts/setup.sh exits 0"; }
if grep -q $'\x1b' "$WORK/setup.log"; then fail "setup writes no ANSI escapes when not on a terminal"; fi
if grep -q '<run id>' "$WORK/setup.log"; then fail "setup prints the run id, not a placeholder"; fi
uuid='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
id="$(grep -oE "runbook export $uuid" "$WORK/setup.log" | head -1 | cut -d' ' -f3)"
[ -n "$id" ] || fail "setup prints the export command with the run's id"
[ -z "$(ls -A "$WORK/tmp")" ] || fail "setup leaves nothing in TMPDIR: $(ls -A "$WORK/tmp")"
grep -q "The event chain verifies" "$ROOT/target/setup-demo/evidence.md" ||
  fail "setup writes verified evidence"
(cd "$ROOT/target/setup-demo" && "$RUNWARD_BIN" runbook export "$id" --format json >/dev/null) ||
  fail "the printed export command works"
ok "scripts/setup.sh"

# 2. pip install ./bindings/python into a fresh virtualenv, then the README's Python snippet.
python3 -m venv "$WORK/venv"
# The dev profile reuses the test build; a user's `pip install` builds a release.
MATURIN_PEP517_ARGS="--profile dev" "$WORK/venv/bin/pip" install --quiet \
  --disable-pip-version-check "$ROOT/bindings/python" || fail "pip install ./bindings/python"
snippet python >"$WORK/snippet.py"
(cd "$WORK" && "$WORK/venv/bin/python" snippet.py) >"$WORK/python.out" ||
  fail "the README's Python snippet runs"
grep -q '^200 ' "$WORK/python.out" || fail "the Python snippet prints 200: $(cat "$WORK/python.out")"
ok "pip install and the README's Python snippet"

# 3. The packed npm package in an empty project, then the README's Node snippet as app.mjs.
if ls "$ROOT"/bindings/node/*.node >/dev/null 2>&1; then pack_env=(NO_BUILD=1); else pack_env=(DEBUG=1); fi
tarball="$(env "${pack_env[@]}" bash "$ROOT/bindings/node/pack.sh" "$WORK/pack")"
mkdir "$WORK/app"
(cd "$WORK/app" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "$tarball" >/dev/null) ||
  fail "npm install of the packed package"
snippet js >"$WORK/app/app.mjs"
(cd "$WORK/app" && node app.mjs) >"$WORK/node.out" || fail "the README's Node snippet runs as an ES module"
grep -q '^200 ' "$WORK/node.out" || fail "the Node snippet prints 200: $(cat "$WORK/node.out")"
(cd "$WORK/app" && node -e "const { Health, RunwardError } = require('runward'); if (typeof Health !== 'function' || typeof RunwardError !== 'function') process.exit(1)") ||
  fail "CommonJS require('runward') gives the same names"
ok "the packed npm package, ES module and CommonJS, and the README's Node snippet"

# 4. cargo install --path crates/runward-cli (debug here, to reuse the build).
cargo install --quiet --debug --locked --path "$ROOT/crates/runward-cli" --root "$WORK/cargo" ||
  fail "cargo install --path crates/runward-cli"
"$WORK/cargo/bin/runward" --version | grep -q '^runward ' || fail "the installed runward runs"
ok "cargo install --path crates/runward-cli"

echo "readme: $passed passed"
