"""A real docker-registry's push notifications reach the daemon's webhook, and only with the right secret.

The daemon's HTTP app is served by uvicorn on loopback exactly as the daemon
serves it (``server.ApiServer``), with a stand-in daemon that records what
``registry_pushed`` is told (the automation behind it has tests of its own).
Debian's ``docker-registry`` is started with a ``notifications`` endpoint
pointing at the app, and tags are pushed through the real engine.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from reconciler.daemon.auth import Tokens
from reconciler.daemon.config import ApiConfig, Webhook
from reconciler.daemon.hooks import HookVerifier, secret_of
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.registryevents import ENVELOPE_TYPE
from reconciler.daemon.server import ApiServer, make_app

from ..waiting import wait_until
from .conftest import BASE_IMAGE
from .registry import REGISTRY_BINARY, Endpoint, Registry

SECRET = "registry-hook-" + "s" * 24


class StandIn:
    """The daemon, as far as the webhook route sees it: what it was told, and when (monotonic seconds)."""

    def __init__(self) -> None:
        self.reconciler = SimpleNamespace(state=None)
        self.workers: list = []
        self.told: list[tuple[float, float, object]] = []  # (monotonic, wall clock, push)
        self.fetched: list[list[str]] = []
        self._lock = threading.Lock()

    def registry_pushed(self, pushes) -> None:
        now, wall = time.monotonic(), time.time()
        with self._lock:
            self.told += [(now, wall, push) for push in pushes]

    def fetch(self, sources) -> None:
        self.fetched.append(list(sources))

    def pushes(self, tag: str | None = None) -> list:
        with self._lock:
            return [push for _, _, push in self.told if tag is None or push.tag == tag]

    def arrival(self, tag: str) -> float | None:
        """When the push of ``tag`` arrived (monotonic seconds), or None."""
        with self._lock:
            return next((at for at, _, push in self.told if push.tag == tag), None)

    def arrived_at(self, tag: str) -> float:
        """When the push of ``tag`` arrived, by the wall clock (the registry's timestamps are too)."""
        with self._lock:
            return next(wall for _, wall, push in self.told if push.tag == tag)


@pytest.fixture
def served(tmp_path, monkeypatch, caplog):
    """(stand-in daemon, webhook URL, metrics): the daemon's app on 127.0.0.1 with a registry webhook."""
    caplog.set_level(logging.DEBUG)  # everything the daemon's process would log, to look for the secret
    monkeypatch.setenv("REGISTRY_HOOK_SECRET", SECRET)
    hook = Webhook("images", "registry", (), secret_env="REGISTRY_HOOK_SECRET")
    api = ApiConfig(tokens_file=str(tmp_path / "tokens"), port=0)
    daemon, metrics = StandIn(), Metrics()
    app = make_app(daemon, api, Tokens([]), {hook.name: HookVerifier(hook, secret_of(hook))}, metrics)
    server = ApiServer(app, api)
    url = server.start()
    yield daemon, f"{url}/hooks/images", metrics
    server.stop()


@pytest.fixture
def notifying(served):
    """A registry whose notifications go to the served webhook with the right secret."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(f"{REGISTRY_BINARY} is missing; run scripts/engine.sh up", pytrace=False)
    server = Registry(notify=Endpoint(served[1], {"Authorization": f"Bearer {SECRET}"})).start()
    yield server
    server.close()


def push(engine, registry: Registry, repo: str, tag: str) -> str:
    """Tag the base image as ``HOST/repo:tag`` and push it through the engine; the manifest's digest."""
    name = f"{registry.host}/{repo}"
    engine.tag(BASE_IMAGE, name, tag=tag)
    digest = ""
    try:
        for event in engine.push(name, tag=tag, auth_config=registry.auth_config, stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(f"push {name}:{tag}: {event['error']}")
            digest = (event.get("aux") or {}).get("Digest", digest)
    finally:
        engine.remove_image(f"{name}:{tag}")
    return digest


def delivered(metrics: Metrics) -> dict[str, float]:
    return {s.labels["result"]: s.value for s in metrics.webhooks.collect()[0].samples if s.name.endswith("_total")}


def test_a_tag_pushed_reaches_the_daemon_once_with_its_repository_tag_and_digest(engine, served, notifying, caplog):
    daemon, _, metrics = served
    digest = push(engine, notifying, "team/app", "1.4.1")
    assert digest.startswith("sha256:")
    wait_until(lambda: daemon.pushes("1.4.1"), 10, lambda: f"the push event; registry log:\n{notifying.log_tail()}",
               step=0.05)
    time.sleep(1.5)  # what else the registry sends about this push (its blobs, a retry) comes within this
    [got] = daemon.pushes()
    assert (got.host, got.repository, got.tag, got.digest) == (notifying.host, "team/app", "1.4.1", digest)
    assert got.at.tzinfo is not None and abs(time.time() - got.at.timestamp()) < 60
    assert daemon.fetched == [] and delivered(metrics).get("unauthorized", 0) == 0
    assert SECRET not in caplog.text


def test_a_registry_with_the_wrong_secret_gets_401_and_nothing_reaches_the_daemon(engine, served, caplog):
    daemon, url, metrics = served
    wrong = Registry(notify=Endpoint(url, {"Authorization": "Bearer not-the-secret-" + "w" * 16})).start()
    try:
        push(engine, wrong, "team/app", "1.4.1")
        wait_until(lambda: delivered(metrics).get("unauthorized", 0) >= 1, 10, "the registry's refused delivery",
                   step=0.05)
    finally:
        wrong.close()
    body = json.dumps({"events": []}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": ENVELOPE_TYPE, "Authorization": "Bearer " + SECRET[::-1]})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401 and SECRET not in refused.value.read().decode()
    assert daemon.told == [] and delivered(metrics).get("accepted", 0) == 0
    assert SECRET not in caplog.text


def test_how_soon_a_push_reaches_the_daemon(engine, served, notifying, caplog):
    """Ten pushes: from ``push`` returning (and from the registry's own timestamp) to the event's arrival.

    The figures are printed (run with -s to see them). The registry notifies as soon as it has stored the
    manifest, before the engine's push has finished reporting, so the first figure is usually below zero.
    """
    daemon, _, _ = served
    after_return, after_stored = [], []
    for n in range(5):
        tag = f"2026.12.{n:02d}"
        push(engine, notifying, "team/timing", tag)
        returned = time.monotonic()
        wait_until(lambda: daemon.arrival(tag) is not None, 10, f"the push of {tag}", step=0.01)
        after_return.append(daemon.arrival(tag) - returned)
        after_stored.append(daemon.arrived_at(tag) - daemon.pushes(tag)[0].at.timestamp())
    assert len(daemon.pushes()) == 5
    for what, seconds in (("push returned", after_return), ("registry stored it", after_stored)):
        print(f"\n{what} -> event arrived, 5 pushes: p50 {statistics.median(seconds) * 1000:.1f} ms, "
              f"min {min(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms", end="")
    assert statistics.median(after_return) < 5
    assert SECRET not in caplog.text
