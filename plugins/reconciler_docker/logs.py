"""A container's output and the engine's events about a stack, read on demand (``reconcile logs``/``events``).

Why a module of its own: the runtime driver (``containers.py``) reconciles,
this only reads what a user asked to see, and nothing here runs on a pass.
Logs come from the engine's log API with ``timestamps`` and the two streams
kept apart (the engine multiplexes them in frames unless the container has a TTY); the
events from its event API, bounded by ``until`` unless followed. A follow ends
when ``stop`` is set: a watcher closes the response, as a blocked read ends
only then.
"""
from __future__ import annotations

from datetime import datetime, timezone
import threading
import time
from typing import Any, Collection, Iterable, Iterator

import docker.errors

from reconciler.sdk import Kind, PermanentError
from reconciler.sdk.docker import engine_errors
from reconciler.sdk.labels import is_owned

__all__ = ["ContainerLogs", "event_record", "log_time"]

#: Event attributes worth showing; the rest of a container's are its labels, which say nothing new.
_SHOWN_ATTRIBUTES = ("exitCode", "signal", "image", "container", "driver", "type")
#: How often a watcher looks at ``stop`` (a Ctrl-C or a client gone ends a follow within this).
_STOP_POLL = 0.25


def log_time(stamp: str) -> float:
    """The unix time of an engine timestamp (RFC 3339, UTC, up to nanoseconds: ``2026-12-07T10:02:03.123456789Z``)."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return seconds + (float("0." + fraction) if fraction.isdigit() else 0.0)


def event_record(event: dict[str, Any]) -> dict[str, Any]:
    """One engine event as ``RuntimeDriver.event_log`` yields it (time, type, action, name, attributes)."""
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    nanos = event.get("timeNano")
    return {"time": nanos / 1e9 if nanos else float(event.get("time") or 0),
            "type": event.get("Type", ""), "action": (event.get("Action") or event.get("status") or "").split(":")[0],
            "name": attributes.get("name") or actor.get("ID", ""),
            "attributes": {k: attributes[k] for k in _SHOWN_ATTRIBUTES if k in attributes}}


def _close_when(stop: threading.Event | None, done: threading.Event, close: Any, name: str) -> None:
    """Close ``close`` once ``stop`` is set (a blocked read ends only so); give up once ``done`` is."""
    if stop is None:
        return

    def watch() -> None:
        while not (stop.wait(_STOP_POLL) or done.is_set()):
            pass
        if not done.is_set():
            close()

    threading.Thread(target=watch, daemon=True, name=name).start()


def _shut(response: Any) -> None:
    """End a read blocked on ``response``: its socket shut down, as docker-py's cancellable streams do
    (closing the response alone waits for the read to end)."""
    from docker.types.daemon import CancellableStream

    try:
        CancellableStream(iter(()), response).close()
    except Exception:  # an SSH channel cannot be shut down so: closing is all there is
        response.close()


class ContainerLogs:
    """``RuntimeDriver.logs`` and ``event_log`` over the engine's API (a mixin: needs ``self.api``)."""

    api: Any

    def logs(self, name: str, *, follow: bool = False, since: float | None = None, tail: int | None = None,
             stop: threading.Event | None = None) -> Iterator[tuple[float, str, str]]:
        """The container's lines as (unix time, stream, line); see ``RuntimeDriver.logs``."""
        with engine_errors(f"read the logs of container {name}"):
            try:
                tty = bool((self.api.inspect_container(name).get("Config") or {}).get("Tty"))
            except docker.errors.NotFound:
                raise PermanentError(f"no container is named {name}") from None
            params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow),
                      "tail": "all" if tail is None else max(0, int(tail))}
            if since is not None:
                params["since"] = max(since, 0.000001)
            response = self.api._get(self.api._url("/containers/{0}/logs", name), params=params, stream=True,
                                     timeout=None if follow else self.api.timeout)
            self.api._raise_for_status(response)
        done = threading.Event()
        _close_when(stop, done, lambda: _shut(response), f"logs-closer-{name}")
        pending = {"stdout": b"", "stderr": b""}
        try:
            for stream, data in _frames(response.iter_content(chunk_size=None), tty=tty):
                *lines, pending[stream] = (pending[stream] + data).split(b"\n")
                yield from (_line(stream, raw) for raw in lines)
        except Exception:  # the response closed under the read: stop was set, or the engine went
            if stop is None or not stop.is_set():
                raise
        finally:
            done.set()
            response.close()
        for stream, rest in pending.items():
            if rest:
                yield _line(stream, rest)

    def health_output(self, name: str) -> str | None:
        """What the container's last health probe printed (one inspect); None without a healthcheck."""
        with engine_errors(f"inspect container {name}", missing_ok=True):
            log = ((self.api.inspect_container(name).get("State") or {}).get("Health") or {}).get("Log") or []
            if log:
                return str(log[-1].get("Output") or "").strip() or None
        return None

    def event_log(self, stack: str, *, names: Collection[str] = (), since: float | None = None,
                  until: float | None = None, follow: bool = False,
                  stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
        """The engine's events about ``stack``'s containers, networks and volumes; see ``RuntimeDriver.event_log``."""
        if not follow and until is None:
            until = time.time()
        with engine_errors("read the engine's events"):
            stream = self.api.events(since=since if since is not None else None, until=until, decode=True,
                                     filters={"type": ["container", "network", "volume"]})
        done = threading.Event()
        _close_when(stop, done, stream.close, f"event-log-closer-{stack}")
        try:
            for event in stream:
                record = event_record(event)
                kind = Kind.CONTAINER if record["type"] == "container" else None
                attributes = (event.get("Actor") or {}).get("Attributes") or {}
                if (kind is not None and is_owned(attributes, stack, kind=kind)) or record["name"] in names:
                    yield record
        except Exception:
            if stop is None or not stop.is_set():
                raise
        finally:
            done.set()
            stream.close()


def _frames(chunks: Iterable[bytes], *, tty: bool) -> Iterator[tuple[str, bytes]]:
    """(stream, data) from the log API's body as it arrives: one stream for a TTY, else the engine's frames
    (a header of 8 bytes: the stream, 1 stdout or 2 stderr, then the payload's size, big-endian, in the last 4).

    Read from the HTTP body, not the raw socket: a finished answer on a kept-alive connection never ends a
    socket read."""
    if tty:
        yield from (("stdout", chunk) for chunk in chunks if chunk)
        return
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 8:
            size = int.from_bytes(buffer[4:8], "big")
            if len(buffer) < 8 + size:
                break
            yield ("stderr" if buffer[0] == 2 else "stdout"), buffer[8:8 + size]
            buffer = buffer[8 + size:]


def _line(stream: str, raw: bytes) -> tuple[float, str, str]:
    """(time, stream, text) of one timestamped line, its trailing carriage return dropped."""
    stamp, _, text = raw.decode("utf-8", "replace").partition(" ")
    try:
        when = log_time(stamp)
    except ValueError:  # not a timestamp after all: keep the whole line
        when, text = time.time(), f"{stamp} {text}".rstrip()
    return when, stream, text.rstrip("\r")
