#!/usr/bin/env python3
"""Benchmark ``reconcile apply`` against floors measured in the same run with the Docker SDK.

    python bench/bench_apply.py [--sizes 30,100] [--workers 4] [--cold-repeats 2] [--noop-repeats 7]

For each stack size N it measures, as whole processes (wall clock, peak RSS):

  cold apply   ``reconcile apply -f spec --workers W`` on an empty engine, versus a
               Python process that imports docker, creates a bridge network and
               creates+starts the same N containers on it (as the stack's default
               network, with the same aliases) with ``docker.APIClient`` from a
               pool of W threads;
  no-op apply  ``reconcile apply`` again on the converged stack, versus a Python
               process that imports docker and makes one filtered list call per
               object kind (containers, networks, volumes, images);

and prints ours / floor ratios next to the targets (cold <= 1.15, no-op <= 1.5),
plus the no-op apply's engine read/write counts. It is a benchmark, not a test:
nothing is asserted about timing; the exit code is 1 only when something failed.

Every container it creates is labelled (the stack label ``reconciler.labels.STACK``
``=bench-<id>`` for ours, ``io.reconciler-bench.floor=<id>`` for the floor) and
removed at the end, also on error or Ctrl-C. Nothing outside a temporary directory is written
(the reconciler's lock directory is pointed into it too).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from reconciler.labels import STACK as STACK_LABEL
from reconciler.waiting import PollTimeout, poll_until

IMAGE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")
FLOOR_LABEL = "io.reconciler-bench.floor"
COLD_TARGET = 1.15
NOOP_TARGET = 1.5

# --------------------------------------------------------------------------
# The floor processes. Written to the temp dir and run with the same
# interpreter, so interpreter start-up and the docker import are paid by both
# sides. The client is built like the reconciler builds its own
# (environment kwargs, version="auto", one shared client for all threads).
# --------------------------------------------------------------------------
FLOOR_COMMON = '''
import json, sys
import docker
from docker.utils import kwargs_from_env

def client():
    return docker.APIClient(version="auto", timeout=120, **kwargs_from_env())
'''

FLOOR_COLD = FLOOR_COMMON + '''
import hashlib
from concurrent.futures import ThreadPoolExecutor

def main():
    cfg = json.loads(sys.argv[1])
    api = client()
    prefix, label, run_id = cfg["prefix"], cfg["label"], cfg["run_id"]
    # Labels of about the size the reconciler writes (ownership, key, replica,
    # config hash, per-field hashes: ~400 bytes).
    fields = json.dumps({k: hashlib.sha256(k.encode()).hexdigest()[:8] for k in
                         ("command", "image", "image_build", "init", "restart", "stop_grace_period")},
                        sort_keys=True, separators=(",", ":"))

    def one(i):
        name = f"{prefix}-c{i}-1"
        labels = {
            label: run_id,
            "io.reconciler-bench.kind": "container",
            "io.reconciler-bench.name": f"c{i}",
            "io.reconciler-bench.replica": "1",
            "io.reconciler-bench.config-hash": hashlib.sha256(name.encode()).hexdigest(),
            "io.reconciler-bench.fields": fields,
        }
        api.create_container(
            image=cfg["image"], name=name, command=cfg["command"], labels=labels,
            stop_timeout=cfg["stop_timeout"], host_config=api.create_host_config(init=True, network_mode=network),
            networking_config=api.create_networking_config({network: api.create_endpoint_config(aliases=[f"c{i}"])}),
        )
        api.start(name)

    # Like the stack (and Compose): one bridge network of its own, each container on it under its key.
    network = f"{prefix}_default"
    if cfg["n"]:
        api.create_network(network, driver="bridge", labels={label: run_id})
    with ThreadPoolExecutor(max_workers=cfg["workers"]) as pool:
        list(pool.map(one, range(cfg["n"])))

main()
'''

FLOOR_NOOP = FLOOR_COMMON + '''
def main():
    stack = sys.argv[1]
    api = client()
    owned = {"label": [f"@STACK_LABEL@={stack}"]}
    api.containers(all=True, filters=owned)
    api.networks(filters=owned)
    api.volumes(filters=owned)
    api.images()

main()
'''.replace("@STACK_LABEL@", STACK_LABEL)  # the floor imports docker only: the label is written into its text

# Runs the reconciler's own CLI with every HTTP request to the engine recorded
# (method and path) into $BENCH_TRACE. Used only for the untimed call breakdown.
TRACER = '''
import json, os, sys
import requests

calls = []
_send = requests.Session.send

def send(self, request, **kwargs):
    response = _send(self, request, **kwargs)
    calls.append([request.method, request.path_url])
    return response

requests.Session.send = send
from reconciler.cli import main
try:
    code = main(sys.argv[1:])
finally:
    with open(os.environ["BENCH_TRACE"], "w") as fh:
        json.dump(calls, fh)
sys.exit(code)
'''


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# Child processes: wall clock and that one child's own peak RSS (os.wait4).
# --------------------------------------------------------------------------
@dataclass
class Run:
    seconds: float
    maxrss_mib: float
    code: int
    out: str
    err: str


_LIVE_CHILDREN: list[subprocess.Popen] = []


def run_child(argv: list[str], *, env: dict[str, str], cwd: str, check: bool = True) -> Run:
    """Run ``argv`` to completion; time it from fork to reaping; its own ru_maxrss."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
        _LIVE_CHILDREN.append(proc)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if proc.returncode is None:  # interrupted while waiting: do not leave it running
                proc.kill()
                proc.wait()
            _LIVE_CHILDREN.remove(proc)
        out.seek(0)
        err.seek(0)
        run = Run(seconds, usage.ru_maxrss / 1024.0, proc.returncode,
                  out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    if check and run.code != 0:
        raise BenchError(f"{' '.join(argv)} exited {run.code}\n--- stdout\n{run.out[-2000:]}\n--- stderr\n{run.err[-2000:]}")
    return run


def _kill_children() -> bool:
    killed = False
    for proc in list(_LIVE_CHILDREN):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            killed = True
    return killed


# --------------------------------------------------------------------------
# The engine, from the benchmark process itself (never inside a timed region).
# --------------------------------------------------------------------------
class Engine:
    def __init__(self) -> None:
        import docker
        from docker.utils import kwargs_from_env

        self.docker = docker
        self.api = docker.APIClient(version="auto", timeout=120, **kwargs_from_env())

    def containers(self, label: str) -> list[dict]:
        return self.api.containers(all=True, filters={"label": [label]})

    def running(self, label: str) -> int:
        return sum(1 for c in self.containers(label) if c.get("State") == "running")

    def remove(self, label: str) -> int:
        """Force-remove every container carrying ``label`` (key=value); return how many."""
        found = self.containers(label)

        def rm(container: dict) -> None:
            try:
                self.api.remove_container(container["Id"], force=True)
            except self.docker.errors.NotFound:
                pass

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(rm, found))
        try:
            poll_until(lambda: not self.containers(label), timeout=60, interval=0.2)
        except PollTimeout:
            raise BenchError(f"containers labelled {label} still present after removal") from None
        return len(found)

    def remove_networks_volumes(self, label: str) -> None:
        """The stack's default network (its containers name none), and whatever else the stack owns."""
        for net in self.api.networks(filters={"label": [label]}):
            self.api.remove_network(net["Id"])
        for vol in self.api.volumes(filters={"label": [label]}).get("Volumes") or []:
            self.api.remove_volume(vol["Name"], force=True)


