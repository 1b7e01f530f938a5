"""N one-container stacks under a real ``reconcile daemon``, measured from outside: the scale bench's harness.

Issue 24 asks how the daemon behaves with hundreds of stacks; the bench (``bench/bench_scale.py``) and
its CI-sized test (``tests/integration/test_scale.py``) share this harness. It touches the daemon only
through its public surface (the ``reconcile daemon`` command, daemon.yaml, the HTTP API and /metrics,
/proc) and the engine only through the Docker SDK, so it measures whichever daemon is installed.
Every stack is named ``scale-<run>-<i>`` and its objects carry the reconciler's stack label, so
``cleanup`` finds them; the floor's containers carry ``FLOOR_LABEL``.
"""
from __future__ import annotations

import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reconciler.labels import STACK as STACK_LABEL

__all__ = [
    "DEFAULT_IMAGE", "FLOOR_LABEL", "CommitResult", "DaemonProcess", "Percentiles", "ProcSample", "ScaleSetup",
    "api_latency", "cleanup", "commit_one", "engine", "floor_run", "idle_cpu", "make_stacks",
    "passes", "running", "sample", "stack_summaries", "start_daemon", "wait_converged",
]

DEFAULT_IMAGE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")
FLOOR_LABEL = "io.reconciler-bench.scale-floor"
COMMAND = ["sleep", "1d"]
SPEC = """name: {name}
containers:
  web:
    image: {image}
    command: {command}
    init: true
    stop_grace_period: 1s
    env: {{VERSION: "{version}"}}
{extra}"""


def engine():
    """The Docker SDK's low-level client, configured from the environment as the daemon's is."""
    import docker
    return docker.from_env(version="auto", timeout=120).api


# -- the stacks and their repository ------------------------------------------------------------

@dataclass
class ScaleSetup:
    """What ``make_stacks`` made: a git remote, its working clone, daemon.yaml and the stacks' names."""

    root: Path
    n: int
    sources: str
    names: list[str]
    paths: list[str]
    config: Path
    token: str
    remote: Path
    work: Path
    state_dir: Path
    image: str
    versions: dict[str, int] = field(default_factory=dict)

    def git(self, *args: str) -> str:
        """A git command in the working clone; its stdout."""
        return _git(self.work, *args)

    def state_db_bytes(self) -> int:
        """The size of the daemon's record: state.db and its journal files."""
        return sum(p.stat().st_size for p in self.state_dir.glob("state.db*"))


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _spec(name: str, image: str, version: int, extra: str) -> str:
    return SPEC.format(name=name, image=image, command=json.dumps(COMMAND), version=version, extra=extra)


