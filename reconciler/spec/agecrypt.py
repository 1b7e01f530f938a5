"""Secrets kept in git encrypted with age, decrypted when a spec is read.

``secrets: {db: {file: ./db.age, encrypted: age}}`` keeps only ciphertext in
the repository; the identity that opens it comes from the process
environment, never from the spec: ``RECONCILER_AGE_IDENTITY`` holds the
identity itself (an ``AGE-SECRET-KEY-1…`` line, or a whole key file's text),
``RECONCILER_AGE_IDENTITY_FILE`` names a key file (as ``age-keygen`` writes
it). The crypto is pyrage's (a maintained binding of the rage
implementation), imported only when an encrypted secret is read.

Messages name the variable and the file; they never quote an identity or
any decrypted byte.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

__all__ = ["IDENTITY_ENV", "IDENTITY_FILE_ENV", "AgeError", "decrypt"]

IDENTITY_ENV = "RECONCILER_AGE_IDENTITY"
IDENTITY_FILE_ENV = "RECONCILER_AGE_IDENTITY_FILE"
_MAX_KEY_FILE = 64 * 1024


class AgeError(ValueError):
    """An encrypted secret cannot be opened: no identity, a broken identity, or none that matches."""


def decrypt(data: bytes, environ: Mapping[str, str]) -> bytes:
    """The plaintext of age ``data`` (binary or armored), with the identities ``environ`` names."""
    import pyrage

    identities, source = _identities(environ)
    try:
        return pyrage.decrypt(data, identities)
    except pyrage.DecryptError as exc:
        reason = str(exc)
        if "no matching keys" in reason.lower():
            raise AgeError(f"the identity from {source} does not open it (it was encrypted to other recipients)") \
                from None
        raise AgeError(f"not a readable age file ({reason})") from None


def _identities(environ: Mapping[str, str]) -> tuple[list[Any], str]:
    """The identities and where they came from; the text variable wins over the file."""
    text = environ.get(IDENTITY_ENV, "")
    if text.strip():
        return _parse(text, IDENTITY_ENV), IDENTITY_ENV
    path = environ.get(IDENTITY_FILE_ENV, "")
    if path:
        source = f"{IDENTITY_FILE_ENV} ({path})"
        return _parse(_read_key_file(Path(path).expanduser(), source), source), source
    raise AgeError(f"it is encrypted with age and no identity is set: set {IDENTITY_ENV} (the identity) "
                   f"or {IDENTITY_FILE_ENV} (a key file)")


def _read_key_file(path: Path, source: str) -> str:
    try:
        with path.open("rb") as stream:
            raw = stream.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise AgeError(f"cannot read the key file of {source}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_KEY_FILE:
        raise AgeError(f"the key file of {source} is over {_MAX_KEY_FILE} bytes: not an age key file")
    return raw.decode("utf-8", "replace")


def _parse(text: str, source: str) -> list[Any]:
    """Every ``AGE-SECRET-KEY-1…`` line of a key file's text (``#`` comments and blank lines skipped)."""
    import pyrage

    identities = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            # Never quote the line: it may be a key with one character wrong.
            raise AgeError(f"{source}, line {number}: not an age identity (expected AGE-SECRET-KEY-1…)") from None
    if not identities:
        raise AgeError(f"{source} holds no age identity (expected a line AGE-SECRET-KEY-1…)")
    return identities
