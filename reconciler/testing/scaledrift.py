"""Drift repair at scale, timed by the engine's own events, beside the engine's floor for the same repair.

Why its own module: the first harness timed a repair by listing the stacks' running containers every
50 ms until the victim's successor showed up. At a thousand containers one such list takes the engine
a good part of a second, so the figure carried up to a list's latency of error and the lists loaded
the engine the daemon was repairing on. Here a repair ends at the engine's ``start`` event for a new
container of the victim's name, read from one event stream opened before the ``docker rm -f``.

The floor is the same repair by hand, in the same engine state: ``docker rm -f`` of a container like
the stacks' (same image, command, init, a bridge network of its own), then ``docker run -d`` of it
again (create, start) through the SDK, until its ``start`` event. At a thousand bridges the engine
itself takes seconds to create and start a container; the daemon's figure is read against it.
"""
from __future__ import annotations

import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .scale import COMMAND, DEFAULT_IMAGE, FLOOR_LABEL, DaemonProcess, Percentiles, engine, remove_floor, running

__all__ = ["drift_floor", "drift_trials"]


class _Starts:
    """The engine's container ``start`` events from now on, by container name: (id, when it came: monotonic)."""

    def __init__(self, client) -> None:
        self._stream = client.events(since=int(time.time()) - 1, decode=True,
                                     filters={"type": "container", "event": "start"})
        self._seen: dict[str, list[tuple[str, float]]] = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True, name="drift-events").start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                name = event.get("Actor", {}).get("Attributes", {}).get("name", "")
                with self._cond:
                    self._seen.setdefault(name, []).append((event.get("id", ""), time.monotonic()))
                    self._cond.notify_all()
        except Exception:  # closed
            pass

    def wait(self, name: str, not_id: str, after: float, timeout: float) -> float:
        """When a container named ``name`` other than ``not_id`` started, at ``after`` or later."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for cid, at in self._seen.get(name, ()):
                    if cid != not_id and at >= after:
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(name)
                self._cond.wait(left)

    def close(self) -> None:
        self._stream.close()


def drift_trials(daemon: DaemonProcess, trials: int, *, at_once: int = 1, timeout: float = 120) -> Percentiles:
    """``trials`` times: ``docker rm -f`` of ``at_once`` random stack containers, then the seconds until the
    engine says a new container of each of those names started (the slowest of them)."""
    client, names, found = engine(), daemon.setup.names, []
    starts = _Starts(client)
    try:
        for _ in range(trials):
            before = running(client, names)
            victims = random.sample(sorted(before), min(at_once, len(before)))
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=max(1, len(victims))) as pool:
                list(pool.map(lambda name: client.remove_container(before[name], force=True), victims))
            try:
                back = [starts.wait(name, before[name], started, timeout) for name in victims]
            except TimeoutError as exc:
                raise RuntimeError(f"{exc} not back within {timeout:.0f} s\n{daemon.log_tail()}") from None
            found.append(max(back) - started)
            time.sleep(0.5)  # the repair's own events settle before the next victim
    finally:
        starts.close()
    return Percentiles(tuple(found))


def drift_floor(trials: int, image: str = DEFAULT_IMAGE, *, timeout: float = 120) -> Percentiles:
    """``trials`` times, by hand: ``docker rm -f`` of a container like a stack's, on a bridge network of its own,
    then create and start it again, until its ``start`` event: the engine's own time for a repair, now."""
    client, run = engine(), secrets.token_hex(3)
    name, found = f"scalefloor-{run}-drift", []
    network = client.create_network(name, driver="bridge", labels={FLOOR_LABEL: run})["Id"]

    def run_one() -> str:
        host_config = client.create_host_config(init=True, network_mode=network)
        made = client.create_container(image=image, command=COMMAND, name=name, labels={FLOOR_LABEL: run},
                                       stop_timeout=1, host_config=host_config)
        client.start(made["Id"])
        return made["Id"]

    starts = _Starts(client)
    try:
        current = run_one()
        for _ in range(trials):
            time.sleep(0.5)
            started = time.monotonic()
            client.remove_container(current, force=True)
            old, current = current, run_one()
            found.append(starts.wait(name, old, started, timeout) - started)
    finally:
        starts.close()
        remove_floor(client, run)
    return Percentiles(tuple(found))
