#!/usr/bin/env python3
"""The daemon's HTTP side: webhook commit-to-converged latency, and ``/api/stacks`` under 50 clients.

    python bench/bench_api.py                        # about 2 minutes
    python bench/bench_api.py --trials 20 --clients 50 --idle 10 --seconds 20

``reconcile daemon`` runs with its API on 127.0.0.1 and follows a bare git
repository over file:// whose poll interval is an hour, so only a webhook or a
sync request makes it fetch. Its stack is one ``sleep`` container with an env
value ``V``.

1. Webhook to converged, ``--trials`` times: a commit changing ``V`` is pushed
   (untimed), then a GitHub delivery signed with the webhook's secret is POSTed
   and the time until the container runs with the new value is measured by
   polling the engine (each trial is a fetch, a pass and a replacement). The
   baseline, measured in the same run: a bare ``docker run -d`` of the same
   container (same image, command, init and env), timed until it runs. It
   prints p50/p95 of both and our p95 minus the baseline's p95, against the
   target: p95 <= 2 s plus the container's own start time.
2. ``/api/stacks`` latency: ``--clients`` threads, each with its own
   keep-alive ``http.client`` connection, GET ``/api/stacks`` back to back,
   first for ``--idle`` seconds with the daemon idle, then for ``--seconds``
   seconds while a loop pushes a commit and POSTs ``/api/stacks/NAME/sync``
   again and again (each sync fetches, replaces the container and records the
   pass). It prints p50/p99/max and requests per second of both phases, and
   how many syncs ran. The clients share this process's GIL, so the figures
   are an upper bound of what the daemon itself adds.

It is a benchmark, not a test: the exit code is 1 only when something failed.
The stack is named ``bapi-<random>``, the baseline's containers carry
``io.reconciler-bench.floor=<random>``; everything is removed at the end, also
on an error or Ctrl-C, and nothing outside a temporary directory is written.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench_apply import IMAGE, STACK_LABEL, FLOOR_LABEL, BenchError, log, open_engine, run_guarded
from bench_loop import wait_until

TARGET_OVER_BASELINE = 2.0  # seconds of p95 on top of the container's own start time
SPEC = """name: {name}
containers:
  web: {{image: "{image}", command: ["sleep", "3600"], init: true, stop_grace_period: 1s, env: {{V: "{version}"}}}}
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Load:
    """What the clients of one phase saw."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    syncs: list[float] = field(default_factory=list)
    #: Why the sync loop stopped early, if it did.
    failure: str = ""

    def line(self) -> str:
        n = len(self.latencies)
        if not n:
            return f"no answer at all ({self.errors} errors)"
        ms = [1000 * x for x in self.latencies]
        return (f"{n} requests, {n / self.seconds:.0f} req/s, p50 {statistics.median(ms):.1f} ms, "
                f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms, {self.errors} errors")


class ApiBench:
    """One daemon with its API on, its git repository, and the stack it keeps."""

    def __init__(self, args: argparse.Namespace, engine, workdir: Path) -> None:
        self.args, self.engine, self.workdir = args, engine, workdir
        self.run_id = secrets.token_hex(4)
        self.stack = f"bapi-{self.run_id}"
        self.container = f"{self.stack}-web-1"
        self.floor_label = f"{FLOOR_LABEL}={self.run_id}"
        self.write_token, self.read_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.hook_secret = secrets.token_urlsafe(24)
        self.version = 0
        self.daemon: subprocess.Popen | None = None
        self.log_lines: list[str] = []
        self.url = ""
        self.interrupted = False

    # -- git --------------------------------------------------------------------------

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return subprocess.run(["git", *args], cwd=cwd or self.workdir, check=True, capture_output=True,
                              text=True).stdout

    def commit(self) -> str:
        """Push a commit that changes the container's env to the next version; its revision."""
        self.version += 1
        work = self.workdir / "work"
        (work / "app").mkdir(exist_ok=True)
        (work / "app" / "stack.yaml").write_text(SPEC.format(name=self.stack, image=IMAGE, version=self.version))
        self.git("add", "-A", cwd=work)
        self.git("-c", "user.email=b@example.invalid", "-c", "user.name=b", "commit", "-qm", str(self.version), cwd=work)
        self.git("push", "-q", "origin", "main", cwd=work)
        return self.git("rev-parse", "HEAD", cwd=work).strip()

    # -- the daemon -------------------------------------------------------------------

    def start(self) -> None:
        remote = self.workdir / "origin.git"
        self.git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
        self.git("clone", "--quiet", str(remote), str(self.workdir / "work"))
        self.git("checkout", "--quiet", "-B", "main", cwd=self.workdir / "work")
        self.commit()
        tokens = self.workdir / "tokens"
        tokens.write_text(f"bench write {self.write_token}\nviewer read {self.read_token}\n")
        tokens.chmod(0o600)
        secret = self.workdir / "hook.secret"
        secret.write_text(self.hook_secret)
        config = self.workdir / "daemon.yaml"
        config.write_text(json.dumps({
            "state_dir": str(self.workdir / "state"), "resync": 3600,
            "api": {"listen": "127.0.0.1:0", "tokens_file": str(tokens)},
            "webhooks": [{"name": "github", "provider": "github", "secret_file": str(secret), "sources": ["repo"]}],
            "sources": [{"name": "repo", "git": {"url": f"file://{remote}", "ref": "main", "interval": 3600},
                         "paths": ["app"]}],
        }))
        env = {**os.environ, "RECONCILER_LOCK_DIR": str(self.workdir / "locks")}
        self.daemon = subprocess.Popen([sys.executable, "-m", "reconciler", "daemon", "--config", str(config),
                                        "--log-format", "json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, env=env)
        threading.Thread(target=self._read_log, daemon=True).start()
        if wait_until(lambda: self.url or self.daemon.poll() is not None, 60, step=0.05) is None or not self.url:
            raise BenchError("the daemon's API never came up:\n" + "".join(self.log_lines[-20:]))
        log(f"daemon pid {self.daemon.pid}, API {self.url}")
        if wait_until(lambda: self.runs_version(self.version), 120, step=0.1) is None:
            raise BenchError("the daemon never brought the stack up:\n" + "".join(self.log_lines[-20:]))

    def _read_log(self) -> None:
        for line in self.daemon.stdout:
            self.log_lines.append(line)
            if not self.url and line.startswith("{"):
                try:
                    self.url = json.loads(line).get("api", "")
                except ValueError:
                    pass

    def runs_version(self, version: int) -> bool:
        try:
            info = self.engine.api.inspect_container(self.container)
        except Exception:
            return False
        return info["State"]["Running"] and f"V={version}" in (info["Config"]["Env"] or [])

    def connection(self) -> http.client.HTTPConnection:
        where = urlsplit(self.url)
        return http.client.HTTPConnection(where.hostname, where.port, timeout=30)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        conn = self.connection()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def deliver(self, revision: str) -> int:
        """A push delivery, signed as GitHub signs it; the answer's status."""
        body = json.dumps({"ref": "refs/heads/main", "after": revision}).encode()
        signature = "sha256=" + hmac.new(self.hook_secret.encode(), body, hashlib.sha256).hexdigest()
        return self.post("/hooks/github", body, {"Content-Type": "application/json", "X-GitHub-Event": "push",
                                                 "X-GitHub-Delivery": str(uuid.uuid4()),
                                                 "X-Hub-Signature-256": signature})

    def sync(self) -> int:
        return self.post(f"/api/stacks/{self.stack}/sync", b"", {"Authorization": f"Bearer {self.write_token}"})

    # -- 1. webhook to converged ------------------------------------------------------

    def webhook_trials(self) -> list[float]:
        latencies = []
        for trial in range(self.args.trials):
            revision = self.commit()
            started = time.monotonic()
            status = self.deliver(revision)
            if status != 202:
                raise BenchError(f"the webhook answered {status}, not 202")
            if wait_until(lambda: self.runs_version(self.version), 60) is None:
                raise BenchError(f"trial {trial + 1}: version {self.version} never ran:\n"
                                 + "".join(self.log_lines[-20:]))
            latencies.append(time.monotonic() - started)
            time.sleep(0.5)  # untimed: the pass the engine's events wake finds nothing to do
        return latencies

    def docker_run_trials(self) -> list[float]:
        latencies = []
        for trial in range(self.args.trials):
            name = f"bapi-floor-{self.run_id}-{trial}"
            started = time.monotonic()
            subprocess.run(["docker", "run", "-d", "--init", "--name", name, "--label", self.floor_label,
                            "-e", f"V={trial}", IMAGE, "sleep", "3600"], check=True, capture_output=True)
            if wait_until(lambda: self.engine.api.inspect_container(name)["State"]["Running"], 30) is None:
                raise BenchError(f"{name} never ran")
            latencies.append(time.monotonic() - started)
            self.engine.api.remove_container(name, force=True)
            time.sleep(0.5)
        return latencies

    # -- 2. /api/stacks under load ----------------------------------------------------

    def load(self, seconds: float, *, syncing: bool) -> Load:
        result = Load(seconds)
        lock = threading.Lock()
        start = threading.Barrier(self.args.clients + 1)
        stop_at: list[float] = []

        def client() -> None:
            conn, auth, mine, errors = self.connection(), {"Authorization": f"Bearer {self.read_token}"}, [], 0
            start.wait()
            while time.monotonic() < stop_at[0]:
                began = time.perf_counter()
                try:
                    conn.request("GET", "/api/stacks?limit=1000", headers=auth)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = self.connection()
                if ok:
                    mine.append(time.perf_counter() - began)
                else:
                    errors += 1
            conn.close()
            with lock:
                result.latencies += mine
                result.errors += errors

        threads = [threading.Thread(target=client, daemon=True) for _ in range(self.args.clients)]
        for thread in threads:
            thread.start()
        syncer = threading.Thread(target=self._sync_loop, args=(result, stop_at), daemon=True) if syncing else None
        stop_at.append(time.monotonic() + seconds)
        start.wait()
        if syncer:
            syncer.start()
        for thread in threads:
            thread.join(timeout=seconds + 60)
        if syncer:
            syncer.join(timeout=90)
        if result.failure:
            raise BenchError(result.failure)
        return result

    def _sync_loop(self, result: Load, stop_at: list[float]) -> None:
        """Syncs back to back, each with a new commit to apply, until the clients stop."""
        while time.monotonic() < stop_at[0]:
            self.commit()
            started = time.monotonic()
            status = self.sync()
            if status != 202:
                result.failure = f"POST /api/stacks/{self.stack}/sync answered {status}, not 202"
                return
            if wait_until(lambda: self.runs_version(self.version), 60, step=0.05) is None:
                result.failure = f"a sync under load did not apply version {self.version} within 60 s"
                return
            result.syncs.append(time.monotonic() - started)

    # -- cleanup ----------------------------------------------------------------------

    def cleanup(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        for label in (f"{STACK_LABEL}={self.stack}", self.floor_label):
            self.engine.remove(label)
        for network in self.engine.api.networks(filters={"label": [f"{STACK_LABEL}={self.stack}"]}):
            self.engine.api.remove_network(network["Id"])


def report(args: argparse.Namespace, ours: list[float], floor: list[float], idle: Load, busy: Load) -> str:
    over = percentile(ours, 0.95) - percentile(floor, 0.95)
    verdict = "OK" if over <= TARGET_OVER_BASELINE else "over"
    busy_syncs = (f"{len(busy.syncs)} syncs ran (each a fetch and a replacement), POST to converged "
                  f"p50 {statistics.median(busy.syncs):.2f} s" if busy.syncs else "no sync finished")
    return "\n".join([
        f"webhook to converged over {len(ours)} trials: p50 {statistics.median(ours):.2f} s, "
        f"p95 {percentile(ours, 0.95):.2f} s, max {max(ours):.2f} s",
        f"bare docker run -d over {len(floor)} trials:  p50 {statistics.median(floor):.2f} s, "
        f"p95 {percentile(floor, 0.95):.2f} s, max {max(floor):.2f} s",
        f"p95 over the bare run: {over:+.2f} s   (target: <= {TARGET_OVER_BASELINE:g} s)   {verdict}",
        f"/api/stacks, {args.clients} clients, daemon idle, {args.idle:g} s: {idle.line()}",
        f"/api/stacks, {args.clients} clients, syncs running, {args.seconds:g} s: {busy.line()}; {busy_syncs}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="webhook and docker run trials (default 20)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent /api/stacks clients (default 50)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of load with the daemon idle (default 10)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load with syncs running (default 20)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.clients < 1 or args.idle <= 0 or args.seconds <= 0:
        parser.error("trials, clients and durations must be positive")
    started = time.monotonic()
    engine = open_engine()
    if engine is None:
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        bench = ApiBench(args, engine, Path(tmp))
        log(f"stack {bench.stack}, floor label {bench.floor_label}, temp dir {tmp}")

        def work():
            bench.start()
            ours = bench.webhook_trials()
            floor = bench.docker_run_trials()
            log("webhook trials done; /api/stacks under load next")
            return ours, floor, bench.load(args.idle, syncing=False), bench.load(args.seconds, syncing=True)

        code, results = run_guarded(bench, work, cleanup=bench.cleanup)
        if code:
            return code
    print(report(args, *results), flush=True)
    log(f"took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
