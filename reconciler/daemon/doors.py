"""What every route of the daemon's HTTP side shares: the daemon, its view, who may ask, and the metrics."""
from __future__ import annotations

from starlette.requests import Request

from .auth import Principal, Sessions, Tokens
from .config import ApiConfig
from .hooks import HookVerifier
from .metrics import Metrics
from .runner import Daemon
from .view import DaemonView

__all__ = ["Doors"]


class Doors:
    """The routes' shared state and the checks every route makes."""

    def __init__(self, daemon: Daemon, api: ApiConfig, tokens: Tokens, hooks: dict[str, HookVerifier],
                 metrics: Metrics) -> None:
        self.daemon = daemon
        self.view = DaemonView(daemon)
        daemon.on_record = self.view.refresh  # the record's suspensions, holds, previews, read each second
        self.api = api
        self.tokens = tokens
        self.hooks = hooks
        self.metrics = metrics
        self.sessions = Sessions(api.session_hours)
        self.secure_cookie = bool(api.tls_cert)

    def who(self, request: Request) -> tuple[Principal | None, str | None]:
        """(principal, CSRF token when it came by session cookie) for a request, (None, None) when unknown."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            return (self.tokens.check(token.strip()) if scheme.lower() == "bearer" else None), None
        session = self.sessions.get(request.cookies.get(Sessions.COOKIE))
        return session if session else (None, None)
