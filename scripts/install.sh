#!/usr/bin/env bash
# Installs what runward's build and tests need, idempotently. Sourced by setup.sh and test.sh;
# run it directly to install everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ "$apt_updated" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# System packages: promtool (package prometheus) checks the /metrics exposition format; curl
# drives the end-to-end tests.
install_system() {
  apt_install curl ca-certificates
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
}

# A virtualenv with maturin, pytest and the Python test dependencies.
install_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.requirements-stamp"
  local req="$ROOT/bindings/python/requirements-test.txt"
  if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ]; then
    log "pip install -r bindings/python/requirements-test.txt"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r "$req"
    touch "$stamp"
  fi
}

# The Node binding's npm dependencies (napi CLI, TypeScript).
install_node() {
  local dir="$ROOT/bindings/node"
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "npm ci in bindings/node"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  install_system
  install_python
  install_node
fi
