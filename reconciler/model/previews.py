"""Preview stacks as values: the rules a git source gives its branches, and what the record keeps of each preview.

Why a module of its own: a preview crosses the layers like a snapshot does
(the daemon's configuration holds the rules, the daemon makes and removes the
previews, the record keeps them, the CLI, the API, the page and the
notifications show them). They are plain frozen values: no I/O.
"""
from __future__ import annotations

from dataclasses import field
from typing import Mapping

from ..values import value

__all__ = ["PREVIEW_STATES", "Preview", "PreviewRules"]

#: What a preview can be: ``starting`` (made, its first pass not ended), ``up`` (its last pass applied),
#: ``failed`` (its last pass did not), ``waiting`` (its branch matches, but the source has ``max`` previews),
#: ``expired`` (idle past ``ttl``: removed, back at the branch's next push).
PREVIEW_STATES = ("starting", "up", "failed", "waiting", "expired")


@value
class PreviewRules:
    """A git source's ``previews:``: which branches get a preview of each of its stacks, and how."""

    #: Branch name patterns (``fnmatch``: ``feature/*``); the source's own ref never gets one.
    branches: tuple[str, ...]
    #: Seconds a preview may stay without a push to its branch before it is removed; None: no limit.
    ttl: float | None = None
    #: Previews of the source at once (each of its stacks counts once per branch).
    max: int = 10
    #: ``remap``: each published host port becomes a free one from ``port_range``; ``drop``: none is published.
    ports: str = "remap"
    #: The host ports a preview may be given (both ends included).
    port_range: tuple[int, int] = (30000, 32767)
    #: A cap on each container of a preview (memory in bytes, CPUs in billionths); None: the spec's own only.
    memory: int | None = None
    nano_cpus: int | None = None
    #: The host name in a preview's URLs; None: the port's address when it names one, else the engine's host.
    host: str | None = None


@value
class Preview:
    """One preview: one stack of a git source, at one branch, as the record keeps it."""

    source: str
    branch: str
    #: The stack's path in the source (a source with two stacks gives a branch two previews).
    path: str
    #: The preview's stack name (``{stack}-{branch}`` made safe); "" until its spec has loaded.
    stack: str = ""
    #: The stack it previews (the name the spec gives it on the source's own ref); "" until loaded.
    base: str = ""
    #: The branch's head it was last fetched at.
    revision: str = ""
    #: When it was made, and when its branch last moved (``ttl`` counts from there): epoch seconds.
    created: float = 0.0
    pushed: float = 0.0
    #: One of ``PREVIEW_STATES``.
    state: str = "starting"
    #: Host ports given to its published ports: ``{container key}-{replica}:{port}/{protocol}`` → host port.
    ports: Mapping[str, int] = field(default_factory=dict, hash=False)
    #: Where it answers (``http://host:port`` per published TCP port).
    urls: tuple[str, ...] = ()
    #: Why it is ``failed`` or ``waiting``; "" otherwise.
    reason: str = ""
