"""Compose's spellings of what the stack spec calls otherwise, for "did you mean" hints.

Most Compose users write a stack spec from memory of a ``compose.yaml``: an
unknown field that is Compose's name for one of ours (``environment`` for
``env``), or an enum value in Compose's words (``service_healthy``), gets a
hint naming ours rather than only the list of fields. Any other unknown
field gets the closest known name, when one is close (``drivr``: ``driver``).
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["COMPOSE_KEYS", "COMPOSE_VALUES", "key_hint", "value_hint"]

#: Compose key → our key (a bare name), or what to write instead (a sentence), where the key is unknown.
COMPOSE_KEYS: dict[str, str] = {
    "services": "containers",
    "environment": "env",
    "mem_limit": "memory",
    "deploy": "replicas, memory, cpus and update (a container takes them directly)",
    "build": "images.<key>.build, with image: <key> here (a container runs an image; images are built under images:)",
    "links": "nothing: a container reaches another by its key on a network they share",
    "version": "nothing: the stack spec has no version (remove it)",
}
#: Compose enum value → ours (``depends_on`` conditions).
COMPOSE_VALUES: dict[str, str] = {
    "service_started": "started",
    "service_healthy": "healthy",
    "service_completed_successfully": "completed",
}


def key_hint(key: str, known: Iterable[str]) -> str:
    """", did you mean …?" for an unknown ``key`` among ``known`` fields, or ""."""
    known = list(known)
    ours = COMPOSE_KEYS.get(key)
    if ours in known:
        return f"; did you mean {ours!r}? ({key!r} is Compose's name for it)"
    if ours and " " in ours:
        return f"; in Compose that is {key!r}: here, write {ours}"
    import difflib  # late: only a spec with an unknown field pays for it

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def value_hint(value: object, allowed: Iterable[object]) -> str:
    """"; did you mean …?" for an enum ``value`` written in Compose's words, or ""."""
    ours = COMPOSE_VALUES.get(value) if isinstance(value, str) else None
    return f"; did you mean {ours!r}? ({value!r} is Compose's name for it)" if ours in list(allowed) else ""
