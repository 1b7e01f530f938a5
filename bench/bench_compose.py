#!/usr/bin/env python3
"""Benchmark a no-op ``reconcile apply -f compose.yaml`` against ``docker-compose up -d``, in the same run.

    python bench/bench_compose.py [--n 30] [--repeats 7] [--workers 4]

One Compose file with N services (``reconciler/busybox:latest`` running
``sleep``, an init, an environment, labels, a restart policy, one project
network, and a named volume on every third service) is brought up by both
tools, each as its own project (the reconciler's stack ``benchc-<id>``,
compose's project ``benchcpeer<id>``: two tools cannot own the same
containers). Once both are converged, each repeat times, one side at a time
(alternating which goes first):

  ours   ``reconcile apply -f compose.yaml -p benchc-<id>``  (nothing to do)
  peer   ``docker-compose -p benchcpeer<id> -f compose.yaml up -d``  (every service up-to-date)

and checks that neither replaced a container. It prints the medians and the
ours / peer ratio (target <= 0.7).

Then adoption (``--changed K``, default 3): two more projects are brought up
by docker-compose from the same file, K of their services' environments are
edited, and one run each, timed:

  ours   ``reconcile adopt -f compose.yaml -p <project A>``  (takes A over)
  peer   ``docker-compose -p <project B> up -d``              (recreates B's K)

with the number of containers each side restarted (a new id, or the same id
started again): the target is exactly K for ours, the services whose config
differs. It is a benchmark, not a test: the exit
code is 1 only when something failed (a command's error, a container replaced
or not running). Everything it creates is labelled with its stack or compose
project and removed at the end, also on an error or Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

from bench_apply import BenchError, Engine, Run, log, median_s, run_child, table
from compose_peer import COMPOSE_LABEL, child_env, compose_peer, remove_labelled, run_against_peer

from reconciler.labels import owner_selector

IMAGE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")
TARGET = 0.7


def compose_file(n: int) -> str:
    """N services of a plausible shape; the same text for both tools."""
    lines = ["services:"]
    for i in range(n):
        lines += [
            f"  svc{i}:",
            f"    image: {IMAGE}",
            '    command: ["sleep", "3600"]',
            "    init: true",
            "    stop_grace_period: 1s",
            "    restart: unless-stopped",
            "    environment:",
            f"      SERVICE: svc{i}",
            "      LOG_LEVEL: ${LOG_LEVEL:-info}",
            "    labels:",
            "      com.example.tier: bench",
            "    networks: [app]",
        ]
        if i % 3 == 0:
            lines += ["    volumes:", f"      - data{i}:/data"]
    lines += ["networks:", "  app:", "volumes:"]
    lines += [f"  data{i}:" for i in range(0, n, 3)]
    return "\n".join(lines) + "\n"


class Bench:
    def __init__(self, args: argparse.Namespace, engine: Engine, tmp: Path) -> None:
        self.args = args
        self.engine = engine
        self.run_id = secrets.token_hex(4)
        self.stack = f"benchc-{self.run_id}"
        self.project = f"benchcpeer{self.run_id}"
        self.folder = tmp / "project"
        self.folder.mkdir()
        self.file = self.folder / "compose.yaml"
        self.file.write_text(compose_file(args.n))
        self.env = child_env(tmp)
        self.runs: dict[str, list[Run]] = {"ours": [], "peer": []}
        self.adopted: dict[str, tuple[Run, int]] = {}
        self.adopt_projects = (f"benchca{self.run_id}", f"benchcb{self.run_id}")
        self.interrupted = False

    def names(self) -> str:
        return f"stack {self.stack}, compose project {self.project}"

    def argv(self, side: str, what: str = "up") -> list[str]:
        if side == "ours":
            verb = "destroy" if what == "down" else "apply"
            return [sys.executable, "-m", "reconciler", verb, "-f", str(self.file), "-p", self.stack,
                    "--workers", str(self.args.workers)]
        verb = ["down", "-v"] if what == "down" else ["up", "-d"]
        return [self.args.compose, "-p", self.project, "-f", str(self.file), *verb]

    def label(self, side: str) -> str:
        return owner_selector(self.stack) if side == "ours" else f"{COMPOSE_LABEL}={self.project}"

    def ids(self, side: str) -> dict[str, str]:
        found = self.engine.containers(self.label(side))
        if any(c.get("State") != "running" for c in found) or len(found) != self.args.n:
            raise BenchError(f"{side}: {len(found)} containers, not {self.args.n} running")
        return {c["Names"][0]: c["Id"] for c in found}

    def run(self, side: str, what: str = "up") -> Run:
        return run_child(self.argv(side, what), env=self.env, cwd=str(self.folder))

    def measure(self) -> None:
        for side in ("ours", "peer"):
            log(f"{side}: bringing up {self.args.n} services (untimed)")
            self.run(side)
            self.run(side)  # untimed warm-up: bytecode, page cache, validation cache
        before = {side: self.ids(side) for side in ("ours", "peer")}
        for rep in range(self.args.repeats):
            order = ("ours", "peer") if rep % 2 == 0 else ("peer", "ours")
            for side in order:
                time.sleep(self.args.settle)
                run = self.run(side)
                self.runs[side].append(run)
                log(f"rep {rep + 1}/{self.args.repeats} {side}: {run.seconds:.3f}s")
                if self.ids(side) != before[side]:
                    raise BenchError(f"{side}: a no-op run replaced containers\n{run.out[-2000:]}")
        if self.args.changed:
            self.measure_adoption()

    def measure_adoption(self) -> None:
        """Adopt a running project with K changed services against Compose's own ``up -d`` of the same change."""
        ours, peer = self.adopt_projects
        for project in self.adopt_projects:
            log(f"adoption: docker-compose brings up {project} (untimed)")
            run_child([self.args.compose, "-p", project, "-f", str(self.file), "up", "-d"], env=self.env,
                      cwd=str(self.folder))
        started = {p: self.started(f"{COMPOSE_LABEL}={p}") for p in self.adopt_projects}
        changed = self.folder / "changed.yaml"
        text = self.file.read_text()
        for i in range(self.args.changed):
            text = text.replace(f"      SERVICE: svc{i}\n", f"      SERVICE: svc{i}-changed\n")
        changed.write_text(text)
        time.sleep(self.args.settle)
        run = run_child([sys.executable, "-m", "reconciler", "adopt", "-f", str(changed), "-p", ours,
                         "--workers", str(self.args.workers)], env=self.env, cwd=str(self.folder))
        after = {**self.started(f"{COMPOSE_LABEL}={ours}"), **self.started(owner_selector(ours))}
        self.adopted["ours"] = (run, self.restarted(started[ours], after))
        time.sleep(self.args.settle)
        run = run_child([self.args.compose, "-p", peer, "-f", str(changed), "up", "-d"], env=self.env,
                        cwd=str(self.folder))
        self.adopted["peer"] = (run, self.restarted(started[peer], self.started(f"{COMPOSE_LABEL}={peer}")))
        for side, (run, restarted) in self.adopted.items():
            log(f"adoption {side}: {run.seconds:.3f}s, {restarted} containers restarted")

    def started(self, label: str) -> dict[str, tuple[str, str]]:
        """Service → (container id, when it started), for the running containers carrying ``label``."""
        out = {}
        for c in self.engine.containers(label):
            info = self.engine.api.inspect_container(c["Id"])
            labels = info["Config"]["Labels"] or {}
            service = labels.get("com.docker.compose.service") or labels.get("io.reconciler.name", "")
            out[service] = (c["Id"], info["State"]["StartedAt"])
        return out

    @staticmethod
    def restarted(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> int:
        if set(after) != set(before):
            raise BenchError(f"services differ after adoption: {sorted(set(before) ^ set(after))}")
        return sum(after[service] != before[service] for service in before)

    def cleanup(self) -> None:
        for side in ("ours", "peer"):
            try:
                run_child(self.argv(side, "down"), env=self.env, cwd=str(self.folder), check=False)
            except OSError as exc:
                log(f"cleanup: {side} down failed: {exc}")
            remove_labelled(self.engine, self.label(side))
        for project in self.adopt_projects:  # containers of both labels first: each holds the other's volumes
            for label in (f"{COMPOSE_LABEL}={project}", owner_selector(project)):
                self.engine.remove(label)
            for label in (f"{COMPOSE_LABEL}={project}", owner_selector(project)):
                remove_labelled(self.engine, label)


def report(bench: Bench, total: float) -> str:
    ours, peer = median_s(bench.runs["ours"]), median_s(bench.runs["peer"])
    out = [
        "",
        f"no-op apply of a {bench.args.n}-service compose.yaml, x{bench.args.repeats} (median), image {IMAGE}",
        f"ours: {' '.join(bench.argv('ours')).replace(str(bench.folder) + '/', '')}",
        f"peer: {' '.join(bench.argv('peer')).replace(str(bench.folder) + '/', '')}",
        "",
        table(["measurement", "ours (s)", "peer (s)", "ratio", "target", "verdict"],
              [["no-op apply", f"{ours:.3f}", f"{peer:.3f}", f"{ours / peer:.2f}", f"<= {TARGET:.2f}",
                "OK" if ours / peer <= TARGET else "over"]], {1, 2, 3}),
        "",
        "individual runs (s):",
    ]
    for side in ("ours", "peer"):
        out.append(f"  {side:<5} " + " ".join(f"{r.seconds:.3f}" for r in bench.runs[side]))
    if bench.adopted:
        (ours_run, ours_restarted), (peer_run, peer_restarted) = bench.adopted["ours"], bench.adopted["peer"]
        k = bench.args.changed
        out += ["", f"taking over a running {bench.args.n}-service project with {k} services changed:",
                table(["measurement", "ours (s)", "peer (s)", "ratio", "restarted ours", "restarted peer", "verdict"],
                      [["adopt vs up -d", f"{ours_run.seconds:.3f}", f"{peer_run.seconds:.3f}",
                        f"{ours_run.seconds / peer_run.seconds:.2f}", str(ours_restarted), str(peer_restarted),
                        "OK" if ours_restarted == k else f"over (target {k})"]], {1, 2, 3, 4, 5})]
    out += ["", f"total benchmark time {total:.0f}s"]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30, help="services (default 30)")
    parser.add_argument("--repeats", type=int, default=7, help="timed no-op runs per side (default 7)")
    parser.add_argument("--workers", type=int, default=4, help="reconcile --workers (default 4)")
    parser.add_argument("--settle", type=float, default=0.5, help="untimed pause before each run (default 0.5s)")
    parser.add_argument("--changed", type=int, default=3,
                        help="adoption: services whose environment changes before the takeover (default 3; 0 skips it)")
    parser.add_argument("--compose", default="docker-compose", help="the compose v1 command (default docker-compose)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.workers < 1:
        parser.error("n, repeats and workers must be positive")
    args.compose = compose_peer(parser, args.compose)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_against_peer(parse_args(argv), Bench, temp_prefix="bench-compose-", report=report)


if __name__ == "__main__":
    sys.exit(main())
