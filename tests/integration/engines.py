"""Three real extra engines for fleet tests, each a "host" in its own network namespace.

``scripts/engines.sh`` does the work (namespaces, bridge, dockerd, base image);
the session fixture ``fleet_engines`` starts three for the whole session and
stops them (leaving no namespace, bridge or rule) if it started them. Tests
stop and start one engine (``FleetEngines.stop``/``start``) for "host down"
drills. Without root or ``ip netns`` the fixture skips, saying why.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from .conftest import PREFIX, REPO, _remove_stacks

__all__ = ["FleetEngine", "FleetEngines", "engines_script", "fleet_engines"]

SCRIPT = REPO / "scripts" / "engines.sh"
COUNT = 3
TLS_ENGINE = 3  # served on tcp://ADDR:2376 with --tlsverify


@dataclass
class FleetEngine:
    number: int
    unix_url: str
    tcp_url: str  # engine 3's verifies client certificates (TLS_ENGINE)

    @property
    def tls(self) -> dict[str, str] | None:
        """The client certificate files a client of the tcp URL needs, or None."""
        if not self.tcp_url.endswith(":2376"):
            return None
        folder = Path(os.environ.get("RECONCILER_ENGINES_STATE", "/tmp/reconciler-engines")) / "tls"
        return {"ca": str(folder / "ca.pem"), "cert": str(folder / "client.pem"), "key": str(folder / "client-key.pem")}

    def client(self) -> docker.APIClient:
        """A client on the engine's unix socket (a fresh one: the engine may have restarted)."""
        return docker.APIClient(base_url=self.unix_url, version="auto", timeout=30)


class FleetEngines:
    """The running extra engines, by number (1..3)."""

    def __init__(self, engines: list[FleetEngine]) -> None:
        self.engines = engines

    def __getitem__(self, number: int) -> FleetEngine:
        return self.engines[number - 1]

    def __iter__(self):
        return iter(self.engines)

    def stop(self, number: int) -> None:
        _script("stop", str(number))

    def start(self, number: int) -> None:
        _script("start", str(number))

    def clean(self, stack: str) -> None:
        """Remove ``stack``'s objects from every engine that answers."""
        for engine in self.engines:
            try:
                _remove_stacks(engine.client(), lambda s: s == stack)
            except Exception:  # noqa: BLE001  an engine down (a drill's) has nothing to clean
                pass


def engines_script(*args: str, env: dict[str, str]) -> str:
    """The output of ``scripts/engines.sh ARGS``, run with ``env`` (which engines: state, prefix, bridge) over
    this process's environment; RuntimeError with its stderr when it fails."""
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/engines.sh {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def _script(*args: str) -> str:
    return engines_script(*args, env={"RECONCILER_ENGINES_TLS": str(TLS_ENGINE)})


def _why_not() -> str | None:
    """Why this machine cannot run extra engines, or None."""
    if os.geteuid() != 0:
        return "extra engines need root (network namespaces, dockerd)"
    for tool in ("ip", "nsenter", "unshare", "dockerd"):
        if shutil.which(tool) is None:
            return f"extra engines need {tool}, not found"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "extra engines need `ip netns` (iproute2 with network namespace support)"
    return None


def _listed() -> dict[int, tuple[str, str, str]]:
    rows = {}
    for line in _script("list").splitlines():
        number, unix_url, tcp_url, state = line.split()
        rows[int(number)] = (unix_url, tcp_url, state)
    return rows


@pytest.fixture(scope="session")
def fleet_engines(engine) -> FleetEngines:
    """Three extra engines; stopped at the end of the session unless they were all running before it."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    before = _listed()
    ours = not all(before.get(i, ("", "", "down"))[2] == "up" for i in range(1, COUNT + 1))
    try:
        _script("up", str(COUNT))
        engines = FleetEngines([FleetEngine(i, unix, tcp) for i, (unix, tcp, _) in sorted(_listed().items())
                                if i <= COUNT])
        for one in engines:  # leftovers of a crashed earlier run
            _remove_stacks(one.client(), lambda stack: stack.startswith(PREFIX), older_than=1800)
        yield engines
    finally:
        if ours:
            _script("down")


def write_fleet_spec(directory: Path, stack: str, engines: FleetEngines, body: str, *,
                     head: str = "", labels: dict[int, dict[str, str]] | None = None) -> Path:
    """A stack file naming the three engines as targets one (unix socket), two (tcp) and three (tcp with
    client certificates, when the engine verifies them), then ``body``."""
    labels = labels or {}
    lines = [f"name: {stack}", "targets:"]
    for engine, name in zip(engines, ("one", "two", "three")):
        url = engine.unix_url if engine.number == 1 else engine.tcp_url
        pairs = ", ".join(f"{k}: {v}" for k, v in labels.get(engine.number, {}).items())
        tls = (", tls: {" + ", ".join(f"{k}: {v}" for k, v in engine.tls.items()) + "}") if (
            engine.number != 1 and engine.tls) else ""
        lines.append(f"  {name}: {{engine: \"{url}\", labels: {{{pairs}}}{tls}}}")
    path = directory / "stack.yaml"
    path.write_text("\n".join(lines) + "\n" + head + body)
    return path
