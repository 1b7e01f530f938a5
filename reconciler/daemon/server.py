"""The daemon's HTTP side: API, status page, metrics and webhooks (Starlette, served by uvicorn).

Every route but ``/healthz`` and ``/readyz`` needs a bearer token or a status
page session; webhooks prove themselves with their provider's signature
instead (a registry's with the bearer secret its notifications endpoint
sends). Handlers that read the state database or the engine are plain
functions, which Starlette runs in its thread pool, so the event loop only
ever parses requests and writes responses.
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import threading
from typing import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ReconcilerError, SpecError, StateError
from ..loop import Trigger
from ..render import hold_text, release_text
from ..spec.validate import schema_text
from . import page
from .auth import Tokens
from .config import PUBLIC_URL_ENV, ApiConfig
from .hooks import HookVerifier
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .paging import BadPage, link_header, paging_of
from .registryevents import push_events
from .runner import Daemon
from .doors import Doors
from .streams import Streams
from .throttle import LogThrottle
from .view import STATES

__all__ = ["ApiServer", "make_app"]

log = logging.getLogger(__name__)

CSRF_HEADER = "x-csrf-token"


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _unauthorized() -> JSONResponse:
    return _error(401, "a valid bearer token is needed", **{"WWW-Authenticate": 'Bearer realm="reconciler"'})


def make_app(daemon: Daemon, api: ApiConfig, tokens: Tokens, hooks: dict[str, HookVerifier],
             metrics: Metrics, *, disconnects: LogThrottle | None = None) -> Starlette:
    """The daemon's routes; ``disconnects``: where a client that hangs up mid-body is told of (one line a minute)."""
    doors = Doors(daemon, api, tokens, hooks, metrics)
    disconnects = disconnects or LogThrottle(log)
    openapi = json.loads(schema_text("api.openapi.json"))

    def reader(handler: Callable[..., Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            principal, _ = doors.who(request)
            if principal is None:
                return _unauthorized()
            return handler(request)
        return endpoint

    def refusal(request: Request) -> Response | None:
        """Why ``request`` may not change anything, or None when it may."""
        principal, csrf = doors.who(request)
        if principal is None:
            return _unauthorized()
        if csrf is not None and not page.same_token(request.headers.get(CSRF_HEADER), csrf):
            return _error(403, f"a request made with the status page's session needs its {CSRF_HEADER} header")
        if not principal.can_write:
            return _error(403, f"token {principal.name!r} is read-only: it cannot change anything")
        return None

    def writer(handler: Callable[..., Response]) -> Callable[[Request], Response]:
        if inspect.iscoroutinefunction(handler):  # one that reads a body
            async def reading(request: Request) -> Response:
                return refusal(request) or await handler(request)
            return reading

        def endpoint(request: Request) -> Response:
            return refusal(request) or handler(request)
        return endpoint

    def stack_of(request: Request):
        return doors.view.find(request.path_params["name"])

    def not_found(request: Request) -> JSONResponse:
        return _error(404, f"no stack is named {request.path_params['name']!r}")

    # -- open to anyone ---------------------------------------------------------------

    def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> Response:
        waiting = doors.view.ready()
        return JSONResponse({"ready": not waiting, "waiting": waiting}, status_code=503 if waiting else 200)

    # -- API ----------------------------------------------------------------------------

    def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    def metrics_text(request: Request) -> Response:
        return Response(doors.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def stacks(request: Request) -> Response:
        """A page of stacks, from memory: ``?limit=&offset=&state=``; the rest in ``X-Total-Count`` and ``Link``."""
        try:
            paging = paging_of(request.query_params, STATES)
        except BadPage as exc:
            return _error(400, str(exc))
        rows, total = doors.view.page(limit=paging.limit, offset=paging.offset, states=paging.states)
        headers = {"X-Total-Count": str(total)}
        link = link_header(request.url.path, paging, total)
        if link:
            headers["Link"] = link
        return JSONResponse(rows, headers=headers)

    def stack(request: Request) -> Response:
        worker = stack_of(request)
        # writable layers' paths, and each image's layers (one history call per image)
        detailed = request.query_params.get("detailed", "") in ("1", "true")
        return JSONResponse(doors.view.detail(worker, detailed=detailed)) if worker else not_found(request)

    def history(request: Request) -> Response:
        worker = stack_of(request)
        if worker is None:
            return not_found(request)
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            return _error(400, "limit must be a whole number")
        return JSONResponse(doors.view.history(worker, max(1, min(limit, 1000))))

    streams = Streams(doors)

    def logs(request: Request) -> Response:
        worker, refused = named(request, "show the logs of")
        return refused or streams.logs(request, worker)

    def events(request: Request) -> Response:
        worker, refused = named(request, "show the events of")
        return refused or streams.events(request, worker)

    def sync(request: Request) -> Response:
        worker = stack_of(request)
        if worker is None:
            return not_found(request)
        doors.daemon.sync(worker)
        return JSONResponse({"stack": worker.stack or worker.id, "accepted": True}, status_code=202)

    def toggle(request: Request) -> Response:
        worker = stack_of(request)
        if worker is None:
            return not_found(request)
        if not worker.stack:
            return _error(409, f"{worker.id} has never loaded, so its stack has no name to suspend or resume yet")
        suspend = request.url.path.endswith("/suspend")
        (doors.view.suspend if suspend else doors.view.resume)(worker.stack)
        worker.loop.trigger(Trigger.API)  # a resumed stack catches up at once; a suspended one reports drift
        return JSONResponse(doors.view.summary(worker))

    def named(request: Request, verb: str):
        """The worker of a stack that has a name (its spec loaded), else the 404 or 409 answer."""
        worker = stack_of(request)
        if worker is None:
            return None, not_found(request)
        if not worker.stack:
            return None, _error(409, f"{worker.id} has never loaded, so its stack has no name to {verb} yet")
        return worker, None

    async def rollback(request: Request) -> Response:
        worker, refused = named(request, "roll back")
        if refused is not None:
            return refused
        body = await _small_body(request, doors.api.max_body)
        if isinstance(body, Response):
            return body
        try:
            asked = json.loads(body)
            to, with_data = asked["to"], asked.get("with_data", False)
        except (ValueError, TypeError, KeyError, AttributeError):
            to = with_data = None
        if not isinstance(to, str) or not isinstance(with_data, bool):
            return _error(400, 'the body must be a JSON object with "to": the commit to go back to, its full id '
                               'or its first digits as history shows them (and "with_data": true to restore the '
                               "volumes' data as it was then)")
        return await run_in_threadpool(hold, worker, to, with_data)

    def hold(worker, to: str, with_data: bool) -> Response:
        try:
            revision, source = doors.view.hold_at(worker.stack, to, with_data=with_data)
        except SpecError as exc:
            return _error(400, str(exc))
        worker.loop.trigger(Trigger.API)  # applied now, not at the next fetch: whoever asked is waiting for it
        answer = {"stack": worker.stack, "held_at": revision, "source_revision": source,
                  "message": hold_text(worker.stack, revision, source, with_data=with_data)}
        return JSONResponse({**answer, "with_data": True} if with_data else answer)

    def snapshots(request: Request) -> Response:
        worker, refused = named(request, "list the snapshots of")
        if refused is not None:
            return refused
        try:
            return JSONResponse(doors.view.snapshots(worker))
        except ReconcilerError as exc:
            return _error(502, str(exc))

    def previews(request: Request) -> Response:
        """The record's previews (``?source=``: of one source), as the daemon last left them."""
        try:
            return JSONResponse({"previews": doors.view.previews(request.query_params.get("source") or None)})
        except StateError as exc:
            return _error(503, str(exc))

    def release(request: Request) -> Response:
        worker, refused = named(request, "release")
        if refused is not None:
            return refused
        doors.view.release(worker.stack)
        worker.loop.trigger(Trigger.API)
        return JSONResponse({"stack": worker.stack, "held_at": None, "source_revision": None,
                             "message": release_text(worker.stack)})

    # -- webhooks -----------------------------------------------------------------------

    async def webhook(request: Request) -> Response:
        name = request.path_params["hook"]
        verifier = doors.hooks.get(name)
        if verifier is None:
            return _error(404, f"no webhook is named {name!r}")
        cap = doors.api.max_body
        counted = doors.metrics.webhooks
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            counted.labels(name, "too_large").inc()
            return _error(413, f"the body is larger than {cap} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                counted.labels(name, "too_large").inc()
                return _error(413, f"the body is larger than {cap} bytes")
        refused = verifier.refusal(request.headers, bytes(body))
        if refused:
            counted.labels(name, "unauthorized").inc()
            return _error(401, refused)
        if verifier.hook.provider == "registry":
            return registry_delivery(verifier, bytes(body))
        if not verifier.first_delivery(request.headers, bytes(body)):
            counted.labels(name, "duplicate").inc()
            return JSONResponse({"fetch": [], "duplicate": True}, status_code=202)
        counted.labels(name, "accepted").inc()
        doors.daemon.fetch(list(verifier.hook.sources))
        return JSONResponse({"fetch": list(verifier.hook.sources), "duplicate": False}, status_code=202)

    def registry_delivery(verifier: HookVerifier, body: bytes) -> Response:
        """A verified registry envelope: its manifest pushes not seen before go to the daemon, nothing else."""
        found = push_events(body)
        fresh = verifier.first_events([event for event, _ in found], body)
        news = [push for (_, push), new in zip(found, fresh) if new]
        duplicate = bool(found) and not news
        doors.metrics.webhooks.labels(verifier.hook.name, "duplicate" if duplicate else "accepted").inc()
        if news:
            doors.daemon.registry_pushed(news)
        return JSONResponse({"pushes": len(news), "duplicate": duplicate}, status_code=202)

    def disconnected(request: Request, exc: Exception) -> Response:
        """A client gone before its body was read (any route): counted, told in one throttled line, no traceback."""
        route = getattr(request.scope.get("route"), "path", request.url.path)
        doors.metrics.disconnects.labels(route).inc()
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        disconnects.note(f"{client} went away before sending the whole body of {request.method} {request.url.path}")
        return Response(status_code=400)  # nobody is left to read it

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/openapi.json", reader(openapi_json)),
        Route("/metrics", reader(metrics_text)),
        Route("/api/stacks", reader(stacks)),
        Route("/api/previews", reader(previews)),
        Route("/api/stacks/{name:path}/history", reader(history)),
        Route("/api/stacks/{name:path}/logs", reader(logs)),
        Route("/api/stacks/{name:path}/events", reader(events)),
        Route("/api/stacks/{name:path}/snapshots", reader(snapshots)),
        Route("/api/stacks/{name:path}/sync", writer(sync), methods=["POST"]),
        Route("/api/stacks/{name:path}/suspend", writer(toggle), methods=["POST"]),
        Route("/api/stacks/{name:path}/resume", writer(toggle), methods=["POST"]),
        Route("/api/stacks/{name:path}/rollback", writer(rollback), methods=["POST"]),
        Route("/api/stacks/{name:path}/release", writer(release), methods=["POST"]),
        Route("/api/stacks/{name:path}", reader(stack)),
        Route("/hooks/{hook}", webhook, methods=["POST"]),
        *page.routes(doors),
    ]
    return Starlette(routes=routes, exception_handlers={ClientDisconnect: disconnected})


async def _small_body(request: Request, cap: int) -> bytes | Response:
    """The request's body, or a 413 answer once it is larger than ``cap`` bytes (read no further)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        return _error(413, f"the body is larger than {cap} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            return _error(413, f"the body is larger than {cap} bytes")
    return bytes(body)


class ApiServer:
    """uvicorn serving the app in a thread of its own, beside the daemon's loops."""

    def __init__(self, app: Starlette, api: ApiConfig) -> None:
        import uvicorn

        from .quietserver import QuietServer

        self.api = api
        config = uvicorn.Config(app, host=api.host, port=api.port, log_config=None, access_log=False,
                                lifespan="off", ssl_certfile=api.tls_cert, ssl_keyfile=api.tls_key,
                                server_header=False, timeout_graceful_shutdown=5)
        self.server = QuietServer(config)
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; return the URL it listens on (the real port when the configured one is 0)."""
        from ..waiting import PollTimeout, poll_until

        self.thread.start()
        try:  # a thread that died (the port taken) ends the wait at once
            poll_until(lambda: self.server.started or not self.thread.is_alive(), timeout=timeout, interval=0.05)
        except PollTimeout:
            pass
        if not self.server.started:
            raise OSError(f"the API could not listen on {self.api.host}:{self.api.port} (see the log above)")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self.api.tls_cert else "http"
        host = f"[{self.api.host}]" if ":" in self.api.host else self.api.host
        return f"{scheme}://{host}:{port}"

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


def build(daemon: Daemon, api: ApiConfig, webhooks, metrics: Metrics) -> ApiServer:
    """The server for ``daemon``, its tokens and webhook secrets read now (a mistake stops the start)."""
    from .auth import load_tokens
    from .hooks import secret_of

    tokens = load_tokens(api.tokens_file)
    hooks = {hook.name: HookVerifier(hook, secret_of(hook)) for hook in webhooks}
    if api.public_url:  # read by plugins (the notify plugin links its messages to the status page)
        os.environ[PUBLIC_URL_ENV] = api.public_url
    return ApiServer(make_app(daemon, api, tokens, hooks, metrics), api)

