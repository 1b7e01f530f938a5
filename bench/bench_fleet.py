#!/usr/bin/env python3
"""Fleet apply against the slowest single-engine apply, in the same run, on three real engines.

    python bench/bench_fleet.py                 # 10 containers, 3 rounds: about 2 minutes on 2 cores
    python bench/bench_fleet.py --containers 10 --rounds 3

Needs root: it starts three extra engines with ``scripts/engines.sh up 3``
(and stops them at the end if it started them). Each round times, as whole
processes (wall clock), on empty engines:

  single   ``reconcile apply --engine URL`` of an N-container stack, once per
           engine, one after the other; the round's figure is the slowest;
  fleet    ``reconcile apply`` of the same stack with the three engines as
           ``targets:``, which applies to all three in parallel;

then a no-op of each (the stack converged). It prints fleet / slowest-single
(median over rounds) next to the target (cold <= 1.2). The engines share two
cores, so three engines creating at once cannot be as fast as one alone; the
ratio shows what parallel targets cost beyond that. A benchmark, not a test:
the exit code is 1 only when something failed.

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

from bench_apply import IMAGE, BenchError, log, open_engine, run_child, run_on_extra_engines

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

    def run(self) -> list[dict]:
        rounds = []
        for number in range(1, self.args.rounds + 1):
            rounds.append(self.round())
            r = rounds[-1]
            log(f"round {number}: singles {', '.join(f'{s:.2f}' for s in r['singles'])} s, fleet {r['fleet']:.2f} s; "
                f"no-op single {r['single_noop']:.2f} s, fleet {r['fleet_noop']:.2f} s")
        return rounds


def report(rounds: list[dict], containers: int) -> str:
    med = {key: statistics.median(r[key] for r in rounds) for key in ("single", "fleet", "single_noop", "fleet_noop")}
    cold, noop = med["fleet"] / med["single"], med["fleet_noop"] / med["single_noop"]
    return "\n".join([
        f"fleet of 3 engines, {containers} containers each, {len(rounds)} rounds (medians)",
        f"  cold apply:  slowest single {med['single']:.2f} s, fleet {med['fleet']:.2f} s, "
        f"ratio {cold:.2f} (target <= {TARGET})",
        f"  no-op apply: slowest single {med['single_noop']:.2f} s, fleet {med['fleet_noop']:.2f} s, "
        f"ratio {noop:.2f}",
    ])


def engines_down() -> None:
    """Stop the extra engines (those engines_up started)."""
    subprocess.run(["bash", str(ENGINES), "down"], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
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
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(1)