# --------------------------------------------------------------------------
# The benchmark.
# --------------------------------------------------------------------------
@dataclass
class SizeResult:
    n: int
    cold_ours: list[Run] = field(default_factory=list)
    cold_floor: list[Run] = field(default_factory=list)
    noop_ours: list[Run] = field(default_factory=list)
    noop_floor: list[Run] = field(default_factory=list)
    noop_calls: dict = field(default_factory=dict)
    noop_trace: dict = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace, engine: Engine, tmp: Path) -> None:
        self.args = args
        self.engine = engine
        self.tmp = tmp
        self.run_id = secrets.token_hex(4)
        self.stack = f"bench-{self.run_id}"
        self.stack_label = f"{STACK_LABEL}={self.stack}"
        self.floor_label = f"{FLOOR_LABEL}={self.run_id}"
        self.floor_prefix = f"benchfloor-{self.run_id}"
        self.env = dict(os.environ)
        self.env["RECONCILER_LOCK_DIR"] = str(tmp / "locks")
        self.env["RECONCILER_STATE_DIR"] = str(tmp / "state")  # the reconciler's record, like a first install
        for var in ("PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC", "PYTHONDEVMODE"):
            self.env.pop(var, None)
        self.inherited_no_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
        if args.pycache:
            # Measure the steady state of an installed tool (bytecode cached, as pip
            # leaves it) even where PYTHONDONTWRITEBYTECODE is set: .pyc files go to a
            # prefix in the temp dir, never into the repository. The warm-up fills it.
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        self.reconcile = reconcile_command()
        self.interrupted = False
        (tmp / "floor_cold.py").write_text(FLOOR_COLD)
        (tmp / "floor_noop.py").write_text(FLOOR_NOOP)
        (tmp / "tracer.py").write_text(TRACER)

    # -- specs -------------------------------------------------------------
    def spec(self, n: int) -> Path:
        folder = self.tmp / f"stack-{n}"
        folder.mkdir(exist_ok=True)
        lines = [f"name: {self.stack}", "containers:"]
        for i in range(n):
            lines += [
                f"  c{i}:",
                f"    image: {IMAGE}",
                '    command: ["sleep", "3600"]',
                "    init: true",
                "    stop_grace_period: 1s",
            ]
        path = folder / "stack.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def apply_argv(self, spec: Path, *extra: str) -> list[str]:
        return [*self.reconcile, "apply", "-f", str(spec), "--workers", str(self.args.workers), *extra]

    # -- sides -------------------------------------------------------------
    def ours_cold(self, spec: Path, n: int) -> Run:
        run = self.run(self.apply_argv(spec))
        running = self.engine.running(self.stack_label)
        if running != n:
            raise BenchError(f"after our cold apply {running} of {n} containers are running\n{run.out[-2000:]}")
        return run

    def floor_cold(self, n: int) -> Run:
        cfg = {"n": n, "workers": self.args.workers, "image": IMAGE, "command": ["sleep", "3600"],
               "stop_timeout": 1, "prefix": self.floor_prefix, "label": FLOOR_LABEL, "run_id": self.run_id}
        run = self.run([sys.executable, str(self.tmp / "floor_cold.py"), json.dumps(cfg)])
        running = self.engine.running(self.floor_label)
        if running != n:
            raise BenchError(f"after the floor's cold create {running} of {n} containers are running")
        return run

    def ours_noop(self, spec: Path) -> Run:
        run = self.run(self.apply_argv(spec))
        if "nothing to do" not in run.out:
            raise BenchError(f"the second apply was not a no-op:\n{run.out[-2000:]}")
        return run

    def floor_noop(self) -> Run:
        return self.run([sys.executable, str(self.tmp / "floor_noop.py"), self.stack])

    def run(self, argv: list[str], **kwargs) -> Run:
        return run_child(argv, env=self.env, cwd=str(self.tmp), **kwargs)

    def noop_calls(self, spec: Path) -> dict:
        report = json.loads(self.run(self.apply_argv(spec, "--output", "json")).out)
        if report.get("changes"):
            raise BenchError(f"the --output json apply was not a no-op: {report['changes'][:3]}")
        calls = report.get("engine_calls") or {}
        return {"read": calls.get("read", 0), "write": calls.get("write", 0)}

    def trace(self, spec: Path) -> dict:
        """Untimed: every HTTP request a no-op apply makes, grouped as "METHOD /path"."""
        env = dict(self.env, BENCH_TRACE=str(self.tmp / "trace.json"))
        run_child([sys.executable, str(self.tmp / "tracer.py"), "apply", "-f", str(spec),
                   "--workers", str(self.args.workers), "--output", "json"], env=env, cwd=str(self.tmp))
        grouped: dict[str, int] = {}
        for method, path in json.loads((self.tmp / "trace.json").read_text()):
            key = f"{method} {_endpoint(path)}"
            grouped[key] = grouped.get(key, 0) + 1
        return grouped

    def cleanup_ours(self) -> None:
        self.engine.remove(self.stack_label)
        self.engine.remove_networks_volumes(self.stack_label)  # the stack's default network: each cold apply makes it

    def cleanup_floor(self) -> None:
        self.engine.remove(self.floor_label)
        self.engine.remove_networks_volumes(self.floor_label)

    def cleanup_all(self) -> None:
        if _kill_children() or self.interrupted:
            time.sleep(1.0)  # let a create the engine was still answering land before listing
        for label in (self.stack_label, self.floor_label):
            try:
                removed = self.engine.remove(label)
                self.engine.remove_networks_volumes(label)
                if removed:
                    log(f"cleanup: removed {removed} containers labelled {label}")
            except Exception as exc:  # keep cleaning the rest, but say so
                log(f"cleanup of {label} failed: {exc}")

    # -- the whole run ---------------------------------------------------------
    def warm_up(self, spec: Path) -> None:
        """Untimed: page cache and .pyc files for both sides (a plan, a destroy of the empty stack; the floors, creating nothing)."""
        self.run([*self.reconcile, "plan", "-f", str(spec)])
        # An empty spec is refused by apply: destroying the stack, which owns nothing yet, runs the same path.
        self.run([*self.reconcile, "destroy", "-f", str(self.empty_spec())])
        self.floor_noop()
        cfg = {"n": 0, "workers": 1, "image": IMAGE, "command": ["true"], "stop_timeout": 1,
               "prefix": self.floor_prefix, "label": FLOOR_LABEL, "run_id": self.run_id}
        self.run([sys.executable, str(self.tmp / "floor_cold.py"), json.dumps(cfg)])

    def empty_spec(self) -> Path:
        folder = self.tmp / "stack-empty"
        folder.mkdir(exist_ok=True)
        path = folder / "stack.yaml"
        path.write_text(f"name: {self.stack}\ncontainers: {{}}\n")
        return path

    def measure(self, n: int) -> SizeResult:
        result = SizeResult(n)
        spec = self.spec(n)
        self.cleanup_ours()
        self.cleanup_floor()
        for rep in range(self.args.cold_repeats):
            order = ("ours", "floor") if rep % 2 == 0 else ("floor", "ours")
            for side in order:
                tag = f"[N={n}] cold {side} {rep + 1}/{self.args.cold_repeats}"
                if side == "ours":
                    run = self.ours_cold(spec, n)
                    result.cold_ours.append(run)
                    log(f"{tag}: {run.seconds:.2f}s, {run.maxrss_mib:.1f} MiB")
                    if not result.noop_ours:
                        self.measure_noop(spec, result)
                    self.cleanup_ours()
                else:
                    run = self.floor_cold(n)
                    result.cold_floor.append(run)
                    log(f"{tag}: {run.seconds:.2f}s, {run.maxrss_mib:.1f} MiB")
                    self.cleanup_floor()
        return result

    def measure_noop(self, spec: Path, result: SizeResult) -> None:
        """On the converged stack: ours and the floor, alternately, then the call counts."""
        for _ in range(self.args.noop_repeats):
            result.noop_ours.append(self.ours_noop(spec))
            result.noop_floor.append(self.floor_noop())
        log(f"[N={result.n}] no-op ours median {median_s(result.noop_ours):.3f}s, "
            f"floor median {median_s(result.noop_floor):.3f}s ({self.args.noop_repeats} each)")
        result.noop_calls = self.noop_calls(spec)
        result.noop_trace = self.trace(spec)
        if self.args.importtime and not getattr(self, "importtime_done", False):
            self.importtime_done = True
            self.importtime_report = self.importtime(spec)

    def importtime(self, spec: Path) -> list[tuple[str, int, int]]:
        """Untimed: ``python -X importtime -m reconciler apply`` (no-op), top-level imports by cumulative time."""
        run = self.run([sys.executable, "-X", "importtime", "-m", "reconciler", "apply", "-f", str(spec),
                        "--workers", str(self.args.workers)])
        rows = []
        for line in run.err.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
            if m:
                rows.append((m.group(4), len(m.group(3)), int(m.group(1)), int(m.group(2))))
        top = [(name, self_us, cum_us) for name, depth, self_us, cum_us in rows if depth == 0]
        return sorted(top, key=lambda r: -r[2])


