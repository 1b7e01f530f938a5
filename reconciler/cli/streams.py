"""How ``reconcile logs`` and ``reconcile events`` print: one line per log line or event, as they come.

Why it exists apart from ``views``: these commands stream instead of showing
one answer, the same way whether the lines come from the engine (``local``)
or from a daemon's API (``remote``). Log lines carry their container's name,
padded and coloured per container from a rotating palette as ``docker
compose logs`` does; no colour when stdout is no terminal, ``NO_COLOR`` is
set or ``--no-color`` is given. Ctrl-C ends a follow cleanly (exit 0).
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable, Sequence, TextIO

from .output import out

__all__ = ["LogPrefixes", "cmd_events", "cmd_logs", "event_text", "show_events", "show_logs", "use_colour"]

#: Compose's rotating palette: cyan, yellow, green, magenta, blue, then their bright variants.
PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
RESET = "\x1b[0m"


def use_colour(no_color: bool, stream: TextIO | None = None, environ: dict[str, str] | None = None) -> bool:
    """Whether to colour: not asked not to (flag or ``NO_COLOR``, any value) and writing to a terminal."""
    stream = sys.stdout if stream is None else stream
    environ = os.environ if environ is None else environ
    if no_color or "NO_COLOR" in environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class LogPrefixes:
    """The prefix of each container's lines: its name padded to the longest, then ``|``, coloured per container."""

    def __init__(self, names: Sequence[str], *, colour: bool, timestamps: bool = False) -> None:
        self.width = max((len(name) for name in names), default=0)
        self.colour = colour
        self.timestamps = timestamps
        self._colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}

    def line(self, container: str, when: float, text: str) -> str:
        """One output line: ``shop-web-1  | GET / 200`` (with ``--timestamps``, the line's UTC time first)."""
        if container not in self._colours:  # a container that appeared while following
            self._colours[container] = PALETTE[len(self._colours) % len(PALETTE)]
            self.width = max(self.width, len(container))
        prefix = f"{container:<{self.width}}  |"
        if self.colour:
            prefix = f"\x1b[{self._colours[container]}m{prefix}{RESET}"
        stamp = datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return f"{prefix} {stamp} {text}" if self.timestamps else f"{prefix} {text}"


def show_logs(args: argparse.Namespace, names: Sequence[str],
              lines: Callable[[threading.Event], Iterable[Any]]) -> int:
    """Print ``lines(stop)`` (``logs.LogLine``s) prefixed per container; Ctrl-C ends a follow with 0."""
    prefixes = LogPrefixes(names, colour=use_colour(args.no_color), timestamps=args.timestamps)
    return _drain(lines, lambda line: out(prefixes.line(line.container, line.time, line.line)))


def event_text(event: Any) -> str:
    """One event as a line: ``10:02:03  engine   container shop-web-1 die (exit 137)`` (local time)."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.time))
    if event.source == "engine":
        text = " ".join(part for part in (event.kind, event.name, event.action) if part)
        text += f" ({event.detail})" if event.detail else ""
    else:
        text = f"{event.kind} {event.action}: {event.detail}"
    return f"{clock}  {event.source:<8} {text}"


def show_events(args: argparse.Namespace, events: Callable[[threading.Event], Iterable[Any]]) -> int:
    """Print ``events(stop)`` (``logs.StackEvent``s) one per line, as text or JSON; Ctrl-C ends with 0."""
    if args.output == "json":
        return _drain(events, lambda event: out(json.dumps(event.data(), sort_keys=True)))
    return _drain(events, lambda event: out(event_text(event)))


def _drain(source: Callable[[threading.Event], Iterable[Any]], show: Callable[[Any], None]) -> int:
    stop = threading.Event()
    try:
        for item in source(stop):
            show(item)
    except KeyboardInterrupt:  # the usual end of a follow, not an error
        pass
    finally:
        stop.set()
    return 0


# -- the commands ------------------------------------------------------------------------

def cmd_logs(args: argparse.Namespace) -> int:
    """``reconcile logs``: from the engine (the stack by its spec or its name), or a daemon's API (``--server``)."""
    from ..logs import parse_since

    since = parse_since(args.since) if args.since else None
    if args.server:
        stack, containers = _named(args)
        client = _client(args)
        return show_logs(args, containers, lambda stop: client.logs(
            stack, containers, follow=args.follow, since=since, tail=args.tail))
    from ..logs import read_logs, stack_containers

    stack, containers, runtime, _ = _engine_side(args)
    names = stack_containers(runtime, stack, containers)
    return show_logs(args, names, lambda stop: read_logs(runtime, names, follow=args.follow, since=since,
                                                         tail=args.tail, stop=stop))


