#!/usr/bin/env bash
# Installs the system packages runward's tests need, idempotently. Sourced by setup.sh and
# test.sh; the Python and Node suites install their own packages (bindings/*/run-tests.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# One set of build artifacts for cargo, maturin and napi. napi always passes
# `--target <triple>`, which puts its build under target/<triple>/; naming the host triple for
# every build puts them all there, so the bindings reuse what the workspace built.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
# The debug `runward` binary those builds produce.
RUNWARD_BIN="$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug/runward"

# Progress lines go to stderr, in bold only on a terminal and when NO_COLOR is unset.
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
else
  log() { printf '==> %s\n' "$*" >&2; }
fi

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

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  install_system
fi
