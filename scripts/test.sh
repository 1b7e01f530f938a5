#!/usr/bin/env bash
# The full test suite, on a fresh machine or a developer's: installs the project in
# its virtual environment, sets up the engine (installing and starting what is
# missing), runs pytest, and stops the engine again if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(bash scripts/venv.sh test)
started_here=0
docker info >/dev/null 2>&1 || started_here=1
bash scripts/engine.sh up
if [ "$started_here" = 1 ]; then
  trap 'bash scripts/engine.sh down' EXIT
  # Only an engine this script started may be restarted by the tests.
  export RECONCILER_ENGINE_RESTARTABLE=1
fi
"$python" -m pytest "$@"
