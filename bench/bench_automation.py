#!/usr/bin/env python3
"""Benchmark image automation: a registry push until the container runs the new version, against a bare
``docker pull`` + ``docker run`` of the same kind of image in the same run; and the registry requests an
unchanged image costs per interval.

    python bench/bench_automation.py [--trials 5] [--poll 5]

For each way the daemon learns of a push, a real password-protected registry (Debian's docker-registry on
127.0.0.1, ``tests/integration/registry.py``), a bare git repository and ``reconcile daemon`` following it
with ``write:`` are started, with one stack whose image has a ``>=1.0 <2`` policy:

  notify  the registry's own push notifications reach the daemon's ``provider: registry`` webhook; the
          policy's interval is an hour, so only the notification can move it;
  poll    no notifications; the policy's interval is ``--poll`` seconds (default 5).

Each trial builds a tiny image (untimed), then:

  floor   pushes it as ``…/plain:1.N.0`` and times ``docker pull`` + ``docker run -d`` of it (the docker CLI,
          logged in through a private DOCKER_CONFIG), from the push's return to the container running;
  ours    pushes it as ``…/app:1.N.0`` and times from the push's return to the stack's container running it
          (tag listed, commit pushed to git, fetched, pulled, replaced).

Prints p50/p95 of each and the ratios ours / floor (no target: ours includes a git round trip; the figure to
read is how much of it is waiting for the next poll). Then it checks the same image again and again, in
process, with the daemon's code path (``imageupdates.check_images`` over one long-lived reconciler, as the
daemon's automation does) and prints the registry requests per check when nothing changed (target: 1).
Nothing is asserted: the exit code is 1 only when something failed. Everything it made is removed.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

import docker  # noqa: E402

import tests.integration.conftest  # noqa: E402,F401  (first: registry.py imports its constants)
from tests.integration.daemons import Repo, RunningDaemon  # noqa: E402
from tests.integration.registry import Endpoint, Registry, RegistryInfo, credentials_env, publish  # noqa: E402

from reconciler.imageupdates import check_images  # noqa: E402
from reconciler.labels import owner_selector  # noqa: E402
from reconciler.reconcile import Reconciler  # noqa: E402
from reconciler.spec import load_desired  # noqa: E402

SPEC = """\
name: {stack}
images:
  app:
    ref: {ref}
    update: {{semver: ">=1.0 <2", interval: {interval}}}
containers:
  web:
    image: app
    init: true
    stop_grace_period: 1s
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def running_version(engine, stack: str) -> str:
    found = engine.containers(filters={"label": [owner_selector(stack)]})
    if len(found) != 1:
        return ""
    return (engine.inspect_image(found[0]["ImageID"])["Config"]["Labels"] or {}).get("automation.version", "")