def cmd_events(args: argparse.Namespace) -> int:
    """``reconcile events``: the engine's events about the stack's objects and its passes, in time order."""
    from ..logs import engine_events, merged_events, parse_since, sync_event

    since = parse_since(args.since) if args.since else None
    if args.server:
        stack, _ = _named(args)
        client = _client(args)
        return show_events(args, lambda stop: client.events(stack, follow=args.follow, since=since))
    from pathlib import Path

    from ..state import StateStore

    stack, _, runtime, names = _engine_side(args)
    store = StateStore.open(Path(args.state_dir) if args.state_dir else None)

    def engine(stop: threading.Event):
        return engine_events(runtime, stack, names=names, since=since, follow=args.follow, stop=stop)

    def passes(after: float | None):
        found = (sync_event(sync) for sync in store.syncs(stack=stack, limit=1000))
        return [event for event in found if after is None or event.time > after]

    with store:
        return show_events(args, lambda stop: merged_events(engine, passes, since=since, follow=args.follow,
                                                             stop=stop))


def _named(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(stack, containers) from the words after the command, for a daemon (which knows the stack by name)."""
    from ..errors import SpecError

    stack = args.stack or args.stack_name
    containers = list(getattr(args, "containers", ()))
    if args.stack and args.stack_name:
        containers.insert(0, args.stack_name)
    if not stack:
        raise SpecError("with --server, name the stack: reconcile logs|events STACK")
    return stack, containers


def _client(args: argparse.Namespace):
    from ..client import DaemonClient, token_from

    if len(args.server) != 1:
        from ..errors import SpecError

        raise SpecError("logs and events follow one daemon: give --server once")
    return DaemonClient(args.server[0], token_from(args.token_file), cacert=args.cacert)


def _engine_side(args: argparse.Namespace):
    """(stack, containers asked for, runtime driver, names of the stack's objects) on the engine.

    The stack is the spec's (``-f``, or the default files) unless a STACK is
    named and no spec is given: then its objects are found by their labels.
    With a spec, every word after the command names a container.
    """
    from ..model import Kind
    from ..names import require_stack_name
    from .local import desired_of, reconciler_of

    containers = list(getattr(args, "containers", ()))
    reconciler = reconciler_of(args)
    if args.stack_name and not args.files and not args.stack:
        stack, desired = require_stack_name(args.stack_name), None
    else:
        if args.stack_name:
            containers.insert(0, args.stack_name)
        desired = desired_of(args, reconciler)
        stack = desired.stack
    drivers = reconciler.drivers(stack)
    if desired is not None:
        runtime = drivers.get(Kind.CONTAINER, desired.runtime)
        names = {spec.name for kind in (Kind.NETWORK, Kind.VOLUME) for spec in desired.section(kind).values()}
    else:
        from ..defaults import DEFAULT_DRIVERS

        runtime = drivers.get(Kind.CONTAINER, DEFAULT_DRIVERS[Kind.CONTAINER.section])
        names = {obj.name for kind in (Kind.NETWORK, Kind.VOLUME)
                 for obj in drivers.get(kind, DEFAULT_DRIVERS[kind.section]).observe(stack, {})}
    return stack, containers, runtime, names
