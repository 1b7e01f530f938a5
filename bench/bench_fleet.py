#!/usr/bin/env python3
"""Fleet apply against the slowest single-engine apply, in the same run, on three real engines.

    python bench/bench_fleet.py                 # 10 containers, 3 rounds per CPU mode: about 4 minutes on 2 cores
    python bench/bench_fleet.py --containers 10 --rounds 3 --engine-cpus 0.6

Needs root: it starts three extra engines with ``scripts/engines.sh up 3``
(and stops them at the end if it started them). Each round times, as whole
processes (wall clock), on empty engines:

  single   ``reconcile apply --engine URL`` of an N-container stack, once per
           engine, one after the other; the round's figure is the slowest;
  fleet    ``reconcile apply`` of the same stack with the three engines as
           ``targets:``, which applies to all three in parallel;

then a no-op of each (the stack converged). It prints fleet / slowest-single
(median over rounds) next to the target (cold <= 1.2), twice:

  own CPUs     each engine (its dockerd and every process under it: containerd,
               shims, iptables) runs in a cgroup of its own capped at
               ``--engine-cpus`` cores (0.6: three fit in two cores), as three
               hosts would each have their own: the ratio is what applying to
               several targets at once costs;
  shared CPUs  the engines share this machine's cores: where the engines' own
               work keeps the cores busy (creating 10 containers takes dockerd
               and its shims over 3 CPU-seconds), three engines at once take
               three times as long as one, whatever the client does.

``--engine-cpus 0`` measures only the shared case (so does a machine without a
writable cgroup ``cpu`` controller). A benchmark, not a test: the exit code is
1 only when something failed.

Stacks are named ``bfleet-<id>``; everything is destroyed between rounds and at
the end (never inside a timed region). State and locks live in a temp dir.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_apply import IMAGE, exit_with, log, open_engine, run_child, run_on_extra_engines

REPO = Path(__file__).resolve().parents[1]
ENGINES = REPO / "scripts" / "engines.sh"
TARGET = 1.2


def engines_up() -> tuple[list[str], bool]:
    """The three extra engines' URLs (unix socket for the first, tcp for the others), and whether we started them."""
    listed = subprocess.run(["bash", str(ENGINES), "list"], capture_output=True, text=True).stdout
    was_up = sum(1 for line in listed.splitlines() if line.endswith(" up")) >= 3
    subprocess.run(["bash", str(ENGINES), "up", "3"], check=True, capture_output=True, text=True)
    rows = [line.split() for line in subprocess.run(["bash", str(ENGINES), "list"], capture_output=True,
                                                     text=True, check=True).stdout.splitlines()][:3]
    return [rows[0][1], rows[1][2], rows[2][2]], not was_up


