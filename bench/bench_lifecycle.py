#!/usr/bin/env python3
"""Benchmark ``reconcile destroy`` and a full replace against docker-compose v1, in the same run.

    python bench/bench_lifecycle.py [--n 30] [--grace 10] [--repeats 3] [--workers 4]

Both sides get the same N containers: ``reconciler/busybox:latest`` running
``sleep 3600`` without an init, so PID 1 ignores SIGTERM and every stop waits
its whole grace period (``--grace`` seconds, on both sides), an environment
variable ``GEN``, and one network (compose's project default network; a
``default`` network in the reconcile stack). For each repeat and side, one
side at a time (alternating which goes first):

  up        untimed: ``reconcile apply`` / ``docker-compose up -d`` with GEN=0;
  replace   timed:   GEN=1 in both files, then ``reconcile apply`` /
                     ``docker-compose up -d --force-recreate`` (all N replaced);
  destroy   timed:   ``reconcile destroy`` / ``docker-compose down``
                     (containers and the network removed).

It prints the medians, ours / peer ratios (target <= 1.1) and every run. It is
a benchmark, not a test: the exit code is 1 only when something failed (a
command's error, a container not running or not replaced, an object left).
Each cycle uses its own stack and project names, so a network the engine
fails to free (see STALE_ENDPOINT) spoils no later cycle. Everything it
creates is labelled with its stack or compose project and is removed at the
end, also on an error or Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

from bench_apply import BenchError, Engine, Run, _kill_children, log, median_s, run_child, table
from compose_peer import COMPOSE_LABEL, child_env, compose_peer, remove_labelled, run_against_peer

from reconciler.labels import owner_selector

IMAGE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")
TARGET = 1.1
MEASUREMENTS = ("destroy", "replace")
# Docker 20.10 now and then keeps a network's endpoint count after its last container
# is gone (both tools hit it here; only a dockerd restart frees that network). A destroy
# whose only failure is that network is counted, marked, and the network reported.
STALE_ENDPOINT = "has active endpoints"


class Side:
    """One tool driving the same N containers through up, replace and destroy."""

    name = ""

    def __init__(self, bench: Bench, folder: Path) -> None:
        self.bench = bench
        self.folder = folder
        folder.mkdir()
        self.runs: dict[str, list[Run]] = {m: [] for m in MEASUREMENTS}
        self.stale: list[int] = []  # indexes of destroy runs that met STALE_ENDPOINT
        self.cycle = 0  # names the stack / project: each cycle gets fresh ones

    def label_of(self, cycle: int) -> str:
        """The label (key=value) on everything this side creates in ``cycle``."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        return self.label_of(self.cycle)

    def write(self, gen: int) -> None:
        raise NotImplementedError

    def argv(self, what: str) -> list[str]:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Untimed: read both generations of the spec once (bytecode, page cache, validation cache)."""
        raise NotImplementedError

    def command(self, what: str) -> str:
        """The command line of ``what``, paths shortened, for the report."""
        return " ".join(self.argv(what)).replace(str(self.folder) + "/", "")

    def run(self, what: str, *, check: bool = True) -> Run:
        return run_child(self.argv(what), env=self.bench.env, cwd=str(self.folder), check=check)

    def cleanup(self) -> None:
        for label in map(self.label_of, range(1, self.bench.args.repeats + 1)):
            remove_labelled(self.bench.engine, label)


class Ours(Side):
    name = "ours"

    def stack_of(self, cycle: int) -> str:
        return f"benchlc-{self.bench.run_id}-{cycle}"

    def label_of(self, cycle: int) -> str:
        return owner_selector(self.stack_of(cycle))

    def write(self, gen: int) -> None:
        lines = [f"name: {self.stack_of(self.cycle)}", "networks:", "  default: {}", "containers:"]
        for i in range(self.bench.args.n):
            lines += [
                f"  c{i}:",
                f"    image: {IMAGE}",
                '    command: ["sleep", "3600"]',
                f"    stop_grace_period: {self.bench.args.grace}s",
                f"    env: {{GEN: '{gen}'}}",
                "    networks: [default]",
            ]
        (self.folder / "stack.yaml").write_text("\n".join(lines) + "\n")

    def argv(self, what: str) -> list[str]:
        command = "destroy" if what == "destroy" else "apply"
        return [*self.cli(), command, "-f", str(self.folder / "stack.yaml"), "--workers", str(self.bench.args.workers)]

    def cli(self) -> list[str]:
        return [sys.executable, "-m", "reconciler"]

    def warm_up(self) -> None:
        # Every cycle's spec (their stack names differ), so that each timed run finds it validated.
        for cycle in range(1, self.bench.args.repeats + 1):
            self.cycle = cycle
            for gen in (0, 1):
                self.write(gen)
                run_child([*self.cli(), "plan", "-f", str(self.folder / "stack.yaml")], env=self.bench.env,
                          cwd=str(self.folder))


class Compose(Side):
    name = "peer"

    def project_of(self, cycle: int) -> str:
        return f"benchlcpeer{self.bench.run_id}c{cycle}"

    def label_of(self, cycle: int) -> str:
        return f"{COMPOSE_LABEL}={self.project_of(cycle)}"

    def write(self, gen: int) -> None:
        lines = ["version: '2.4'", "services:"]
        for i in range(self.bench.args.n):
            lines += [
                f"  c{i}:",
                f"    image: {IMAGE}",
                '    command: ["sleep", "3600"]',
                f"    stop_grace_period: {self.bench.args.grace}s",
                f"    environment: {{GEN: '{gen}'}}",
            ]
        (self.folder / "docker-compose.yml").write_text("\n".join(lines) + "\n")

    def argv(self, what: str) -> list[str]:
        verb = {"up": ["up", "-d"], "replace": ["up", "-d", "--force-recreate"], "destroy": ["down"],
                "config": ["config", "-q"]}[what]
        return [self.bench.compose, "-p", self.project_of(self.cycle), "-f", str(self.folder / "docker-compose.yml"),
                *verb]

    def warm_up(self) -> None:
        for gen in (0, 1):
            self.write(gen)
            self.run("config")


class Bench:
    def __init__(self, args: argparse.Namespace, engine: Engine, tmp: Path) -> None:
        self.args = args
        self.engine = engine
        self.run_id = secrets.token_hex(4)
        self.compose = args.compose
        self.env = child_env(tmp)
        self.sides = [Ours(self, tmp / "ours"), Compose(self, tmp / "peer")]
        self.interrupted = False

    def names(self) -> str:
        return f"stacks benchlc-{self.run_id}-<cycle>, compose projects benchlcpeer{self.run_id}c<cycle>"

    def warm_up(self) -> None:
        for side in self.sides:
            side.warm_up()

    def cycle(self, side: Side, rep: int) -> None:
        """Up (untimed), then the timed replace and destroy of one side."""
        n = self.args.n
        tag = f"rep {rep + 1}/{self.args.repeats} {side.name}"
        side.cycle = rep + 1
        side.write(0)
        side.run("up")
        before = self.running_ids(side, n, "after up")
        time.sleep(self.args.settle)
        side.write(1)
        run = side.run("replace")
        after = self.running_ids(side, n, "after replace")
        if set(before) & set(after):
            raise BenchError(f"{side.name}: {len(set(before) & set(after))} of {n} containers were not replaced")
        side.runs["replace"].append(run)
        log(f"{tag} replace: {run.seconds:.2f}s")
        time.sleep(self.args.settle)
        run = side.run("destroy", check=False)
        containers = self.engine.containers(side.label)
        networks = self.engine.api.networks(filters={"label": [side.label]})
        stale = run.code != 0 and STALE_ENDPOINT in run.out + run.err and not containers and len(networks) == 1
        if run.code != 0 and not stale:
            raise BenchError(f"{side.command('destroy')} exited {run.code}\n{run.out[-2000:]}\n{run.err[-2000:]}")
        if containers or (networks and not stale):
            raise BenchError(f"{side.name}: after destroy {len(containers)} containers and {len(networks)} networks "
                             "are left")
        if stale:
            side.stale.append(len(side.runs["destroy"]))
            log(f"{tag} destroy: the engine keeps network {networks[0]['Name']} ({STALE_ENDPOINT}, no container)")
        side.runs["destroy"].append(run)
        log(f"{tag} destroy: {run.seconds:.2f}s")

    def running_ids(self, side: Side, n: int, when: str) -> list[str]:
        found = [c["Id"] for c in self.engine.containers(side.label) if c.get("State") == "running"]
        nets = self.engine.api.networks(filters={"label": [side.label]})
        if len(found) != n or len(nets) != 1:
            raise BenchError(f"{side.name} {when}: {len(found)} of {n} containers running, {len(nets)} networks")
        return found

    def measure(self) -> None:
        """The untimed warm-up, then every cycle of both sides."""
        self.warm_up()
        for rep in range(self.args.repeats):
            for side in self.sides if rep % 2 == 0 else reversed(self.sides):
                self.cycle(side, rep)

    def cleanup(self) -> None:
        if _kill_children() or self.interrupted:
            time.sleep(1.0)  # let a call the engine was still answering land before listing
        for side in self.sides:
            try:
                side.cleanup()
            except Exception as exc:  # keep cleaning the other side, but say so
                log(f"cleanup of {side.name} failed: {exc}")


def report(bench: Bench, total: float) -> str:
    args = bench.args
    ours, peer = bench.sides
    out = [
        "",
        f"reconcile vs docker-compose v1 -- N {args.n} containers ignoring SIGTERM, stop grace {args.grace:g}s, "
        f"workers {args.workers}, x{args.repeats} per side (median), image {IMAGE}",
        f"peer COMPOSE_PARALLEL_LIMIT: {os.environ.get('COMPOSE_PARALLEL_LIMIT', '64 (default)')}",
        "",
    ]
    for what in MEASUREMENTS:
        out.append(f"{what + ':':<9} ours  {ours.command(what)}")
        out.append(f"{'':<9} peer  {peer.command(what)}")
    out.append("")
    rows = []
    for what in MEASUREMENTS:
        o, p = median_s(ours.runs[what]), median_s(peer.runs[what])
        rows.append([what, f"{o:.2f}", f"{p:.2f}", f"{o / p:.2f}", f"<= {TARGET:.2f}",
                     "OK" if o / p <= TARGET else "over"])
    out.append(table(["measurement", "ours (s)", "peer (s)", "ratio", "target", "verdict"], rows, {1, 2, 3}))
    out += ["", "individual runs (s):"]
    for what in MEASUREMENTS:
        for side in bench.sides:
            marks = side.stale if what == "destroy" else []
            out.append(f"  {what:<8} {side.name:<5} " + " ".join(
                f"{r.seconds:.2f}" + ("*" if i in marks else "") for i, r in enumerate(side.runs[what])))
    if ours.stale or peer.stale:
        out.append(f"  * the engine kept the network ({STALE_ENDPOINT} with no container left); "
                   "every container was removed, the run is counted")
    out += ["", f"total benchmark time {total:.0f}s"]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30, help="containers per side (default 30)")
    parser.add_argument("--grace", type=float, default=10, help="stop grace period in seconds, both sides (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed cycles per side (default 3)")
    parser.add_argument("--workers", type=int, default=4, help="reconcile --workers (default 4)")
    parser.add_argument("--settle", type=float, default=1.0, help="untimed pause between steps (default 1s)")
    parser.add_argument("--compose", default="docker-compose", help="the compose v1 command (default docker-compose)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.workers < 1 or args.grace < 0:
        parser.error("n, repeats and workers must be positive, grace not negative")
    if args.grace != int(args.grace):
        parser.error("--grace must be whole seconds (compose and the reconciler round differently)")
    args.grace = int(args.grace)
    args.compose = compose_peer(parser, args.compose)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_against_peer(parse_args(argv), Bench, temp_prefix="bench-lifecycle-", report=report)


if __name__ == "__main__":
    sys.exit(main())