def _endpoint(path: str) -> str:
    path = path.split("?", 1)[0]
    path = re.sub(r"^/v\d+\.\d+", "", path)
    path = re.sub(r"^/(containers|networks|volumes)/(?!json$|create$)[^/]+", r"/\1/{id}", path)
    return path


def reconcile_command() -> list[str]:
    """The ``reconcile`` console script beside this interpreter (not a pyenv shim), else ``-m reconciler``."""
    script = Path(sys.executable).with_name("reconcile")
    if script.is_file():
        with open(script, "rb") as fh:
            if fh.read(2) == b"#!":
                return [str(script)]
    return [sys.executable, "-m", "reconciler"]


# --------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------
def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_s(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def median_rss(runs: list[Run]) -> float:
    return statistics.median(r.maxrss_mib for r in runs)


def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def machine_info(engine: Engine) -> str:
    version = engine.api.version()
    info = engine.api.info()
    import docker

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        f"machine: nproc {affinity} (cpu_count {os.cpu_count()}), {platform.machine()}, kernel {platform.release()}, "
        f"load avg {load}",
        f"docker:  server {version.get('Version')} (API {version.get('ApiVersion')}), storage {info.get('Driver')}, "
        f"engine CPUs {info.get('NCPU')}, engine memory {info.get('MemTotal', 0) / 2**30:.1f} GiB",
        f"python:  {platform.python_version()} ({sys.executable}), docker SDK {docker.__version__}",
    ])