class EngineCpus:
    """Cgroups capping each extra engine's process tree at ``cpus`` cores (cgroup v1 ``cpu`` or v2 ``cpu.max``)."""

    PERIOD = 100_000  # microseconds

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus
        unified = Path("/sys/fs/cgroup")
        self.v2 = (unified / "cgroup.controllers").exists()
        self.root = unified if self.v2 else unified / "cpu"
        self.groups: list[Path] = []

    def usable(self) -> bool:
        controller = self.v2 or (self.root / "cpu.cfs_quota_us").exists()
        return self.cpus > 0 and os.access(self.root, os.W_OK) and controller

    def cap(self, hosts: list[str]) -> None:
        """Move each engine's dockerd and its descendants into a capped group of its own."""
        quota = int(self.cpus * self.PERIOD)
        if self.v2:
            (self.root / "cgroup.subtree_control").write_text("+cpu")
        for host in hosts:
            group = self.root / f"rcbench-{host}"
            group.mkdir(exist_ok=True)
            self.groups.append(group)
            if self.v2:
                (group / "cpu.max").write_text(f"{quota} {self.PERIOD}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(self.PERIOD))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            pidfile = Path(os.environ.get("RECONCILER_ENGINES_STATE", "/tmp/reconciler-engines")) / host / "docker.pid"
            for pid in _tree(int(pidfile.read_text())):
                _move(pid, group)

    def release(self) -> None:
        """Everything back in the root group; the groups removed."""
        for group in self.groups:
            for pid in (group / "cgroup.procs").read_text().split():
                _move(int(pid), self.root)
            group.rmdir()
        self.groups = []


def _tree(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    found, frontier = [pid], [pid]
    while frontier:
        children = []
        for parent in frontier:
            for task in Path(f"/proc/{parent}/task").glob("*"):
                try:
                    children += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    pass
        found += children
        frontier = children
    return found


def _move(pid: int, group: Path) -> None:
    try:
        (group / "cgroup.procs").write_text(str(pid))
    except OSError:  # it ended meanwhile
        pass


class FleetBench:
    def __init__(self, args: argparse.Namespace, urls: list[str], tmp: Path) -> None:
        self.args, self.urls, self.tmp = args, urls, tmp
        self.stack = f"bfleet-{secrets.token_hex(4)}"
        self.env = dict(os.environ, RECONCILER_LOCK_DIR=str(tmp / "locks"), RECONCILER_STATE_DIR=str(tmp / "state"))
        self.reconcile = [sys.executable, "-m", "reconciler"]
        self.interrupted = False
        body = [f"name: {self.stack}", "containers:"]
        for i in range(args.containers):
            body += [f"  c{i}:", f"    image: {IMAGE}", '    command: ["sleep", "3600"]', "    init: true",
                     "    stop_grace_period: 1s"]
        self.single = tmp / "single" / "stack.yaml"
        self.fleet = tmp / "fleet" / "stack.yaml"
        for path in (self.single, self.fleet):
            path.parent.mkdir()
        self.single.write_text("\n".join(body) + "\n")
        targets = ["targets:"] + [f'  e{i + 1}: {{engine: "{url}"}}' for i, url in enumerate(urls)]
        self.fleet.write_text("\n".join([body[0], *targets, *body[1:]]) + "\n")

    def apply(self, *extra: str) -> float:
        argv = [*self.reconcile, "apply", "--workers", str(self.args.workers), *extra]
        return run_child(argv, env=self.env, cwd=str(self.tmp)).seconds

    def destroy(self) -> None:
        run_child([*self.reconcile, "destroy", "-f", str(self.fleet)], env=self.env, cwd=str(self.tmp), check=False)

    def round(self) -> dict[str, float]:
        singles = [self.apply("-f", str(self.single), "--engine", url) for url in self.urls]
        single_noop = [self.apply("-f", str(self.single), "--engine", url) for url in self.urls]
        self.destroy()
        fleet = self.apply("-f", str(self.fleet))
        fleet_noop = self.apply("-f", str(self.fleet))
        self.destroy()
        return {"single": max(singles), "fleet": fleet, "single_noop": max(single_noop), "fleet_noop": fleet_noop,
                "singles": singles}

    def run(self) -> dict[str, list[dict]]:
        """Rounds per CPU mode: "own" (each engine capped in a cgroup of its own, when possible), then "shared"."""
        modes: dict[str, list[dict]] = {}
        cpus = EngineCpus(self.args.engine_cpus)
        if cpus.usable():
            cpus.cap([f"host{i + 1}" for i in range(len(self.urls))])
            try:
                modes[f"own CPUs ({cpus.cpus:g} cores per engine)"] = self.rounds("own CPUs")
            finally:
                cpus.release()
        elif self.args.engine_cpus > 0:
            log(f"no writable cgroup cpu controller under {cpus.root}: the engines share the machine's CPUs only")
        modes["shared CPUs"] = self.rounds("shared CPUs")
        return modes

    def rounds(self, mode: str) -> list[dict]:
        rounds = []
        for number in range(1, self.args.rounds + 1):
            rounds.append(self.round())
            r = rounds[-1]
            log(f"{mode}, round {number}: singles {', '.join(f'{s:.2f}' for s in r['singles'])} s, "
                f"fleet {r['fleet']:.2f} s; no-op single {r['single_noop']:.2f} s, fleet {r['fleet_noop']:.2f} s")
        return rounds


def report(modes: dict[str, list[dict]], containers: int) -> str:
    lines = []
    for mode, rounds in modes.items():
        med = {key: statistics.median(r[key] for r in rounds)
               for key in ("single", "fleet", "single_noop", "fleet_noop")}
        cold, noop = med["fleet"] / med["single"], med["fleet_noop"] / med["single_noop"]
        lines += [
            f"fleet of 3 engines, {containers} containers each, {mode}, {len(rounds)} rounds (medians)",
            f"  cold apply:  slowest single {med['single']:.2f} s, fleet {med['fleet']:.2f} s, "
            f"ratio {cold:.2f} (target <= {TARGET})",
            f"  no-op apply: slowest single {med['single_noop']:.2f} s, fleet {med['fleet_noop']:.2f} s, "
            f"ratio {noop:.2f}",
        ]
    return "\n".join(lines)


def engines_down() -> None:
    """Stop the extra engines (those engines_up started)."""
    subprocess.run(["bash", str(ENGINES), "down"], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--engine-cpus", type=float, default=0.6,
                        help="cores each engine gets in its own cgroup for the first set of rounds (0: skip them)")
    args = parser.parse_args(argv)
    if open_engine() is None:
        return 1
    if os.geteuid() != 0:
        log("error: the extra engines need root (scripts/engines.sh)")
        return 1
    started = time.monotonic()
    urls, ours = engines_up()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        bench = FleetBench(args, urls, Path(tmp))
        return run_on_extra_engines(bench, bench.run, lambda rounds: report(rounds, args.containers), started=started,
                                    stop_engines=engines_down if ours else None)


if __name__ == "__main__":
    exit_with(main)
