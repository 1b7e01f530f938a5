#!/usr/bin/env bash
# Bring up examples/stack.yaml on this machine, installing and starting what is
# missing (the project in its virtual environment, Docker engine, base image), then
# show its status.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(bash scripts/venv.sh)
bash scripts/engine.sh up
"$python" -m reconciler apply -f examples/stack.yaml
echo
"$python" -m reconciler status -f examples/stack.yaml
