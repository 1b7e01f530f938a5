#!/usr/bin/env bash
# The full test suite, on a fresh machine or a developer's: installs the project in
# its virtual environment, sets up the engine (installing and starting what is
# missing) and a btrfs on a loop device for the btrfs driver (scripts/btrfs.sh; skipped, with a line
# saying so, where the kernel has no btrfs or loop devices), runs pytest, and stops the engine and
# unmounts the btrfs again if this script started them. The fleet
# tests start three extra engines of their own (scripts/engines.sh, as root) and stop them.
#
#   scripts/test.sh [PYTEST ARGS]           everything (CI runs exactly this): three pytest runs at once,
#                                           tests/unit, the integration modules on engines of their own
#                                           (ENGINES_LANE) and the rest of tests/integration (paths given: one run)
#   scripts/test.sh --unit [PYTEST ARGS]    the edit-test loop: tests/unit only (or the paths given),
#                                           which need no engine; none is started, stopped or restarted
# Other arguments go to pytest unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

# The integration modules whose tests run on engines of their own (scripts/engines.sh: the fleet's three, the
# swarms'), each set with its own state folder, address prefix and bridge: they run in a pytest of their own
# beside the rest, which is mostly waiting on engines too. They still use the default engine a little (fixtures,
# cleanups, the base image engines.sh loads from it), so the tests that restart it (marked restarts_engine) wait
# for this lane to end. A module that restarts the default engine, or needs the machine quiet, stays out of it.
ENGINES_LANE=(tests/integration/test_fleet.py tests/integration/test_swarm.py
              tests/integration/test_swarm_failover.py tests/integration/test_swarm_rollout.py)

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
  mkdir "$basetemp/unit" "$basetemp/integration" "$basetemp/engines"
  "$python" -m pytest --basetemp "$basetemp/unit" -o testpaths=tests/unit "$@" >"$basetemp/unit.log" 2>&1 &
  unit=$!
fi
started_here=0
docker info >/dev/null 2>&1 || started_here=1
btrfs_root="${RECONCILER_BTRFS_ROOT:-/var/lib/reconciler-btrfs/mnt}"
btrfs_here=0
mountpoint -q "$btrfs_root" 2>/dev/null || btrfs_here=1
fleet_before="-"  # until it is known: engines.sh down only for a run that found no fleet engines running
lane=""
cleanup() {
  if [ -n "$unit" ]; then kill "$unit" 2>/dev/null || true; fi
  if [ -n "$lane" ]; then kill "$lane" 2>/dev/null || true; wait "$lane" 2>/dev/null || true; fi
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
ignored=()
for module in "${ENGINES_LANE[@]}"; do ignored+=(--ignore "$module"); done
# The lane holds a shared lock on this file from before it starts until it ends (its pytest inherits the
# descriptor; subprocesses do not): tests that restart the default engine take it exclusively (conftest.py).
export RECONCILER_ENGINE_LOCK="$basetemp/engine.lock"
exec 9>"$RECONCILER_ENGINE_LOCK"
flock -s 9
"$python" -m pytest --basetemp "$basetemp/engines" "${ENGINES_LANE[@]}" "$@" >"$basetemp/engines.log" 2>&1 &
lane=$!
exec 9>&-
set +e
"$python" -m pytest --basetemp "$basetemp/integration" -o testpaths=tests/integration "${ignored[@]}" "$@"
integration_code=$?
wait "$lane"
lane_code=$?
lane=""
wait "$unit"
unit_code=$?
unit=""
set -e
echo "==================== ${ENGINES_LANE[*]} (run beside the rest of tests/integration) ===================="
cat "$basetemp/engines.log"
echo "==================== tests/unit (run while the engine was set up and beside tests/integration) ===================="
cat "$basetemp/unit.log"
# 5 is pytest's "no tests collected": a -k that matches only some of the runs leaves the others empty.
codes=("$integration_code" "$lane_code" "$unit_code")
for code in "${codes[@]}"; do
  if [ "$code" != 5 ]; then
    for code in "${codes[@]}"; do [ "$code" = 0 ] || [ "$code" = 5 ] || exit "$code"; done
    exit 0
  fi
done
exit 5
