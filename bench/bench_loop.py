#!/usr/bin/env python3
"""The reconcile loop's figures: drift-repair latency, and what an idle daemon costs.

    python bench/bench_loop.py                  # 20 trials, 10 idle stacks for 60 s: about 2 minutes
    python bench/bench_loop.py --trials 30 --stacks 10 --idle 60

1. Drift repair: ``reconcile watch`` keeps a one-container stack; the container
   is force-removed by hand, and the time until a container of that name runs
   again is measured, ``--trials`` times (p50, p95, max). Target: p95 <= 2 s.
2. Commit to converged: ``reconcile daemon`` follows a bare git repository over
   file:// with a 1 s fetch interval; a commit changing an env value is pushed
   and the time until the container runs with the new value is measured,
   ``--trials`` times (p50, p95). It includes the replacement itself.
3. Idle daemon: ``reconcile daemon`` follows a directory source of ``--stacks``
   converged stacks for ``--idle`` seconds; its CPU time (user + system, from
   /proc) over that window as a share of one core, and its peak RSS.
   Targets: under 1% of one core, under 100 MiB.

Everything runs against the real engine with the local busybox image; the
stacks are named ``bloop-<random>`` and removed at the end.
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

from bench_apply import IMAGE, log, open_engine

from reconciler.waiting import PollTimeout, poll_until

SPEC = """name: {name}
containers:
  web: {{image: "{image}", command: ["sleep", "3600"], init: true, stop_grace_period: 1s}}
"""


def _running(engine, name: str) -> bool:
    found = engine.api.containers(filters={"name": f"^/{name}$", "status": "running"})
    return bool(found)


def wait_until(predicate, timeout: float, step: float = 0.02) -> float | None:
    """Seconds until ``predicate()`` held, or None after ``timeout``."""
    start = time.monotonic()
    try:
        poll_until(predicate, timeout=timeout, interval=step)
    except PollTimeout:
        return None
    return time.monotonic() - start


def _reconcile(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kw)


def drift_repair(engine, workdir: Path, trials: int) -> list[float]:
    name = f"bloop-{secrets.token_hex(4)}"
    spec = workdir / name / "stack.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC.format(name=name, image=IMAGE))
    container = f"{name}-web-1"
    watch = _reconcile("watch", "-f", str(spec), "--resync", "3600")
    try:
        if wait_until(lambda: _running(engine, container), 60) is None:
            raise SystemExit("watch never brought the stack up")
        time.sleep(1)  # the event stream opens after the first pass
        latencies = []
        for _ in range(trials):
            engine.api.remove_container(container, force=True)
            seconds = wait_until(lambda: _running(engine, container), 30)
            latencies.append(seconds if seconds is not None else float("inf"))
            time.sleep(0.5)
        return latencies
    finally:
        watch.terminate()
        watch.wait(timeout=60)
        subprocess.run([sys.executable, "-m", "reconciler", "destroy", "-f", str(spec)], capture_output=True)


def commit_to_converged(engine, workdir: Path, trials: int) -> list[float]:
    name = f"bloop-{secrets.token_hex(4)}"
    remote, work = workdir / "origin.git", workdir / "work"

    def git(*args: str, cwd: Path = workdir) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout

    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git("clone", "--quiet", str(remote), str(work))
    git("checkout", "--quiet", "-B", "main", cwd=work)

    def commit(version: int) -> None:
        (work / "stack.yaml").write_text(SPEC.format(name=name, image=IMAGE).rstrip("}\n")
                                         + f', env: {{V: "{version}"}}}}\n')
        git("add", "-A", cwd=work)
        git("-c", "user.email=b@example.invalid", "-c", "user.name=b", "commit", "-qm", str(version), cwd=work)
        git("push", "-q", "origin", "main", cwd=work)

    commit(0)
    config = workdir / "git-daemon.yaml"
    config.write_text(f"state_dir: {workdir / 'git-state'}\nresync: 3600\nsources:\n  - name: repo\n"
                      f"    git: {{url: 'file://{remote}', ref: main, interval: 1}}\n")
    daemon = _reconcile("daemon", "--config", str(config))
    container = f"{name}-web-1"
    try:
        if wait_until(lambda: _env_is(engine, container, "0"), 60) is None:
            raise SystemExit("the daemon never brought the stack up")
        latencies = []
        for version in range(1, trials + 1):
            started = time.monotonic()
            commit(version)
            seconds = wait_until(lambda: _env_is(engine, container, str(version)), 60, step=0.05)
            latencies.append(time.monotonic() - started if seconds is not None else float("inf"))
        return latencies
    finally:
        daemon.terminate()
        daemon.wait(timeout=120)
        subprocess.run([sys.executable, "-m", "reconciler", "destroy", "-f", str(work / "stack.yaml")],
                       capture_output=True)


def _env_is(engine, container: str, version: str) -> bool:
    try:
        info = engine.api.inspect_container(container)
    except Exception:
        return False
    return info["State"]["Running"] and f"V={version}" in (info["Config"]["Env"] or [])


def idle_daemon(engine, workdir: Path, stacks: int, idle: float) -> tuple[float, float]:
    source = workdir / "stacks"
    names = [f"bloop-{secrets.token_hex(4)}" for _ in range(stacks)]
    for name in names:
        (source / name).mkdir(parents=True)
        (source / name / "stack.yaml").write_text(SPEC.format(name=name, image=IMAGE))
    config = workdir / "daemon.yaml"
    config.write_text(f"state_dir: {workdir / 'state'}\nresync: 60\nsources:\n  - name: local\n"
                      f"    dir: {source}\n    paths: [{', '.join(names)}]\n")
    daemon = _reconcile("daemon", "--config", str(config))
    try:
        if wait_until(lambda: all(_running(engine, f"{n}-web-1") for n in names), 120, step=0.5) is None:
            raise SystemExit("the daemon never converged the stacks")
        time.sleep(5)  # let the first passes and the event followers settle
        before = _cpu_seconds(daemon.pid)
        peak = 0.0
        end = time.monotonic() + idle
        while time.monotonic() < end:
            peak = max(peak, _rss_mib(daemon.pid))
            time.sleep(1)
        share = (_cpu_seconds(daemon.pid) - before) / idle
        return share, peak
    finally:
        daemon.terminate()
        daemon.wait(timeout=120)
        for name in names:
            subprocess.run([sys.executable, "-m", "reconciler", "destroy", "-f", str(source / name)],
                           capture_output=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--stacks", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args(argv)
    engine = open_engine()
    if engine is None:
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        latencies = sorted(drift_repair(engine, Path(tmp), args.trials))
        p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
        log(f"drift repair over {len(latencies)} trials: p50 {statistics.median(latencies):.2f} s, "
            f"p95 {p95:.2f} s, max {latencies[-1]:.2f} s   (target: p95 <= 2 s)")
        commits = sorted(commit_to_converged(engine, Path(tmp), args.trials))
        p95 = commits[max(0, round(0.95 * len(commits)) - 1)]
        log(f"commit to converged over {len(commits)} trials (fetch every 1 s, a replacement each): "
            f"p50 {statistics.median(commits):.2f} s, p95 {p95:.2f} s")
        share, peak = idle_daemon(engine, Path(tmp), args.stacks, args.idle)
        log(f"idle daemon with {args.stacks} converged stacks for {args.idle:g} s: CPU {100 * share:.2f}% of one "
            f"core, peak RSS {peak:.0f} MiB   (targets: under 1%, under 100 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
