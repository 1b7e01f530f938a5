"""Commit statuses on GitHub, GitLab and Gitea: the forge shows, on the commit itself, what a pass did with it.

Why here and not in a plugin: the daemon alone knows when a pass that applies a
new commit starts and ends, and which source (repository) a stack comes from.
Each forge's documented REST API is called with the standard library's
``urllib`` (no HTTP dependency for three POSTs):

- GitHub: ``POST {api}/repos/{owner}/{repo}/statuses/{sha}``, JSON ``state``
  (``pending``, ``success``, ``failure``, ``error``), ``target_url``,
  ``description`` (140 characters at most), ``context``; headers
  ``Authorization: Bearer``, ``Accept: application/vnd.github+json``,
  ``X-GitHub-Api-Version: 2022-11-28``.
- GitLab: ``POST {api}/projects/{id}/statuses/{sha}`` (a project path is
  URL-encoded: ``group%2Fname``), JSON ``state`` (``pending``, ``running``,
  ``success``, ``failed``, ``canceled``), ``name``, ``description`` (255 at
  most), ``target_url``; header ``PRIVATE-TOKEN``.
- Gitea: ``POST {api}/repos/{owner}/{repo}/statuses/{sha}``, JSON ``state``
  (``pending``, ``success``, ``error``, ``failure``, ``warning``), ``context``,
  ``description``, ``target_url``; header ``Authorization: token …``.

A request is built as data (``status_request``), so tests check its shape
without a network, then sent (``send_status``) with a timeout and bounded
retries: a 5xx, a 429 or a connection that fails is tried again, any other
answer is final. The token is only ever in the request's header: errors name
the forge's URL and the HTTP status, never a header or the token.
"""
from __future__ import annotations

import enum
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import PermanentError, TemporaryError
from ..retry import RetryPolicy, call_with_retries
from .config import CommitStatus

__all__ = ["DESCRIPTION_LIMITS", "StatusRequest", "StatusState", "read_status_token", "send_status",
           "status_request"]

#: The longest description each forge takes (GitHub documents 140; GitLab validates 255; Gitea is held to it too).
DESCRIPTION_LIMITS = {"github": 140, "gitlab": 255, "gitea": 255}
#: Seconds one request may take.
TIMEOUT = 10.0
#: Tries in all, and the pauses between them.
RETRY = RetryPolicy(attempts=3, base=1.0, cap=4.0)


class StatusState(enum.StrEnum):
    """The three moments the daemon tells: a pass started on a new commit, and how it ended."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


#: Each forge's word for each moment (GitLab's ``running``: the pass is under way, not queued).
_STATES = {
    "github": {StatusState.PENDING: "pending", StatusState.SUCCESS: "success", StatusState.FAILURE: "failure"},
    "gitlab": {StatusState.PENDING: "running", StatusState.SUCCESS: "success", StatusState.FAILURE: "failed"},
    "gitea": {StatusState.PENDING: "pending", StatusState.SUCCESS: "success", StatusState.FAILURE: "failure"},
}


@dataclass(frozen=True)
class StatusRequest:
    """One commit status as the forge's API takes it: method, URL, headers (the token among them) and JSON body."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: Mapping[str, str]
    #: The token, only to take it out of any message (a forge that echoes a header back).
    secret: str = field(default="", repr=False, compare=False)


def read_status_token(config: CommitStatus) -> str:
    """The forge's API token, from ``token_env`` or ``token_file``; ``PermanentError`` when there is none."""
    if config.token_env:
        token = os.environ.get(config.token_env, "").strip()
        if not token:
            raise PermanentError(f"the environment variable {config.token_env} holding the {config.provider} "
                                 "token is empty or not set")
        return token
    try:
        token = Path(config.token_file or "").read_text().strip()
    except OSError as exc:
        raise PermanentError(f"cannot read the {config.provider} token file {config.token_file}: "
                             f"{exc.strerror or exc}") from None
    if not token:
        raise PermanentError(f"the {config.provider} token file {config.token_file} is empty")
    return token


def status_request(config: CommitStatus, token: str, *, sha: str, state: StatusState, stack: str,
                   description: str) -> StatusRequest:
    """The request that sets ``state`` (a ``StatusState``) on commit ``sha`` for ``stack``, in the forge's shape."""
    provider = config.provider
    words = _STATES[provider]
    context = config.context.replace("{stack}", stack)
    body = {"state": words[state], "description": _shorten(description, DESCRIPTION_LIMITS[provider])}
    if config.target_url:
        body["target_url"] = config.target_url.replace("{stack}", urllib.parse.quote(stack, safe=""))
    json_headers = {"Content-Type": "application/json", "User-Agent": "reconciler"}
    if provider == "gitlab":
        project = urllib.parse.quote(config.repository, safe="")
        return StatusRequest("POST", f"{config.api_url}/projects/{project}/statuses/{sha}",
                             {**json_headers, "PRIVATE-TOKEN": token}, {**body, "name": context}, token)
    path = "/".join(urllib.parse.quote(part, safe="") for part in config.repository.split("/"))
    if provider == "github":
        headers = {**json_headers, "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28"}
    else:
        headers = {**json_headers, "Authorization": f"token {token}", "Accept": "application/json"}
    return StatusRequest("POST", f"{config.api_url}/repos/{path}/statuses/{sha}", headers,
                         {**body, "context": context}, token)


def send_status(request: StatusRequest, *, timeout: float = TIMEOUT, retry: RetryPolicy = RETRY) -> None:
    """Send ``request``: retried on a 5xx, a 429 or a failed connection (``retry``), else one try.

    Raises ``TemporaryError`` or ``PermanentError`` naming the URL and the answer, never a header.
    """
    try:
        call_with_retries(lambda: _send(request, timeout), retry)
    except (TemporaryError, PermanentError) as exc:
        if request.secret and request.secret in str(exc):
            exc.args = (str(exc).replace(request.secret, "(secret)"),)
        raise


def _send(request: StatusRequest, timeout: float) -> None:
    data = json.dumps(dict(request.body)).encode()
    http = urllib.request.Request(request.url, data=data, headers=dict(request.headers), method=request.method)
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(http, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        said = _said(exc)
        exc.close()
        error = TemporaryError if exc.code >= 500 or exc.code == 429 else PermanentError
        raise error(f"{request.method} {request.url}: HTTP {exc.code}{said}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TemporaryError(f"{request.method} {request.url}: {reason}") from None
    except ValueError as exc:  # a URL urllib cannot open
        raise PermanentError(f"{request.method} {request.url}: {exc}") from None


def _said(exc: urllib.error.HTTPError) -> str:
    """The forge's own message from an error answer (its JSON ``message``), when it gives one."""
    try:
        message = json.loads(exc.read(4096) or b"{}").get("message")
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {str(message)[:200]}" if message else ""


def _shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when it is longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a place to send the token to."""

    def redirect_request(self, *args, **kwargs):  # noqa: D102 - urllib's hook
        return None

