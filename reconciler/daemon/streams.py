"""The daemon's ``/logs`` and ``/events``: a stack's container output and history as NDJSON, read or followed.

Why a module of its own: these two routes stream, unlike every other reader,
and a follow holds an engine connection and a thread for as long as its
client stays. So followers are bounded (``MAX_FOLLOWERS`` per daemon, a 503
beyond), each followed stream runs in a thread of its own feeding the event
loop through a bounded queue (a slow client slows its reader, never the
daemon), and the reader is told to stop as soon as the client goes. What is
read, and how engine events and passes merge, is ``reconciler.logs``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from typing import Any, AsyncIterator, Callable, Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import PermanentError, ReconcilerError, SpecError
from ..logs import engine_events, merged_events, read_logs, stack_containers, sync_event
from ..model import Kind

__all__ = ["MAX_FOLLOWERS", "Streams"]

log = logging.getLogger(__name__)

#: Followed streams one daemon serves at once.
MAX_FOLLOWERS = 16
NDJSON = "application/x-ndjson"
_END = object()


class Streams:
    """The two routes' handlers for one daemon (``doors``: the routes' shared state)."""

    def __init__(self, doors: Any, *, max_followers: int = MAX_FOLLOWERS) -> None:
        self.doors = doors
        self._followers = threading.BoundedSemaphore(max_followers)

    def logs(self, request: Request, worker: Any) -> Response:
        """``GET /api/stacks/{name}/logs?container=NAME&tail=200&since=UNIX&follow=0|1``."""
        try:
            follow, since = _flag(request, "follow"), _number(request, "since")
            tail = _number(request, "tail")
            runtime = self._runtime(worker)
            names = stack_containers(runtime, worker.stack, request.query_params.getlist("container"))
        except ValueError as exc:
            return _error(400, str(exc))
        except ReconcilerError as exc:
            return _refused(exc)

        def lines(stop: threading.Event) -> Iterable[dict[str, Any]]:
            for line in read_logs(runtime, names, follow=follow, since=since,
                                  tail=None if tail is None else int(tail), stop=stop):
                yield {"container": line.container, "time": line.time, "stream": line.stream, "line": line.line}

        return self._answer(lines, follow)

    def events(self, request: Request, worker: Any) -> Response:
        """``GET /api/stacks/{name}/events?since=UNIX&follow=0|1``: engine events and passes, in time order."""
        try:
            follow, since = _flag(request, "follow"), _number(request, "since")
            runtime = self._runtime(worker)
        except ValueError as exc:
            return _error(400, str(exc))
        except ReconcilerError as exc:
            return _refused(exc)
        desired, stack, state = worker.loop.desired, worker.stack, self.doors.view.state
        names = {spec.name for kind in (Kind.NETWORK, Kind.VOLUME) for spec in desired.section(kind).values()}

        def engine(stop: threading.Event):
            return engine_events(runtime, stack, names=names, since=since, follow=follow, stop=stop)

        def passes(after: float | None):
            found = (sync_event(sync) for sync in state.syncs(stack=stack, limit=1000))
            return [event for event in found if after is None or event.time > after]

        return self._answer(lambda stop: (e.data() for e in merged_events(engine, passes, since=since, follow=follow,
                                                                         stop=stop)), follow)

    def _runtime(self, worker: Any):
        reconciler = self.doors.daemon.reconciler
        return reconciler.drivers(worker.stack).get(Kind.CONTAINER, worker.loop.desired.runtime)

    def _answer(self, produce: Callable[[threading.Event], Iterable[dict[str, Any]]], follow: bool) -> Response:
        """The whole answer read now (errors as a status), or a follow streamed while the client stays."""
        if not follow:
            try:
                body = "".join(json.dumps(item) + "\n" for item in produce(threading.Event()))
            except ReconcilerError as exc:
                return _refused(exc)
            return Response(body, media_type=NDJSON)
        if not self._followers.acquire(blocking=False):
            return _error(503, f"this daemon already serves {MAX_FOLLOWERS} followed streams; try again later",
                          **{"Retry-After": "5"})
        return StreamingResponse(_Followed(produce, self._followers.release), media_type=NDJSON)


class _Followed:
    """A followed stream's body: a reader thread feeding the event loop; its follower slot freed exactly once."""

    def __init__(self, produce: Callable[[threading.Event], Iterable[dict[str, Any]]],
                 release: Callable[[], None]) -> None:
        self.produce = produce
        self._release = release
        self._released = threading.Lock()
        self.stop = threading.Event()

    def release(self) -> None:
        self.stop.set()
        if self._released.acquire(blocking=False):
            self._release()

    def __del__(self) -> None:  # a client gone before its body started: the slot is freed all the same
        self.release()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._body()

    async def _body(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue(maxsize=256)
        threading.Thread(target=self._pump, args=(loop, items), daemon=True, name="api-follow").start()
        try:
            while (item := await items.get()) is not _END:
                yield (json.dumps(item) + "\n").encode()
        finally:
            self.release()

    def _pump(self, loop: asyncio.AbstractEventLoop, items: asyncio.Queue) -> None:
        try:
            for item in self.produce(self.stop):
                if self.stop.is_set() or not self._put(loop, items, item):
                    return
        except Exception as exc:  # the engine went: the stream ends, the daemon goes on
            if not self.stop.is_set():
                log.warning("a followed stream ended: %s", exc)
        finally:
            self._put(loop, items, _END)

    def _put(self, loop: asyncio.AbstractEventLoop, items: asyncio.Queue, item: object) -> bool:
        """Hand ``item`` to the event loop, waiting while its queue is full; False once the client has gone."""
        try:
            future = asyncio.run_coroutine_threadsafe(items.put(item), loop)
        except RuntimeError:  # the event loop has closed
            return False
        while not self.stop.is_set():
            try:
                future.result(timeout=0.5)
                return True
            except concurrent.futures.TimeoutError:
                continue
        future.cancel()
        return False


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "0")
    if value not in ("0", "1", "true", "false"):
        raise ValueError(f"{name} must be 0 or 1")
    return value in ("1", "true")


def _number(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if number < 0:
        raise ValueError(f"{name} must not be negative")
    return number


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _refused(exc: ReconcilerError) -> JSONResponse:
    """A driver's refusal or the engine's failure as an answer: 404 no such container, 501 cannot, 502 engine."""
    if isinstance(exc, SpecError):
        return _error(404, str(exc))
    return _error(501 if isinstance(exc, PermanentError) else 502, str(exc))
