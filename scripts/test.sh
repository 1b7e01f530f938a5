#!/usr/bin/env bash
# The full test suite, on a fresh machine or a developer's: installs the project in
# its virtual environment, sets up the engine (installing and starting what is
# missing) and a btrfs on a loop device for the btrfs driver (scripts/btrfs.sh; skipped, with a line
# saying so, where the kernel has no btrfs or loop devices), runs pytest, and stops the engine and
# unmounts the btrfs again if this script started them. The fleet
# tests start three extra engines of their own (scripts/engines.sh, as root) and stop them.
#
#   scripts/test.sh [PYTEST ARGS]           everything (CI runs exactly this): tests/unit beside
#                                           tests/integration, two pytest runs at once (paths given: one run)
#   scripts/test.sh --unit [PYTEST ARGS]    the edit-test loop: tests/unit only (or the paths given),
#                                           which need no engine; none is started, stopped or restarted
# Other arguments go to pytest unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(bash scripts/venv.sh test)
if [ "${1:-}" = "--unit" ]; then
  shift
  basetemp=$(mktemp -d -t reconciler-tests.XXXXXX)  # as below: pruned by no other pytest
  trap 'rm -rf "$basetemp"' EXIT
  # testpaths applies only when no path is given: "--unit tests/unit/test_plan.py -k noop" runs just that.
  "$python" -m pytest --basetemp "$basetemp" -o testpaths=tests/unit "$@"
  exit
fi
# A temporary folder of this run's own: pytest prunes all but the newest three numbered folders
# under /tmp/pytest-of-USER, so another pytest on the machine would delete a running suite's files.
basetemp=$(mktemp -d -t reconciler-tests.XXXXXX)
given_paths=0
for arg in "$@"; do [ -e "$arg" ] && given_paths=1; done
unit=""
if [ "$given_paths" = 0 ]; then
  # The whole suite: tests/unit needs no engine, so it runs (its own pytest and temporary folder) while the
  # engine is installed and started and then beside tests/integration; its report follows the other's.
  mkdir "$basetemp/unit" "$basetemp/integration"
  "$python" -m pytest --basetemp "$basetemp/unit" -o testpaths=tests/unit "$@" >"$basetemp/unit.log" 2>&1 &
  unit=$!
fi
started_here=0
docker info >/dev/null 2>&1 || started_here=1
btrfs_root="${RECONCILER_BTRFS_ROOT:-/var/lib/reconciler-btrfs/mnt}"
btrfs_here=0
mountpoint -q "$btrfs_root" 2>/dev/null || btrfs_here=1
fleet_before="-"  # until it is known: engines.sh down only for a run that found no fleet engines running
cleanup() {
  if [ -n "$unit" ]; then kill "$unit" 2>/dev/null || true; fi
  rm -rf "$basetemp"
  if [ -z "$fleet_before" ]; then bash scripts/engines.sh down || true; fi
  if [ "$started_here" = 1 ]; then bash scripts/engine.sh down || true; fi
  if [ "$btrfs_here" = 1 ]; then bash scripts/btrfs.sh down || true; fi
}
trap cleanup EXIT
bash scripts/engine.sh up
# The btrfs driver's tests need a mounted btrfs (tests/integration/test_btrfs_driver.py skips without one).
set +e
btrfs_line=$(bash scripts/btrfs.sh up)
btrfs_code=$?
set -e
if [ "$btrfs_code" = 0 ]; then
  export "${btrfs_line?}"
elif [ "$btrfs_code" = 3 ]; then
  btrfs_here=0
  echo "btrfs: this machine cannot mount a btrfs on a loop device: the btrfs driver's tests are skipped" >&2
else
  exit "$btrfs_code"
fi
if [ "$started_here" = 1 ]; then
  # Only an engine this script started may be restarted by the tests.
  export RECONCILER_ENGINE_RESTARTABLE=1
fi
# The fleet tests start extra engines (scripts/engines.sh) and stop them; should pytest be
# killed first, nothing of them may outlive the run (namespaces, bridge, iptables rule).
fleet_before=$(bash scripts/engines.sh list 2>/dev/null || true)
if [ "$given_paths" = 1 ]; then
  "$python" -m pytest --basetemp "$basetemp" "$@"
  exit
fi
set +e
"$python" -m pytest --basetemp "$basetemp/integration" -o testpaths=tests/integration "$@"
integration_code=$?
wait "$unit"
unit_code=$?
unit=""
set -e
echo "==================== tests/unit (run while the engine was set up and beside tests/integration) ===================="
cat "$basetemp/unit.log"
# 5 is pytest's "no tests collected": a -k that matches only one half leaves the other empty.
if [ "$integration_code" = 5 ] && [ "$unit_code" != 5 ]; then integration_code=0; fi
if [ "$unit_code" = 5 ] && [ "$integration_code" != 5 ]; then unit_code=0; fi
if [ "$integration_code" != 0 ]; then exit "$integration_code"; fi
exit "$unit_code"