def make_stacks(root: Path, n: int, *, sources: Literal["one", "many"] = "one", default_network: bool = True,
                image: str = DEFAULT_IMAGE, workers: int | None = None, resync: float | None = None) -> ScaleSetup:
    """A git remote holding ``n`` one-container stacks (``stacks/sNNNN/stack.yaml``) and a daemon.yaml for them.

    ``sources="one"``: one git source listing the ``n`` paths; ``"many"``: ``n`` sources of one path each
    (all on the same remote). ``default_network``: each container joins its stack's ``<stack>_default``
    network (as a Compose project's would; the daemon gives it a /26 of its address pools), else
    ``network_mode: none``. ``workers`` and ``resync``: written to daemon.yaml
    only when given (the daemon's defaults otherwise). Git sources poll every second.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    run = secrets.token_hex(3)
    names = [f"scale-{run}-{i:04d}" for i in range(n)]
    paths = [f"stacks/s{i:04d}" for i in range(n)]
    remote, work = root / "origin.git", root / "work"
    _git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    _git(root, "clone", "--quiet", str(remote), str(work))
    _git(work, "checkout", "--quiet", "-B", "main")
    token, tokens = secrets.token_urlsafe(24), root / "tokens"
    tokens.write_text(f"bench write {token}\n")
    tokens.chmod(0o600)
    setup = ScaleSetup(root=root, n=n, sources=sources, names=names, paths=paths, config=root / "daemon.yaml",
                       token=token, remote=remote, work=work, state_dir=root / "state", image=image)
    for i, (name, path) in enumerate(zip(names, paths)):
        (work / path).mkdir(parents=True)
        (work / path / "stack.yaml").write_text(_spec(name, image, 1, _network_extra(default_network)))
    _commit(setup, f"{n} stacks")
    setup.config.write_text(json.dumps(_daemon_config(setup, workers, resync), indent=1))
    return setup


def _network_extra(default_network: bool) -> str:
    return "" if default_network else "    network_mode: none\n"


def _daemon_config(setup: ScaleSetup, workers: int | None, resync: float | None) -> dict:
    git = {"url": f"file://{setup.remote}", "ref": "main", "interval": 1}
    if setup.sources == "one":
        sources = [{"name": "repo", "git": git, "paths": setup.paths}]
    elif setup.sources == "many":
        sources = [{"name": f"s{i:04d}", "git": git, "paths": [path]} for i, path in enumerate(setup.paths)]
    else:
        raise ValueError(f"sources must be 'one' or 'many', not {setup.sources!r}")
    config = {"state_dir": str(setup.state_dir), "log_format": "json", "sources": sources,
              "api": {"listen": "127.0.0.1:0", "tokens_file": str(setup.root / "tokens")}}
    if workers is not None:
        config["workers"] = workers
    if resync is not None:
        config["resync"] = resync
    return config


def _commit(setup: ScaleSetup, message: str) -> str:
    setup.git("add", "-A")
    setup.git("-c", "user.email=scale@example.invalid", "-c", "user.name=scale", "commit", "--quiet", "-m", message)
    setup.git("push", "--quiet", "origin", "main")
    return setup.git("rev-parse", "HEAD").strip()


# -- the daemon -----------------------------------------------------------------------------------

class DaemonProcess:
    """``reconcile daemon -c daemon.yaml`` in a subprocess of this interpreter, its log in ``root/daemon.log``."""

    def __init__(self, setup: ScaleSetup, *, timeout: float = 60) -> None:
        self.setup = setup
        self.log_path = setup.root / "daemon.log"
        env = {**os.environ, "RECONCILER_LOCK_DIR": str(setup.root / "locks")}
        argv = [sys.executable, "-m", "reconciler", "daemon", "--config", str(setup.config)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.url = self._wait_for_api(timeout)

    def _wait_for_api(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("{") and '"api"' in line:
                    return json.loads(line)["api"]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the daemon's API never came up:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the daemon's log, for an error message."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, *, method: str = "GET", body: bytes | None = None):
        """(status, headers, JSON or text) of one request with the setup's token."""
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Authorization": f"Bearer {self.setup.token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, headers, raw = exc.code, exc.headers, exc.read()
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw.decode()

    def metrics(self) -> dict:
        """/metrics parsed: {family name: family} (counters under their name without ``_total``)."""
        from prometheus_client.parser import text_string_to_metric_families
        status, _, text = self.api("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return {family.name: family for family in text_string_to_metric_families(text)}

    def stop(self, timeout: float = 120) -> float:
        """SIGTERM, then the seconds until the process exited (SIGKILL and RuntimeError past ``timeout``)."""
        started = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"the daemon did not exit within {timeout:.0f} s of SIGTERM") from None
        return time.monotonic() - started


def start_daemon(setup: ScaleSetup) -> DaemonProcess:
    """The daemon of ``setup``, started, its API answering."""
    return DaemonProcess(setup)


def passes(metrics: dict) -> int:
    """Passes the daemon has run: ``reconciler_passes_run`` (looks included), else ``reconciler_syncs_total``."""
    run = metrics.get("reconciler_passes_run")
    if run is not None and run.samples:
        return int(run.samples[0].value)
    family = metrics.get("reconciler_syncs")
    return int(sum(s.value for s in family.samples if s.name.endswith("_total"))) if family else 0


def settled_passes(metrics: dict) -> int:
    """Resyncs that ended after observing (``reconciler_settled_passes_total``); 0 for a daemon without it."""
    family = metrics.get("reconciler_settled_passes")
    return int(sum(s.value for s in family.samples if s.name.endswith("_total"))) if family else 0


# -- /proc -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcSample:
    """One look at a process in /proc."""

    rss_mib: float
    threads: int
    fds: int
    cpu_seconds: float  #: user + system, cumulative


def sample(pid: int) -> ProcSample:
    """RSS and threads (/proc/PID/status), open descriptors (/proc/PID/fd), CPU seconds (/proc/PID/stat)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return ProcSample(rss_mib=int(status["VmRSS"].split()[0]) / 1024, threads=int(status["Threads"]),
                      fds=len(os.listdir(f"/proc/{pid}/fd")), cpu_seconds=_cpu(pid))


def _cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def idle_cpu(pid: int, seconds: float) -> float:
    """Percent of one core the process used over ``seconds`` of wall clock."""
    before, started = _cpu(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (_cpu(pid) - before) / (time.monotonic() - started)


# -- convergence -----------------------------------------------------------------------------------

def stack_summaries(daemon: DaemonProcess) -> list[dict]:
    """Every stack of ``/api/stacks``, following ``Link: rel="next"`` when the API paginates."""
    found, path = [], "/api/stacks"
    while path:
        status, headers, page = daemon.api(path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {page}")
        found.extend(page if isinstance(page, list) else page.get("stacks", page.get("items", [])))
        path = _next_link(headers.get("Link", ""), daemon.url)
    return found


def _next_link(header: str, base: str) -> str:
    for part in header.split(","):
        if 'rel="next"' in part and "<" in part:
            target = part[part.index("<") + 1:part.index(">")]
            return target[len(base):] if target.startswith(base) else target
    return ""


def running(client, names: list[str]) -> dict[str, str]:
    """{container name: id} of the running containers of the stacks ``names`` (one list call)."""
    wanted, found = set(names), {}
    for c in client.containers(filters={"label": [STACK_LABEL], "status": "running"}):
        if c["Labels"].get(STACK_LABEL) in wanted:
            found[c["Names"][0].lstrip("/")] = c["Id"]
    return found


def wait_converged(daemon: DaemonProcess, n: int, timeout: float, *, client=None, since: float | None = None) -> float:
    """Seconds (from ``since``, default now) until every stack is converged per ``/api/stacks`` and the
    engine runs ``n`` containers of them. RuntimeError past ``timeout``, saying how far it got."""
    client = client or engine()
    names, started = daemon.setup.names, time.monotonic() if since is None else since
    converged = up = 0
    while time.monotonic() - started < timeout:
        stacks = [s for s in stack_summaries(daemon) if s.get("name") in set(names)]
        converged = sum(s["state"] == "converged" for s in stacks)
        if converged == n:
            up = len(running(client, names))
            if up >= n:
                return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"after {timeout:.0f} s, {converged} of {n} stacks converged, {up} containers up\n"
                       f"{daemon.log_tail()}")


# -- the floor -------------------------------------------------------------------------------------

def floor_run(n: int, parallelism: int, image: str = DEFAULT_IMAGE, *, network_mode: str | None = None,
              networks: bool = False) -> float:
    """Seconds for ``docker run -d`` of ``n`` containers like the stacks' (same image, command, init, stop
    timeout) from ``parallelism`` threads, on the default bridge (or ``network_mode``); ``networks``: each on
    a bridge network of its own made first, a /26 of 172.16.0.0/16 as the stacks' default networks get (the
    same objects the stacks have). Removes them afterwards (untimed)."""
    from docker.types import IPAMConfig, IPAMPool

    client, run = engine(), secrets.token_hex(3)

    def one(i: int) -> None:
        mode = network_mode
        if networks:
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=f"172.16.{i * 64 // 256}.{i * 64 % 256}/26")])
            mode = client.create_network(f"scalefloor-{run}-{i:04d}", driver="bridge", ipam=ipam,
                                         labels={FLOOR_LABEL: run})["Id"]
        host_config = client.create_host_config(init=True, network_mode=mode)
        made = client.create_container(image=image, command=COMMAND, name=f"scalefloor-{run}-{i:04d}",
                                       labels={FLOOR_LABEL: run}, stop_timeout=1, host_config=host_config)
        client.start(made["Id"])

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            list(pool.map(one, range(n)))
        return time.monotonic() - started
    finally:
        remove_floor(client, run)


def remove_floor(client, run: str) -> None:
    """Remove the floor's containers and networks of one run."""
    selector = {"label": [f"{FLOOR_LABEL}={run}"]}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: client.remove_container(c["Id"], force=True), client.containers(all=True,
                                                                                               filters=selector)))
        list(pool.map(lambda net: client.remove_network(net["Id"]), client.networks(filters=selector)))


