"""The engines a stack runs on: a spec's ``targets:`` and ``placement:``.

Read by ``reconciler.fleet`` to run one reconcile per chosen engine, and by
engine connections (``TLSFiles``). No object's config hash reads them: moving
a stack between engines changes where it runs, not what it is.
"""
from __future__ import annotations

from dataclasses import field
from typing import Mapping

from ..values import value

__all__ = ["Fleet", "Placement", "TLSFiles", "Target"]


@value
class TLSFiles:
    """Client certificate files for a ``tcp://`` engine that verifies its clients (absolute paths)."""

    ca: str
    cert: str
    key: str


@value
class Target:
    """One engine of a fleet, as a spec's ``targets:`` names it."""

    #: The target's key in ``targets:``: how reports, status and history name it.
    name: str
    #: unix://, tcp:// or ssh:// URL of its engine.
    engine: str
    tls: TLSFiles | None = None
    #: Label -> value, matched by ``Placement.labels``.
    labels: Mapping[str, str] = field(default_factory=dict)


@value
class Placement:
    """Which of the fleet's targets run a stack (``placement:``); the default is all of them."""

    #: Label -> value a target must carry to be chosen.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: How many of the matching targets (None: all).
    count: int | None = None
    #: A label key whose values the chosen targets take in turn.
    spread: str | None = None


@value
class Fleet:
    """The engines a stack runs on: ``targets:`` and ``placement:``. No object's hash reads it."""

    targets: tuple[Target, ...] = ()
    placement: Placement = field(default_factory=Placement)
