#!/usr/bin/env bash
# Bring up examples/stack.yaml on this machine, installing and starting what is
# missing (Docker engine, base image, the project itself), then show its status.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/engine.sh up
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e .
python3 -m reconciler apply -f examples/stack.yaml
echo
python3 -m reconciler status -f examples/stack.yaml