def report(bench: Bench, results: list[SizeResult], total: float) -> str:
    args = bench.args
    out = [
        "",
        f"reconcile apply vs Docker SDK floor -- workers {args.workers}, cold x{args.cold_repeats} "
        f"(median), no-op x{args.noop_repeats} (median), image {IMAGE}",
        f"ours:  {' '.join(bench.reconcile)} apply -f <spec> --workers {args.workers}",
        f"floor: {sys.executable} <floor script> (import docker; APIClient create_network, then "
        "create_container+start on it / 4 list calls)",
        "bytecode: " + ("cached in a temp PYTHONPYCACHEPREFIX (steady state of an installed tool)"
                        + ("; PYTHONDONTWRITEBYTECODE=1 in the environment was overridden for the children"
                           if bench.inherited_no_bytecode else "")
                        if args.pycache else "environment as inherited"
                        + (" (PYTHONDONTWRITEBYTECODE=1: our own modules are compiled from source on every run)"
                           if bench.inherited_no_bytecode else "")),
        "",
    ]
    rows = []
    for r in results:
        for what, ours, floor, target in (
            ("cold apply", r.cold_ours, r.cold_floor, COLD_TARGET),
            ("no-op apply", r.noop_ours, r.noop_floor, NOOP_TARGET),
        ):
            o, f = median_s(ours), median_s(floor)
            ratio = o / f
            rows.append([str(r.n), what, f"{o:.3f}", f"{f:.3f}", f"{ratio:.2f}", f"<= {target:.2f}",
                         "OK" if ratio <= target else "over"])
    out.append(table(["N", "measurement", "ours (s)", "floor (s)", "ratio", "target", "verdict"], rows, {0, 2, 3, 4}))

    out += ["", "individual runs (s):"]
    for r in results:
        for what, runs in (("cold ours", r.cold_ours), ("cold floor", r.cold_floor),
                           ("no-op ours", r.noop_ours), ("no-op floor", r.noop_floor)):
            out.append(f"  N={r.n:<4} {what:<12} " + " ".join(f"{x.seconds:.3f}" for x in runs))

    out += ["", "peak memory (max RSS of the process, MiB, median):"]
    rows = []
    for r in results:
        for what, ours, floor in (("cold apply", r.cold_ours, r.cold_floor),
                                  ("no-op apply", r.noop_ours, r.noop_floor)):
            o, f = median_rss(ours), median_rss(floor)
            rows.append([str(r.n), what, f"{o:.1f}", f"{f:.1f}", f"{o / f:.2f}"])
    out.append(table(["N", "process", "ours (MiB)", "floor (MiB)", "ratio"], rows, {0, 2, 3, 4}))

    out += ["", "engine calls of one no-op `reconcile apply --output json` (engine_calls of its report):"]
    # engine_calls counts the client's one API version negotiation as a read too.
    rows = [[str(r.n), str(r.noop_calls["read"]), str(r.noop_calls["write"]),
             f"{(r.noop_calls['read'] - 1) / 4:g}"] for r in results]
    out.append(table(["N", "reads", "writes", "list reads per kind (4 kinds, after 1 version read)"],
                     rows, {0, 1, 2, 3}))
    reads = {r.noop_calls["read"] for r in results}
    writes = {r.noop_calls["write"] for r in results}
    out.append(f"reads constant across N: {'yes' if len(reads) == 1 else 'NO'}; "
               f"writes zero: {'yes' if writes == {0} else 'NO'}")

    out += ["", "every HTTP request of a no-op apply (traced, independently of engine_calls):"]
    keys = sorted({k for r in results for k in r.noop_trace})
    rows = [[k, *[str(r.noop_trace.get(k, 0)) for r in results]] for k in keys]
    out.append(table(["request", *[f"N={r.n}" for r in results]], rows, set(range(1, len(results) + 1))))

    if getattr(bench, "importtime_report", None):
        top = bench.importtime_report
        total_us = sum(c for _, _, c in top)
        out += ["", f"top-level imports of a no-op apply (python -X importtime; all top-level: {total_us / 1000:.0f} ms):"]
        rows = [[name, f"{cum / 1000:.1f}", f"{self_us / 1000:.1f}"] for name, self_us, cum in top[:15]]
        out.append(table(["module", "cumulative (ms)", "self (ms)"], rows, {1, 2}))

    out += ["", f"total benchmark time {total:.0f}s"]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="30,100", help="comma-separated stack sizes (default 30,100)")
    parser.add_argument("--workers", type=int, default=4, help="parallel workers, both sides (default 4)")
    parser.add_argument("--cold-repeats", type=int, default=2, help="cold applies per side and N (default 2)")
    parser.add_argument("--noop-repeats", type=int, default=7, help="no-op applies per side and N (default 7)")
    parser.add_argument("--no-pycache", dest="pycache", action="store_false",
                        help="keep the inherited bytecode settings (by default children cache .pyc files in a "
                             "temp PYTHONPYCACHEPREFIX, overriding PYTHONDONTWRITEBYTECODE)")
    parser.add_argument("--importtime", action="store_true",
                        help="also print the top imports of a no-op apply (python -X importtime)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, not {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1 or args.workers < 1 or args.cold_repeats < 1 or args.noop_repeats < 1:
        parser.error("sizes, workers and repeats must be positive")
    return args


def open_engine() -> Engine | None:
    """The engine with the base image, its description printed; None (and why, logged) without them.

    Also makes SIGTERM run the caller's cleanup in ``finally``.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        engine = Engine()
        engine.api.ping()
        engine.api.inspect_image(IMAGE)
    except Exception as exc:
        log(f"error: no engine or no {IMAGE} ({exc}); run scripts/engine.sh up")
        return None
    print(machine_info(engine), flush=True)
    return engine


T = TypeVar("T")


def run_on_extra_engines(bench, work: Callable[[], T], render: Callable[[T], str], *, started: float,
                         stop_engines: Callable[[], None] | None) -> int:
    """Run a bench whose engines ``scripts/engines.sh`` started: ``work`` guarded, then the bench's
    ``destroy`` and ``stop_engines`` (None: the engines ran before, and are left running), then the report."""
    def cleanup() -> None:
        bench.destroy()
        if stop_engines is not None:
            stop_engines()

    code, result = run_guarded(bench, work, cleanup=cleanup)
    if result:
        print(render(result))
        print(f"total {time.monotonic() - started:.0f} s")
    return code


def run_guarded(bench, work: Callable[[], T], *, cleanup: Callable[[], None]) -> tuple[int, T | None]:
    """``(0, work())``, or an exit code when it failed (1) or was interrupted (130); ``cleanup`` always runs.

    ``bench.interrupted`` tells the cleanup that the engine may hold half-made objects.
    """
    try:
        return 0, work()
    except BenchError as exc:
        log(f"error: {exc}")
        return 1, None
    except KeyboardInterrupt:
        bench.interrupted = True
        log("interrupted")
        return 130, None
    except SystemExit:
        bench.interrupted = True
        raise
    finally:
        cleanup()


def exit_with(main: Callable[[], int]) -> None:
    """``sys.exit(main())``; a BenchError raised outside ``run_guarded`` (engines that would not start)
    is one logged line and exit code 1, not a traceback."""
    try:
        code = main()
    except BenchError as exc:
        log(f"error: {exc}")
        code = 1
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    engine = open_engine()
    if engine is None:
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as tmpdir:
        bench = Bench(args, engine, Path(tmpdir))
        log(f"stack {bench.stack}, floor label {bench.floor_label}, temp dir {tmpdir}")
        code, results = run_guarded(
            bench, lambda: (bench.warm_up(bench.spec(min(args.sizes))), [bench.measure(n) for n in args.sizes])[1],
            cleanup=bench.cleanup_all)
        if code:
            return code
    print(report(bench, results, time.monotonic() - started), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
