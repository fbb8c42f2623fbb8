#!/usr/bin/env bash
# laserd developer entry point: the README's two quick-start commands.
#
#   ./dev.sh run    set everything up, then run laserd with a simulated controller and mock GPIO
#   ./dev.sh test   set everything up, then run the whole test suite (what CI runs)
#
# Setup is idempotent: Debian packages are installed only when missing (as root, or through
# sudo), and the virtual environment in .venv is created once and refreshed when setup.cfg
# changes.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY=${PYTHON:-python3}
RUN_PKGS=(python3-venv python3-dev gcc pkg-config libsystemd-dev)
TEST_PKGS=(chromium systemd sqlite3 faketime)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_python() {
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "laserd needs Python 3.11 or newer (found: $("$PY" --version 2>&1))." >&2
    exit 1
  fi
}

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  # python3-venv is irrelevant when the interpreter already has a working venv module.
  if [ ${#missing[@]} -gt 0 ] && "$PY" -m venv --help >/dev/null 2>&1; then
    local keep=()
    for p in "${missing[@]}"; do [ "$p" = python3-venv ] || [ "$p" = python3-dev ] || keep+=("$p"); done
    missing=("${keep[@]+"${keep[@]}"}")
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || { echo "please install: ${missing[*]}" >&2; return 0; }
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
  local extras=$1 stamp="$VENV/.laserd-$1"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing laserd and its dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[$extras]"
    touch "$stamp"
  fi
}

cmd=${1:-}
case "$cmd" in
  run)
    need_python
    apt_install "${RUN_PKGS[@]}"
    setup_venv systemd
    say "starting laserd (simulated controller, mock GPIO, state in ./state); Ctrl-C stops it"
    exec "$VENV/bin/laserd" serve --config config/simulate.toml
    ;;
  test)
    need_python
    apt_install "${RUN_PKGS[@]}" "${TEST_PKGS[@]}"
    setup_venv "systemd,test"
    say "ruff"
    "$VENV/bin/ruff" check laserd tests
    say "mypy"
    "$VENV/bin/mypy"
    say "pytest"
    shift
    exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: ./dev.sh run | test [pytest args]" >&2
    exit 2
    ;;
esac
