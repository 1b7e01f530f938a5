"""The ``--server`` commands: ``status``, ``history``, ``suspend``, ``resume``, ``sync``, ``rollback`` and ``release``
asked of running daemons.

Each daemon is asked through its API (``reconciler.client``); one that does
not answer is named with its error, the others are shown, and the command
exits 1. Nothing here loads a spec, a plugin or an engine.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from ..errors import ReconcilerError, SpecError
from ..redact import redact
from .output import out

__all__ = ["cmd_history", "cmd_rollback", "cmd_status", "cmd_suspend", "cmd_sync"]


def _clients(args: argparse.Namespace) -> list:
    from ..client import DaemonClient, token_from

    token = token_from(args.token_file)
    return [DaemonClient(url, token, cacert=args.cacert) for url in args.server]


def _ask_each(args: argparse.Namespace, ask: Callable[[Any], Any]) -> tuple[list[tuple[str, Any]], int]:
    """(url, answer or error text) per server, and 1 when any server failed."""
    results, code = [], 0
    for client in _clients(args):
        try:
            results.append((client.url, ask(client)))
        except ReconcilerError as exc:
            results.append((client.url, str(exc)))
            code = 1
    return results, code


def _show_each(args: argparse.Namespace, results: list[tuple[str, Any]], key: str,
               text: Callable[[list[tuple[str, Any]]], str]) -> None:
    """Each server's answer (under ``key``) or error, as JSON or as ``text`` renders them."""
    import json

    if args.output == "json":
        out(json.dumps([{"server": url, key: None if isinstance(r, str) else r,
                         "error": r if isinstance(r, str) else None} for url, r in results], indent=2))
    else:
        out(text(results))


def cmd_status(args: argparse.Namespace) -> int:
    """Every stack each daemon runs, one line per host per stack."""
    from ..render import servers_status_text

    results, code = _ask_each(args, lambda c: c.stacks())
    _show_each(args, results, "stacks", servers_status_text)
    return code


def cmd_history(args: argparse.Namespace) -> int:
    """Each daemon's syncs of a stack (or of every stack), newest first."""
    from ..render import servers_history_text

    def ask(client) -> list:
        names = [args.stack] if args.stack else [s["name"] or s["id"] for s in client.stacks()]
        rows = [row for name in names for row in client.history(name, args.limit)]
        return sorted(rows, key=lambda row: row["started_at"], reverse=True)[:args.limit]

    results, code = _ask_each(args, ask)
    _show_each(args, results, "syncs", servers_history_text)
    return code


def cmd_suspend(args: argparse.Namespace) -> int:
    """``suspend`` or ``resume`` (``args.command``) a stack on each daemon."""
    return _post(args, args.command)


def cmd_sync(args: argparse.Namespace) -> int:
    """Have each daemon fetch the stack's source and apply it now."""
    if not args.server:
        raise SpecError("sync asks running daemons: give --server URL (repeatable); "
                        "to apply a spec here, use reconcile apply")
    return _post(args, "sync")


def cmd_rollback(args: argparse.Namespace) -> int:
    """Hold (``rollback``) or ``release`` a stack on each daemon, which applies it at once; each says what it did."""
    if args.command == "release":
        results, code = _ask_each(args, lambda c: c.release(args.stack))
    else:
        results, code = _ask_each(args, lambda c: c.rollback(args.stack, args.to, with_data=args.with_data))
    _print_each(results, lambda answer: answer["message"])
    return code


def _post(args: argparse.Namespace, verb: str) -> int:
    results, code = _ask_each(args, lambda c: c.post(args.stack, verb))
    done = {"sync": "asked to sync", "suspend": "suspended", "resume": "resumed"}[verb]
    _print_each(results, lambda answer: f"stack {args.stack} {done}")
    return code


def _print_each(results: list[tuple[str, Any]], text: Callable[[Any], str]) -> None:
    """Each server's answer as ``URL: text``, or its error on stderr."""
    for url, answer in results:
        if isinstance(answer, str):
            print(f"error: {redact(answer)}", file=sys.stderr, flush=True)
        else:
            out(f"{url}: {text(answer)}")
