"""What the engine says changed: one event of the engine-wide stream, as a driver reports it.

Why a value of its own: one stream per engine serves every stack on it
(``reconciler.events.EventHub``), so an event must carry what the hub needs to
route it (the stack its labels claim, the container a network or volume event
is about) and what the scheduler needs to tell a pass's own echoes from drift
(its action and the object's id). Drivers build it in ``engine_events``; the
core never reads the backend's raw events.
"""
from __future__ import annotations

from ..values import value
from .kinds import Kind

__all__ = ["EngineEvent"]


@value
class EngineEvent:
    """One change on the backend, reduced to what routing and echo detection read."""

    #: The object's kind.
    kind: Kind
    #: Its engine name (after a rename: the new name).
    name: str
    #: The backend's verb: ``create``, ``start``, ``die``, ``destroy``, ``connect``, ``mount``, ``rename``...
    action: str
    #: The stack its labels claim for its own kind (``labels.is_owned``); "" when the event says nothing.
    stack: str = ""
    #: The object's engine id ("" when the backend gives none).
    id: str = ""
    #: A rename's former name.
    old_name: str = ""
    #: Network connect/disconnect, volume mount/unmount: the id of the container concerned.
    container: str = ""
