#!/usr/bin/env bash
# The project's virtual environment, made and kept up to date idempotently:
#   scripts/venv.sh [EXTRAS]   e.g. "scripts/venv.sh test" installs -e '.[test]'
# prints the venv's python on stdout (everything else goes to stderr).
#   RECONCILER_PYTHON  the interpreter the venv is made from (default: python3 on PATH)
#   RECONCILER_VENV    where the venv lives (default: .venv in the repository)
# Debian's python3 has no venv/ensurepip until python3-venv is installed (and PEP 668
# forbids installing into it), so that package is installed with apt when missing.
# The install is skipped while pyproject.toml is unchanged since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${RECONCILER_PYTHON:-python3}"
VENV="${RECONCILER_VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
EXTRAS="${1:-}"
STAMP="$VENV/.reconciler-stamp"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "venv: $*" >&2; }
die() { log "$*"; exit 1; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "cannot install $* without apt-get; install it and run again"
  log "installing $* with apt"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}

can_make_venvs() { "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; }

# The real interpreter behind a command (a pyenv shim, a symlink) and its version.
identity() { "$1" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)), sys.version.split()[0])'; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  [ "$PYTHON" = python3 ] || die "RECONCILER_PYTHON=$PYTHON: no such interpreter"
  apt_install python3 python3-venv
fi
if ! can_make_venvs; then
  apt_install python3-venv
  can_make_venvs || die "$PYTHON cannot make virtual environments (no venv/ensurepip); on Debian install python3.X-venv for its version"
fi

wanted=$(identity "$PYTHON")
if [ -x "$VENV/bin/python" ] && [ "$(identity "$VENV/bin/python" 2>/dev/null)" = "$wanted" ]; then
  :  # reuse it
elif [ -e "$VENV" ] && [ -n "$(ls -A "$VENV")" ] && [ ! -f "$STAMP" ]; then
  die "$VENV exists, was not made by this script and does not run $wanted; remove it or set RECONCILER_VENV"
else
  log "creating $VENV with $wanted"
  "$PYTHON" -m venv --clear "$VENV" >&2
  echo "-" >"$STAMP"  # ours, nothing installed yet
fi

hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
have_hash="" have_extras=""
[ ! -f "$STAMP" ] || read -r have_hash have_extras <"$STAMP" || true
# Skipped while pyproject.toml is unchanged; an install with extras also covers one without.
if [ "$have_hash" != "$hash" ] || { [ -n "$EXTRAS" ] && [ "$have_extras" != "$EXTRAS" ]; }; then
  spec="."
  [ -z "$EXTRAS" ] || spec=".[$EXTRAS]"
  log "installing -e '$spec' into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" >&2
  echo "$hash $EXTRAS" >"$STAMP"
fi
# The install is editable: compile what changed since, so no command compiles our modules from source on
# every start (PYTHONDONTWRITEBYTECODE=1, common on CI machines, stops Python from caching them itself).
"$VENV/bin/python" -m compileall -q reconciler plugins >/dev/null
echo "$VENV/bin/python"
