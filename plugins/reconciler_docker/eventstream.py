"""The engine's event stream as the loop and the daemon follow it: names for one stack, or whole events for all.

Why a module of its own: reading the stream is not reconciling
(``containers.py``), and the daemon's one stream per engine needs each raw
event turned into an ``EngineEvent`` it can route without asking the engine
again: the stack a container's labels claim, the container a network connect
or a volume mount concerns. One stream of container, network and volume
events serves every kind (the runtime driver follows it for the plugin's
network and storage drivers too); events no plan reads (a healthcheck's exec)
are dropped here.
"""
from __future__ import annotations

import threading
from typing import Collection, Iterator

from reconciler.sdk import EngineEvent, Kind
from reconciler.sdk.docker import follow_events
from reconciler.sdk.labels import STACK, is_owned

__all__ = ["ContainerEvents", "engine_event", "event_name"]

# Events that change nothing the plan looks at (healthchecks run as execs).
_QUIET_EVENTS = ("exec_", "health_status", "attach", "resize", "top", "archive-path", "extract-to-dir", "export",
                 "commit", "copy")
# The engine's event types are our kinds' names.
_FOLLOWED = (Kind.CONTAINER, Kind.NETWORK, Kind.VOLUME)
_TYPES = [kind.value for kind in _FOLLOWED]


def event_name(event: dict, stack: str, names: Collection[str]) -> str:
    """The name of the stack's object an engine event is about, or "" when it is not one of ours."""
    found = engine_event(event)
    if found is None:
        return ""
    if found.kind is Kind.CONTAINER and found.stack == stack:
        return found.name
    return found.name if found.name in names else ""


def engine_event(event: dict) -> EngineEvent | None:
    """One raw engine event as an ``EngineEvent``; None for a quiet one or a type we do not follow.

    Container events carry the container's labels among their attributes (the
    stack they claim for a container); network and volume events carry none,
    but a connect or a mount names its container's id. A volume has no engine
    id: its event's id is "".
    """
    action = event.get("Action") or event.get("status") or ""
    if event.get("Type") not in _TYPES or not action or action.startswith(_QUIET_EVENTS):
        return None
    kind = Kind(event["Type"])
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    claimed = attributes.get(STACK, "")
    return EngineEvent(
        kind=kind,
        name=attributes.get("name") or actor.get("ID", ""),
        action=action,
        stack=claimed if claimed and is_owned(attributes, claimed, kind=kind) else "",
        id="" if kind is Kind.VOLUME else actor.get("ID", ""),
        old_name=(attributes.get("oldName") or "").lstrip("/"),
        container=attributes.get("container", "") if kind is not Kind.CONTAINER else "",
    )


class ContainerEvents:
    """The runtime driver's event streams (mixed into ``DockerRuntimeDriver``, which gives ``self.api``)."""

    def events(self, stack: str, names: Collection[str], stop: threading.Event) -> Iterator[str]:
        """The engine's event stream, for containers, networks and volumes of ``stack``.

        Networks and volumes carry no labels in their events, so they are matched by name.
        """
        return follow_events(self.api, _TYPES, stop, lambda event: event_name(event, stack, names))

    def engine_events(self, stop: threading.Event) -> Iterator[EngineEvent]:
        """Every container, network and volume event of the engine (``ObjectDriver.engine_events``): one stream."""
        return follow_events(self.api, _TYPES, stop, engine_event)
