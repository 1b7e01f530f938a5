#!/usr/bin/env python3
"""Swarm no-op ``reconcile plan`` against a floor of the same list calls made with docker-py, in the same run.

    python bench/bench_swarm.py                    # 30 services, 9 repeats: about a minute on 2 cores
    python bench/bench_swarm.py --services 30 --repeats 9

Needs root: it uses engine 4 of ``scripts/engines.sh`` as a Swarm manager
(``engines.sh swarm 4``, with the state directory, prefix and bridge the
swarm tests use; left running when it was running before, else torn down at
the end). Untimed, it applies a stack of N services (``runtime: swarm``, one
task each) and waits for them to run; then it times, as whole processes
(wall clock), alternating which goes first:

  ours    ``reconcile plan`` of the converged stack (no changes);
  floor   a Python process that imports docker-py, makes a client
          (``version="auto"``) and makes the list calls the plan makes:
          images, the stack's networks, volumes, services and containers,
          its services' tasks, and every network (the ID → name map that
          live services need).

It prints both medians and ours / floor next to the target (<= 1.5), then
the same comparison inside one warm process (imports done, clients reused:
what a pass of ``reconcile watch`` or the daemon pays). A
benchmark, not a test: the exit code is 1 only when something failed. The
stack is ``bswarm-<id>``, destroyed at the end; state and locks in a temp dir.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_apply import IMAGE, BenchError, exit_with, log, run_child, run_on_extra_engines

from reconciler.labels import STACK as STACK_LABEL

from reconciler.waiting import PollTimeout, poll_until

REPO = Path(__file__).resolve().parents[1]
ENGINES = REPO / "scripts" / "engines.sh"
MANAGER_URL = "unix:///run/reconciler-host4.sock"
SWARM_ENV = {"RECONCILER_ENGINES_STATE": os.environ.get("RECONCILER_SWARM_STATE", "/tmp/reconciler-swarm"),
             "RECONCILER_ENGINES_PREFIX": "10.233.0", "RECONCILER_ENGINES_BRIDGE": "rcswarm0"}
TARGET = 1.5

FLOOR = '''
import sys
import docker

stack, url = sys.argv[1], sys.argv[2]
api = docker.APIClient(base_url=url, version="auto", timeout=120)
owned = {"label": [f"@STACK_LABEL@={stack}"]}
api.images()
api.networks(filters=owned)
api.volumes(filters=owned)
services = api.services(filters=owned)
api.containers(all=True, filters=owned)
api.tasks(filters={"service": [s["Spec"]["Name"] for s in services]})
api.networks()
'''.replace("@STACK_LABEL@", STACK_LABEL)  # the floor imports docker only: the label is written into its text


# Both sides again inside one warm process (imports done, one client each, reused): what a pass of
# `reconcile watch` or the daemon costs, without the interpreter's and the CLI's start-up.
IN_PROCESS = '''
import json, statistics, sys, time
import docker
from reconciler.labels import owner_selector
from reconciler.reconcile import Reconciler
from reconciler.spec import load_desired

spec, url, stack, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
reconciler = Reconciler(engine_url=url, plugin_modules=["reconciler_swarm"])
desired = load_desired([spec], drivers=reconciler.driver_catalog())
api = docker.APIClient(base_url=url, version="auto", timeout=120)
owned = {"label": [owner_selector(stack)]}

def floor():
    api.images(); api.networks(filters=owned); api.volumes(filters=owned)
    services = api.services(filters=owned)
    api.containers(all=True, filters=owned)
    api.tasks(filters={"service": [s["Spec"]["Name"] for s in services]}); api.networks()

def ours():
    plan, _ = reconciler.plan(desired)
    assert plan.empty, plan

times = {"ours": [], "floor": []}
ours(), floor()
for rep in range(repeats):
    for side, call in ((("ours", ours), ("floor", floor)) if rep % 2 == 0 else (("floor", floor), ("ours", ours))):
        start = time.perf_counter(); call(); times[side].append(time.perf_counter() - start)
print(json.dumps({side: statistics.median(values) for side, values in times.items()}))
'''


def swarm_up(manager: int = 4, *workers: int) -> bool:
    """Engine ``manager`` as a Swarm manager, ``workers`` joined to it; True when this run started any of them
    (and so stops them)."""
    numbers = [str(n) for n in (manager, *workers)]
    env = {**os.environ, **SWARM_ENV}
    listed = subprocess.run(["bash", str(ENGINES), "list"], capture_output=True, text=True, env=env).stdout
    up = {line.split()[0] for line in listed.splitlines() if line.endswith(" up")}
    proc = subprocess.run(["bash", str(ENGINES), "swarm", *numbers], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise BenchError(f"scripts/engines.sh swarm {' '.join(numbers)} failed:\n{proc.stderr}")
    return not up.issuperset(numbers)


def swarm_down() -> None:
    """Stop the swarm's engines (those swarm_up started)."""
    subprocess.run(["bash", str(ENGINES), "down"], capture_output=True, env={**os.environ, **SWARM_ENV})


