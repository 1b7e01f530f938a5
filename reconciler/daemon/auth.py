"""Who may use the daemon's API: bearer tokens from a file, and status page sessions.

A token is compared with every known token in constant time (``hmac.compare_digest``),
so the time a check takes says nothing about how much of a guess was right. A
``read`` token sees everything and changes nothing; a ``write`` token may also
sync, suspend and resume stacks. The status page trades a token for a session
(a random id in an HttpOnly, SameSite=Strict cookie, kept in memory only) and
a CSRF token that every state-changing request made with that cookie must echo.
"""
from __future__ import annotations

import enum
import hmac
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..redact import register_secrets

__all__ = ["Access", "Principal", "Sessions", "Tokens", "load_tokens"]

MIN_TOKEN = 16


class Access(enum.StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's name and what it may do."""

    name: str
    access: Access

    @property
    def can_write(self) -> bool:
        return self.access is Access.WRITE


class Tokens:
    """The tokens of the tokens file."""

    def __init__(self, entries: list[tuple[str, Access, bytes]]) -> None:
        self._entries = entries

    def check(self, presented: str | None) -> Principal | None:
        """The token's principal, or None. Every entry is compared, whether or not one matched."""
        if not presented:
            return None
        given = presented.encode()
        found = None
        for name, access, token in self._entries:
            if hmac.compare_digest(given, token) and found is None:
                found = Principal(name, access)
        return found


def load_tokens(path: str) -> Tokens:
    """Read ``NAME ACCESS TOKEN`` lines (``#`` comments); refuse a file others can read or a weak token."""
    file = Path(path)
    try:
        info = os.stat(file)
        text = file.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the API tokens: {exc.strerror or exc}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SpecError(f"{path}: the API tokens file can be read by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                        f"chmod 600 {path}")
    entries, names = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{path}:{number}"
        if len(words) != 3:
            raise SpecError(f"{where}: expected NAME ACCESS TOKEN, found {len(words)} field(s)")
        name, access, token = words
        if access not in Access.__members__.values():
            raise SpecError(f"{where}: access {access!r} is not one of read, write")
        if len(token) < MIN_TOKEN:
            raise SpecError(f"{where}: the token of {name!r} is shorter than {MIN_TOKEN} characters; "
                            "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
        if name in names:
            raise SpecError(f"{where}: {name!r} is named twice")
        names.add(name)
        entries.append((name, Access(access), token.encode()))
    if not entries:
        raise SpecError(f"{path}: no token in the API tokens file")
    register_secrets(token.decode() for _, _, token in entries)  # should one ever reach a log line
    return Tokens(entries)


@dataclass
class _Session:
    principal: Principal
    csrf: str
    expires: float


class Sessions:
    """Status page logins, in memory: a daemon restart logs everyone out."""

    COOKIE = "reconciler_session"

    def __init__(self, hours: float) -> None:
        self.lifetime = hours * 3600
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def open(self, principal: Principal) -> tuple[str, str]:
        """A new session for ``principal``: (session id for the cookie, its CSRF token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[key]
            self._sessions[session_id] = _Session(principal, csrf, now + self.lifetime)
        return session_id, csrf

    def get(self, session_id: str | None) -> tuple[Principal, str] | None:
        """(principal, CSRF token) of a live session, or None."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.expires < time.monotonic():
                self._sessions.pop(session_id, None)
                return None
            return session.principal, session.csrf

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)
