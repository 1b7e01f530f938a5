#!/usr/bin/env python3
"""N one-container stacks on one ``reconcile daemon``: cold start against ``docker run -d``, then what it costs.

    python bench/bench_scale.py                                  # N = 100, 300, 1,000; one source and N: hours
    python bench/bench_scale.py --sizes 20 --sources one --idle 10 --drift-trials 5
    python bench/bench_scale.py --sizes 1000 --profile /tmp/prof   # the daemon under py-spy record

For each N and each way of listing the stacks (``one`` git source listing N paths, or ``many``: N sources
of one path), on the engine this process talks to (``$DOCKER_HOST``):

1. the floor, measured in the same run: ``docker run -d`` of N containers like the stacks' (same image,
   ``sleep 1d``, ``--init``), through the Docker SDK from ``--workers`` threads (default 4), no network
   of ours; removed again, untimed;
2. ``reconcile daemon`` (this interpreter's, whatever daemon is installed) started on a fresh state
   directory and git remote; **cold** is the seconds from its start until ``/api/stacks`` says every
   stack converged and the engine runs N containers of them, and ``x floor`` its ratio to the floor;
3. after convergence: **passes** (``reconciler_syncs_total``, every result), then **idle CPU** over
   ``--idle`` seconds (% of one core) twice in a row: the first window right after convergence (the stacks'
   first resyncs since their create, which plan in full), the next one settled (a resync that finds its
   stack as its last empty plan left it ends after observing), with how many resyncs of each window were
   settled; then **RSS**, **threads**, **fds** (/proc);
4. **drift**: ``docker rm -f`` of a random stack container, until the engine's ``start`` event of a new
   container of that name, ``--drift-trials`` times (p50/p99), and ``--burst`` containers at once (the
   median of 3 trials); **drift floor**: the same repair by hand in the same engine state (``docker rm -f``
   of a container like a stack's on a network of its own, then create and start it again, until its
   ``start`` event), as many times (``reconciler.testing.scaledrift``);
5. **commit**: one stack's env changed in a new commit and pushed (git sources poll every second), until
   its container was replaced, with how many of the other stacks' containers changed id (0 expected);
6. **/api/stacks** p50/p99 over ``--api-calls`` calls (every page, if it paginates);
7. **SIGTERM**: seconds from SIGTERM to the daemon's exit, then the **state db** (state.db and any
   journal file it left).

``--workers N`` also writes ``workers: N`` into daemon.yaml (a daemon that does not know the key refuses
it); without it the daemon sizes its own pool. ``--resync S`` writes ``resync: S``. ``--no-default-network``
runs the containers with ``network_mode: none``; otherwise the floor makes each container a bridge network of
its own first, as the daemon does for each stack.

It is a benchmark, not a test: nothing about timing is asserted; the exit code is 1 only when something
failed. Stacks are named ``scale-<run>-NNNN``; everything is removed at the end, also on an error or
Ctrl-C, and nothing outside a temporary directory (and ``--profile``'s) is written.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_apply import BenchError, exit_with, log

from reconciler.testing import scale, scaledrift

COLUMNS = ("N", "sources", "cold s", "x floor", "floor s", "passes", "RSS MiB", "threads", "fds", "idle CPU % first/next",
           "state db KiB", "drift p50/p99 s", "drift floor p50/p99 s", "burst s", "commit s", "others changed", "/api/stacks p50/p99 ms",
           "SIGTERM s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,300,1000", help="stack counts, comma-separated")
    parser.add_argument("--sources", default="one,many", help="one, many, or both (comma-separated)")
    parser.add_argument("--workers", type=int, default=None,
                        help="the floor's threads and the daemon's workers: (default: floor 4, daemon its own)")
    parser.add_argument("--idle", type=float, default=60, help="seconds of idle CPU measured (default 60)")
    parser.add_argument("--drift-trials", type=int, default=20)
    parser.add_argument("--burst", type=int, default=10, help="containers removed at once (default 10)")
    parser.add_argument("--api-calls", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=3600, help="cold convergence's limit (seconds)")
    parser.add_argument("--no-default-network", action="store_true", help="network_mode: none instead")
    parser.add_argument("--profile", type=Path, default=None, help="run py-spy record on the daemon into DIR")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the cold-start floor (N networks and containers made and removed: minutes at 1,000)")
    parser.add_argument("--resync", type=float, default=None, help="the daemon's resync (default: its own, 60 s)")
    args = parser.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",")]
    args.sources = [x for x in args.sources.split(",") if x]
    if not set(args.sources) <= {"one", "many"}:
        parser.error("--sources takes one, many or one,many")
    return args


class ScaleBench:
    """One (N, sources) measurement at a time; ``cleanup`` removes whatever is left of it."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.setup: scale.ScaleSetup | None = None
        self.daemon: scale.DaemonProcess | None = None
        self.profiler: subprocess.Popen | None = None
        self.interrupted = False

    def measure(self, n: int, sources: str) -> dict[str, str]:
        args = self.args
        network_mode = "none" if args.no_default_network else None
        floor = None
        if not args.no_floor:
            log(f"N={n} {sources}: floor, {args.workers or 4} threads")
            floor = scale.floor_run(n, args.workers or 4, scale.DEFAULT_IMAGE, network_mode=network_mode,
                                    networks=not args.no_default_network)
        self.setup = scale.make_stacks(self.workdir / f"{n}-{sources}", n, sources=sources,
                                       default_network=not args.no_default_network,
                                       workers=args.workers, resync=args.resync)
        log(f"N={n} {sources}: daemon")
        started = time.monotonic()
        self.daemon = daemon = scale.start_daemon(self.setup)
        self._profile(n, sources)
        cold = scale.wait_converged(daemon, n, args.timeout, since=started)
        passes = scale.passes(daemon.metrics())
        log(f"N={n} {sources}: converged in {cold:.1f} s ({passes} passes); idle {args.idle:.0f} s twice")
        idle = []
        for window in ("first", "next"):
            before = scale.settled_passes(daemon.metrics()), scale.passes(daemon.metrics())
            idle.append(scale.idle_cpu(daemon.pid, args.idle))
            after = scale.settled_passes(daemon.metrics()), scale.passes(daemon.metrics())
            log(f"N={n} {sources}: idle CPU ({window} {args.idle:.0f} s) {idle[-1]:.2f} %, {after[1] - before[1]} "
                f"passes, {after[0] - before[0]} settled")
        proc = scale.sample(daemon.pid)
        log(f"N={n} {sources}: RSS {proc.rss_mib:.0f} MiB, {proc.threads} threads, {proc.fds} fds")
        log(f"N={n} {sources}: drift")
        drift = scaledrift.drift_trials(daemon, args.drift_trials)
        burst = statistics.median(scaledrift.drift_trials(daemon, 3, at_once=args.burst).seconds)
        log(f"N={n} {sources}: drift p50/p99 {drift.p50:.2f}/{drift.p99:.2f} s, burst {burst:.2f} s; the floor's")
        drift_floor = scaledrift.drift_floor(args.drift_trials)
        log(f"N={n} {sources}: drift floor p50/p99 {drift_floor.p50:.2f}/{drift_floor.p99:.2f} s")
        commit = scale.commit_one(self.setup, daemon)
        log(f"N={n} {sources}: commit {commit.seconds:.2f} s, {commit.others_changed} others changed")
        api = scale.api_latency(daemon, args.api_calls)
        log(f"N={n} {sources}: /api/stacks p50/p99 {1000 * api.p50:.1f}/{1000 * api.p99:.1f} ms")
        self._stop_profile()
        stop = daemon.stop()
        self.daemon, db = None, self.setup.state_db_bytes()  # once closed: its journal checkpointed
        row = (n, sources, f"{cold:.1f}", f"{cold / floor:.2f}" if floor else "–", f"{floor:.1f}" if floor else "–", passes, f"{proc.rss_mib:.0f}",
               proc.threads, proc.fds, f"{idle[0]:.1f}/{idle[1]:.1f}", f"{db / 1024:.0f}",
               f"{drift.p50:.2f}/{drift.p99:.2f}", f"{drift_floor.p50:.2f}/{drift_floor.p99:.2f}", f"{burst:.2f}", f"{commit.seconds:.2f}", commit.others_changed,
               f"{1000 * api.p50:.1f}/{1000 * api.p99:.1f}", f"{stop:.1f}")
        return dict(zip(COLUMNS, map(str, row)))

    def _profile(self, n: int, sources: str) -> None:
        if not self.args.profile:
            return
        spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
        if not spy:
            raise BenchError("--profile needs py-spy (pip install -e '.[bench]')")
        self.args.profile.mkdir(parents=True, exist_ok=True)
        out = self.args.profile / f"daemon-{n}-{sources}"
        self.profiler = subprocess.Popen([spy, "record", "--pid", str(self.daemon.pid), "--subprocesses",
                                          "--output", f"{out}.svg", "--format", "flamegraph"],
                                         stdout=subprocess.DEVNULL, stderr=open(f"{out}.log", "w"))
        log(f"py-spy records the daemon into {out}.svg")

    def _stop_profile(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)  # py-spy writes its flame graph on SIGINT
            try:
                self.profiler.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
            self.profiler = None

    def cleanup(self) -> None:
        self._stop_profile()
        if self.daemon is not None:
            try:
                self.daemon.stop()
            except RuntimeError as exc:
                log(f"cleanup: {exc}")
            self.daemon = None
        if self.setup is not None:
            scale.cleanup(self.setup)
            self.setup = None


