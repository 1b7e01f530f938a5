#!/usr/bin/env python3
"""The status API and page of a 50-container stack: latency, and engine requests per call.

    python bench/bench_status.py                     # about a minute
    python bench/bench_status.py --containers 50 --calls 200

A daemon runs in this process (its ASGI app called directly, so no HTTP client
shares the figures) over a local directory holding one stack of
``--containers`` ``sleep`` containers (one container key with replicas, on the
real engine). Once its first pass converged it, each route is called
``--calls`` times in turn and timed:

- ``/healthz`` and ``/api/stacks`` (no engine call): what the server costs;
- the floor, measured in the same run: the engine's own list calls that any
  status must make (containers, images, networks, volumes with the stack's
  label, through a docker-py client of its own), timed as one call;
- ``/api/stacks/NAME``: every object desired against live, the plan, the graph's
  edges. Logs, history and diffs are on demand: none of them is fetched here;
- ``/stacks/NAME?object=container:…`` (the page with one object's panel open):
  the same plus the one inspect that reads its last health output.

It prints p50/p99 of each, ``/api/stacks/NAME``'s p50 over the floor's, and the
engine requests each call made (counted as the reconciler counts them: every
response of its engine client, plus the ``/info`` that opened it).

It is a benchmark, not a test: the exit code is 1 only when something failed.
The stack is named ``bstat-<random>``; everything is removed at the end, also
on an error or Ctrl-C, and nothing outside a temporary directory is written.
"""
from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_api import percentile
from bench_apply import IMAGE, STACK_LABEL, BenchError, log, open_engine, run_guarded

from reconciler.testing.asgi import asgi_request

SPEC = """name: {name}
containers:
  web: {{image: "{image}", command: ["sleep", "3600"], init: true, stop_grace_period: 1s, replicas: {n}}}
"""


def call(app, path: str, cookie: str = "", method: str = "GET", body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request to the ASGI app: (status, headers, body)."""
    return asgi_request(app, method, path, body=body, headers=_form_headers(body, cookie), server="bench")


def _form_headers(body: bytes, cookie: str) -> list[tuple[str, str]]:
    headers = [("content-length", str(len(body))), ("content-type", "application/x-www-form-urlencoded")]
    return headers + ([("cookie", cookie)] if cookie else [])


class StatusBench:
    def __init__(self, args: argparse.Namespace, engine, workdir: Path) -> None:
        self.args, self.engine, self.workdir = args, engine, workdir
        self.stack = f"bstat-{secrets.token_hex(4)}"
        self.contexts: list = []
        self.interrupted = False

    def start(self):
        from reconciler.daemon import Daemon, load_config
        from reconciler.daemon.auth import load_tokens
        from reconciler.daemon.config import ApiConfig
        from reconciler.daemon.metrics import Metrics
        from reconciler.daemon.server import make_app
        from reconciler.loop import Trigger
        from reconciler.reconcile import Reconciler
        from reconciler.state import StateStore

        (self.workdir / "stacks" / "app").mkdir(parents=True)
        (self.workdir / "stacks" / "app" / "stack.yaml").write_text(
            SPEC.format(name=self.stack, image=IMAGE, n=self.args.containers))
        config = self.workdir / "daemon.yaml"
        config.write_text(json.dumps({"state_dir": str(self.workdir / "state"), "resync": 3600, "sources": [
            {"name": "here", "dir": str(self.workdir / "stacks"), "paths": ["app"]}]}))
        token = secrets.token_urlsafe(24)
        tokens = self.workdir / "tokens"
        tokens.write_text(f"viewer read {token}\n")
        tokens.chmod(0o600)
        reconciler = Reconciler(state=StateStore.open(self.workdir / "state"))
        daemon = Daemon(load_config(str(config)), reconciler=reconciler)
        drivers = daemon.reconciler.drivers

        def counted(stack: str):  # every run's driver context: its stats count the engine's responses
            made = drivers(stack)
            self.contexts.append(made.context)
            return made
        daemon.reconciler.drivers = counted
        (worker,) = daemon.workers
        log(f"applying {self.args.containers} containers")
        first = worker.loop.run_pass(Trigger.START)
        daemon._passed(worker, first)
        if not first.ok:
            raise BenchError(f"the first pass failed: {first.error}")
        self.app = make_app(daemon, ApiConfig(tokens_file=str(tokens)), load_tokens(str(tokens)), {}, Metrics())
        status, headers, _ = call(self.app, "/login", method="POST", body=f"token={token}".encode())
        if status != 303:
            raise BenchError(f"the page's login answered {status}")
        self.cookie = headers["set-cookie"].split(";")[0]

    def timed(self, path: str) -> tuple[list[float], float]:
        """``--calls`` timings of ``path``, and the engine requests per call."""
        seconds, before = [], len(self.contexts)
        for _ in range(self.args.calls):
            started = time.perf_counter()
            status, _, _ = call(self.app, path, self.cookie)
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise BenchError(f"{path} answered {status}")
        made = self.contexts[before:]
        requests = sum(c.stats["read"] + c.stats["write"] for c in made)
        return seconds, requests / self.args.calls

    def floor(self) -> list[float]:
        """The engine's own list calls for the stack, as one call: what any status of it costs at least."""
        api, label = self.engine.api, [f"{STACK_LABEL}={self.stack}"]
        seconds = []
        for _ in range(self.args.calls):
            started = time.perf_counter()
            api.containers(all=True, filters={"label": label})
            api.images(filters={"reference": IMAGE})
            api.networks(filters={"label": label})
            api.volumes(filters={"label": label})
            seconds.append(time.perf_counter() - started)
        return seconds

    def cleanup(self) -> None:
        self.engine.remove(f"{STACK_LABEL}={self.stack}")
        self.engine.remove_networks_volumes(f"{STACK_LABEL}={self.stack}")


def line(name: str, seconds: list[float], requests: float | None = None) -> str:
    ms = [1000 * s for s in seconds]
    calls = "" if requests is None else f", {requests:g} engine requests per call"
    return f"{name:<44} p50 {statistics.median(ms):7.1f} ms  p99 {percentile(ms, 0.99):7.1f} ms{calls}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50, help="containers in the stack (default 50)")
    parser.add_argument("--calls", type=int, default=100, help="calls of each route (default 100)")
    args = parser.parse_args(argv)
    if args.containers < 1 or args.calls < 1:
        parser.error("containers and calls must be positive")
    started = time.monotonic()
    engine = open_engine()
    if engine is None:
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        bench = StatusBench(args, engine, Path(tmp))
        log(f"stack {bench.stack}, temp dir {tmp}")

        def work() -> list[str]:
            bench.start()
            name = bench.stack
            healthz, _ = bench.timed("/healthz")
            listing, listed = bench.timed("/api/stacks?limit=1000")
            floor = bench.floor()
            detail, asked = bench.timed(f"/api/stacks/{name}")
            panel, opened = bench.timed(f"/stacks/{name}?object=container:{name}-web-1")
            ratio = statistics.median(detail) / statistics.median(floor)
            return [line("/healthz", healthz, 0), line("/api/stacks (no engine call)", listing, listed),
                    line("floor: the engine's 4 list calls", floor, 4),
                    line(f"/api/stacks/{name}", detail, asked),
                    line("page with one object's panel open", panel, opened),
                    f"/api/stacks/NAME p50 over the floor's: {ratio:.2f}x   "
                    f"({args.containers} containers, {args.calls} calls each)"]

        code, lines = run_guarded(bench, work, cleanup=bench.cleanup)
        if code:
            return code
    print("\n".join(lines), flush=True)
    log(f"took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