class SwarmBench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.stack = f"bswarm-{secrets.token_hex(4)}"
        self.env = dict(os.environ, RECONCILER_LOCK_DIR=str(tmp / "locks"), RECONCILER_STATE_DIR=str(tmp / "state"),
                        RECONCILER_PLUGINS="reconciler_swarm")
        for var in ("PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC", "PYTHONDEVMODE"):
            self.env.pop(var, None)
        # The steady state of an installed tool (bytecode cached, as pip leaves it, and as the floor's
        # docker-py has it) even where PYTHONDONTWRITEBYTECODE is set: .pyc files go to a prefix in the
        # temp dir, never into the repository. The warm-up fills it.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        self.reconcile = [sys.executable, "-m", "reconciler"]
        self.interrupted = False
        body = [f"name: {self.stack}", "runtime: swarm", "containers:"]
        for i in range(args.services):
            body += [f"  s{i}:", f"    image: {IMAGE}", '    command: ["sleep", "3600"]', "    init: true",
                     "    stop_grace_period: 1s"]
        self.spec = tmp / "stack.yaml"
        self.spec.write_text("\n".join(body) + "\n")
        (tmp / "floor.py").write_text(FLOOR)
        (tmp / "in_process.py").write_text(IN_PROCESS)

    def cli(self, *args: str, check: bool = True):
        return run_child([*self.reconcile, *args, "-f", str(self.spec), "--engine", MANAGER_URL], env=self.env,
                         cwd=str(self.tmp), check=check)

    def converge(self) -> None:
        self.cli("apply")
        import docker

        api = docker.APIClient(base_url=MANAGER_URL, version="auto")
        running = 0

        def all_running() -> bool:
            nonlocal running
            tasks = api.tasks(filters={"label": [], "desired-state": ["running"]})
            running = sum(1 for t in tasks if t["Status"]["State"] == "running"
                          and t.get("Spec", {}).get("ContainerSpec", {}).get("Image") == IMAGE)
            return running >= self.args.services

        try:
            poll_until(all_running, timeout=300, interval=1)
        except PollTimeout:
            raise BenchError(f"only {running} of {self.args.services} tasks run after 300 s") from None
        plan = self.cli("plan", "--detailed-exitcode", check=False)
        if plan.code != 0:
            raise BenchError(f"the converged stack is not a no-op plan (exit {plan.code}):\n{plan.out[-1500:]}")

    def ours(self) -> float:
        run = self.cli("plan", "--detailed-exitcode", check=False)
        if run.code != 0:
            raise BenchError(f"plan exited {run.code}: {run.err[-1500:]}")
        return run.seconds

    def floor(self) -> float:
        return run_child([sys.executable, str(self.tmp / "floor.py"), self.stack, MANAGER_URL], env=self.env,
                         cwd=str(self.tmp)).seconds

    def destroy(self) -> None:
        run_child([*self.reconcile, "destroy", "-f", str(self.spec), "--engine", MANAGER_URL], env=self.env,
                  cwd=str(self.tmp), check=False)

    def run(self) -> dict[str, list[float]]:
        self.converge()
        self.ours(), self.floor()  # untimed warm-up: page cache, .pyc files
        times: dict[str, list[float]] = {"ours": [], "floor": []}
        for rep in range(self.args.repeats):
            order = ("ours", "floor") if rep % 2 == 0 else ("floor", "ours")
            for side in order:
                times[side].append(self.ours() if side == "ours" else self.floor())
        warm = run_child([sys.executable, str(self.tmp / "in_process.py"), str(self.spec), MANAGER_URL, self.stack,
                          str(self.args.repeats * 3)], env=self.env, cwd=str(self.tmp))
        times.update({f"warm_{side}": [value] for side, value in json.loads(warm.out).items()})
        return times


def report(times: dict[str, list[float]], services: int) -> str:
    ours, floor = statistics.median(times["ours"]), statistics.median(times["floor"])
    return "\n".join([
        f"swarm no-op plan, {services} services on a one-manager swarm, {len(times['ours'])} repeats (medians)",
        f"  floor (docker-py, same list calls) {floor:.3f} s, ours {ours:.3f} s, "
        f"ratio {ours / floor:.2f} (target <= {TARGET})",
        f"  in one warm process (a watch or daemon pass): floor {times['warm_floor'][0] * 1000:.1f} ms, "
        f"ours {times['warm_ours'][0] * 1000:.1f} ms, ratio {times['warm_ours'][0] / times['warm_floor'][0]:.2f}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        log("error: the Swarm engine needs root (scripts/engines.sh)")
        return 1
    started = time.monotonic()
    ours_engine = swarm_up()
    with tempfile.TemporaryDirectory(prefix="bench-swarm-") as tmp:
        bench = SwarmBench(args, Path(tmp))
        return run_on_extra_engines(bench, bench.run, lambda times: report(times, args.services), started=started,
                                    stop_engines=swarm_down if ours_engine else None)


if __name__ == "__main__":
    exit_with(main)