# -- timings, a commit, the API (drift: ``reconciler.testing.scaledrift``) ----------------------------

@dataclass(frozen=True)
class Percentiles:
    """Timings (seconds) and their nearest-rank p50 and p99."""

    seconds: tuple[float, ...]

    def at(self, q: float) -> float:
        """The nearest-rank percentile ``q`` (0..1)."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    p50 = property(lambda self: self.at(0.5))
    p99 = property(lambda self: self.at(0.99))


@dataclass(frozen=True)
class CommitResult:
    seconds: float  #: push to the changed stack's new container running
    others_changed: int  #: containers of the other stacks whose id changed meanwhile (0 expected)


def commit_one(setup: ScaleSetup, daemon: DaemonProcess, *, index: int | None = None,
               timeout: float = 120) -> CommitResult:
    """A new commit changing one stack's env, pushed; seconds until its container was replaced, and how
    many of the other stacks' containers changed id by then (and a second later)."""
    client, i = engine(), random.randrange(setup.n) if index is None else index
    name, path = setup.names[i], setup.work / setup.paths[i] / "stack.yaml"
    before = running(client, setup.names)
    mine = {c for c in before if c.startswith(name + "-")}
    version = setup.versions.get(name, 1) + 1
    setup.versions[name] = version
    path.write_text(path.read_text().replace(f'VERSION: "{version - 1}"', f'VERSION: "{version}"'))
    started = time.monotonic()
    _commit(setup, f"{name}: version {version}")
    while True:
        now = running(client, setup.names)
        if mine and all(now.get(c) not in (None, before[c]) for c in mine):
            break
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{name} not replaced within {timeout:.0f} s\n{daemon.log_tail()}")
        time.sleep(0.05)
    seconds = time.monotonic() - started
    time.sleep(1)  # a pass that touched another stack late still counts
    now = running(client, setup.names)
    others = sum(now.get(c) != cid for c, cid in before.items() if c not in mine)
    return CommitResult(seconds=seconds, others_changed=others)


def api_latency(daemon: DaemonProcess, calls: int) -> Percentiles:
    """``/api/stacks`` (every page) ``calls`` times, one after another."""
    found = []
    for _ in range(calls):
        started = time.monotonic()
        stack_summaries(daemon)
        found.append(time.monotonic() - started)
    return Percentiles(tuple(found))


def cleanup(setup: ScaleSetup, *, client=None) -> None:
    """Remove every container, network and volume of the stacks (by their stack label), and the files."""
    client, wanted, label = client or engine(), set(setup.names), {"label": [STACK_LABEL]}

    def owned(objects: list[dict]) -> list[dict]:
        return [o for o in objects if (o.get("Labels") or {}).get(STACK_LABEL) in wanted]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: client.remove_container(c["Id"], force=True),
                      owned(client.containers(all=True, filters=label))))
        list(pool.map(lambda n: client.remove_network(n["Id"]), owned(client.networks(filters=label))))
        list(pool.map(lambda v: client.remove_volume(v["Name"], force=True),
                      owned(client.volumes(filters=label).get("Volumes") or [])))
    shutil.rmtree(setup.root, ignore_errors=True)
