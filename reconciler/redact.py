"""One redactor for the whole process: the secret values a run learns, blanked wherever text leaves it.

Plans and progress lines are redacted where they are made: the planner knows
which env keys are secret, a build knows its secret args. Logs are another
matter: any library may log, and does (urllib3 logs every request line, with a
build's args in its query string). So the values are registered here when
they are loaded (the spec's secret env values and build args, a registry's
password), and the CLI puts a ``RedactingFilter`` on its log handlers, where
every record ends up, third-party loggers' included.

A value is registered in the forms it takes on the way to the engine as well
(JSON-escaped, URL-encoded), since that is how a request line shows it. A
very short secret is redacted too, at the price of blanking ordinary text that
happens to contain it: leaking it would be worse.

The bottom layer: it imports nothing from the package, so the spec half and the
plugins can register with it.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from typing import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["REDACTED", "RedactingFilter", "forget_secrets", "redact", "register_secrets", "without_credentials"]

REDACTED = "(secret)"
_LOCK = threading.Lock()
_REGISTERED: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values (and their escaped forms) for ``redact``; empty values are skipped."""
    forms = {form for value in values if value for form in _forms(value)}
    with _LOCK:
        _REGISTERED.update(forms)


def forget_secrets() -> None:
    """Forget every registered value (for tests, and a long-lived process starting a new run)."""
    with _LOCK:
        _REGISTERED.clear()


def _forms(value: str) -> set[str]:
    escaped = json.dumps(value)[1:-1]  # inside a JSON string, as in buildargs={"TOKEN": "..."}
    return {value, escaped, quote(value, safe=""), quote_plus(value), quote(escaped, safe=""), quote_plus(escaped)}


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with each secret value replaced by ``(secret)``: ``secrets`` if given, else the registered ones.

    The longest go first, so a secret that contains another is replaced whole.
    """
    if secrets is None:
        with _LOCK:
            secrets = tuple(_REGISTERED)
    for secret in sorted({s for s in secrets if s}, key=lambda s: (-len(s), s)):
        text = text.replace(secret, REDACTED)
    return text


#: The user and password part of a URL (``https://user:token@host/``): everything between ``://`` and the last ``@``
#: before the host ends.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"<>]*@")


def without_credentials(text: str) -> str:
    """``text`` with the user and password taken out of every URL in it (a token is often the user name)."""
    return _USERINFO.sub(r"\g<scheme>", text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts a record's message, exception and stack before it is written.

    On a handler (not a logger) it sees every record that reaches the handler,
    whichever logger made it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: drop them rather than risk printing them
            message = f"{record.msg} (log arguments dropped: they did not fit the message)"
        record.msg, record.args = redact(str(message)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