def table(rows: list[dict[str, str]]) -> str:
    """The rows as a Markdown table, as docs/scale.md shows them."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows])


def engine_ready() -> None:
    try:
        client = scale.engine()
        client.ping()
        client.inspect_image(scale.DEFAULT_IMAGE)
    except Exception as exc:  # the bench needs a real engine and the base image
        raise BenchError(f"no engine or no {scale.DEFAULT_IMAGE} ({exc}); run scripts/engine.sh up") from None
    info = client.info()
    print(f"engine {info.get('ServerVersion')}, {info.get('NCPU')} CPUs, {info.get('MemTotal', 0) >> 20} MiB; "
          f"python {sys.version.split()[0]}; nofile {os.sysconf('SC_OPEN_MAX')}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    engine_ready()
    started, rows = time.monotonic(), []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        bench = ScaleBench(args, Path(tmp))
        for n in args.sizes:
            for sources in args.sources:
                try:
                    rows.append(bench.measure(n, sources))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)  # each row as measured, before its clean-up
                except Exception as exc:  # said before the clean-up, which takes minutes at 1,000 stacks
                    log(f"error at N={n} {sources}: {type(exc).__name__}: {exc}")
                    return 1
                except KeyboardInterrupt:
                    bench.interrupted = True
                    log("interrupted")
                    return 130
                finally:
                    bench.cleanup()
    print(table(rows), flush=True)
    log(f"took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    exit_with(main)