def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Phase:
    """One registry, repository and daemon: the notify or the poll way."""

    def __init__(self, root: Path, engine, *, notify: bool, interval: str) -> None:
        root.mkdir(parents=True)
        self.root, self.engine, self.notify, self.interval = root, engine, notify, interval
        self.server = Registry()
        self.info = RegistryInfo(self.server.host, self.server.username, self.server.password, "", self.server)
        self.stack = f"bench-auto-{'notify' if notify else 'poll'}-{secrets.token_hex(3)}"
        self.name = f"bench/{self.stack}"
        self.git = Repo(root / "git")
        self.daemon: RunningDaemon | None = None
        self.docker_config = root / "docker-config"

    def start(self) -> None:
        os.environ.update(credentials_env(self.root, self.info))
        hook_secret = secrets.token_hex(16)
        (self.root / "hook.secret").write_text(hook_secret + "\n")
        tokens = self.root / "tokens"
        tokens.write_text(f"bench write {secrets.token_hex(16)}\n")
        tokens.chmod(0o600)
        self.git.commit({"app/stack.yaml": SPEC.format(stack=self.stack, ref=f"{self.server.host}/{self.name}/app:1.0.0",
                                                       interval=self.interval)})
        config = {"state_dir": str(self.root / "state"), "resync": 300,
                  "sources": [{"name": "repo", "git": {"url": self.git.url, "ref": "main", "interval": 1},
                               "paths": ["app"], "write": {"author": "bench <bench@example.invalid>"}}]}
        if self.notify:
            config["api"] = {"listen": "127.0.0.1:0", "tokens_file": str(tokens)}
            config["webhooks"] = [{"name": "registry", "provider": "registry",
                                   "secret_file": str(self.root / "hook.secret")}]
        (self.root / "daemon.yaml").write_text(json.dumps(config))
        self.daemon = RunningDaemon(self.root / "daemon.yaml")
        if self.notify:
            self.server.notify = Endpoint(self.daemon.api() + "/hooks/registry",
                                          {"Authorization": f"Bearer {hook_secret}"})
        self.server.start()
        self.docker_config.mkdir()
        subprocess.run(["docker", "--config", str(self.docker_config), "login", "-u", self.server.username,
                        "--password-stdin", self.server.host], input=self.server.password, text=True, check=True,
                       capture_output=True)
        publish(self.engine, self.info, f"{self.name}/app", "1.0.0")
        until(lambda: running_version(self.engine, self.stack) == "1.0.0", 120, "the stack at 1.0.0")

    def floor(self, version: str) -> float:
        """Push ``…/plain:version``, then docker pull + docker run -d of it: seconds from the push's return."""
        publish(self.engine, self.info, f"{self.name}/plain", version)
        ref = f"{self.server.host}/{self.name}/plain:{version}"
        name = f"{self.stack}-floor"
        started = time.monotonic()
        for command in (["pull", "--quiet", ref], ["run", "-d", "--init", "--name", name, ref]):
            subprocess.run(["docker", "--config", str(self.docker_config), *command], check=True,
                           capture_output=True)
        took = time.monotonic() - started
        self.engine.remove_container(name, force=True)
        return took

    def ours(self, version: str) -> float:
        """Push ``…/app:version``: seconds from the push's return until the stack's container runs it."""
        publish(self.engine, self.info, f"{self.name}/app", version)
        started = time.monotonic()
        until(lambda: running_version(self.engine, self.stack) == version, 180, f"the stack at {version}")
        return time.monotonic() - started

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        for container in self.engine.containers(all=True, filters={"label": [owner_selector(self.stack)]}):
            self.engine.remove_container(container["Id"], force=True)
        for network in self.engine.networks(filters={"label": [owner_selector(self.stack)]}):
            self.engine.remove_network(network["Id"])
        self.server.close()
        for image in self.engine.images():
            for tag in image.get("RepoTags") or []:
                if tag.startswith(self.server.host + "/"):
                    self.engine.remove_image(tag, force=True)


def requests_per_check(phase: Phase, checks: int) -> list[int]:
    """Check the phase's (converged) image ``checks`` times over one long-lived reconciler, as the daemon does;
    the registry requests of each check."""
    spec = phase.root / "check.yaml"
    version = running_version(phase.engine, phase.stack)
    spec.write_text(SPEC.format(stack=phase.stack, ref=f"{phase.server.host}/{phase.name}/app:{version}",
                                interval="5s"))
    reconciler = Reconciler(shared_engine=True)
    desired = load_desired([spec], drivers=reconciler.driver_catalog())
    counts = []
    for _ in range(checks):
        drivers = reconciler.drivers(desired.stack)
        [check] = check_images(desired, drivers)
        assert not check.outdated and not check.error, check
        counts.append(drivers.context.stats["read"])  # each HTTP request of the tag lister counts one
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--poll", type=int, default=5, help="the poll phase's policy interval, seconds")
    args = parser.parse_args()
    engine = docker.from_env(version="auto").api
    rows, counts = {}, []
    with tempfile.TemporaryDirectory(prefix="bench-automation-") as tmp:
        for notify in (True, False):
            phase = Phase(Path(tmp) / ("notify" if notify else "poll"), engine, notify=notify,
                          interval="1h" if notify else f"{args.poll}s")
            try:
                phase.start()
                floors, ours = [], []
                for trial in range(args.trials):
                    version = f"1.{trial + 1}.0"
                    floors.append(phase.floor(version))
                    ours.append(phase.ours(version))
                rows["notify" if notify else f"poll {args.poll}s"] = (ours, floors)
                if not notify:
                    counts = requests_per_check(phase, 10)
            finally:
                phase.close()
    print(f"push → running the new version, {args.trials} trials (seconds; floor: docker pull + docker run -d)")
    print(f"{'way':<10} {'ours p50':>9} {'ours p95':>9} {'floor p50':>10} {'floor p95':>10} {'p50 ratio':>10}")
    for way, (ours, floors) in rows.items():
        print(f"{way:<10} {statistics.median(ours):9.2f} {percentile(ours, 0.95):9.2f} "
              f"{statistics.median(floors):10.2f} {percentile(floors, 0.95):10.2f} "
              f"{statistics.median(ours) / statistics.median(floors):10.2f}")
        print(f"{'':<10} ours: {' '.join(f'{v:.2f}' for v in ours)}; floor: {' '.join(f'{v:.2f}' for v in floors)}")
    print(f"registry requests per check of an unchanged image (target 1): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
