"""``reconcile snapshots list|restore|delete``: a stack's volume snapshots, by hand.

``list`` shows what the record and the storage drivers hold (a daemon's with
``--server``); ``restore`` puts a volume back as a snapshot found it, stopping
and starting again the stack's own containers that mount it; ``delete``
removes snapshots (driver, then record). The stack is named, or its spec given
with ``-f``; then the words after the command name the volume (its key in the
spec, or its engine name) and the snapshots. The work is
``reconciler.stacksnapshots``'s, the rendering ``reconciler.render_snapshots``'s.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ReconcilerError, SpecError
from ..render_snapshots import deleted_text, restored_text, snapshots_data, snapshots_text
from .output import out

__all__ = ["cmd_snapshots"]


def cmd_snapshots(args: argparse.Namespace) -> int:
    """``snapshots list|restore|delete``."""
    words = [w for w in (args.stack_name, getattr(args, "volume", None), *getattr(args, "snapshot_ids", ())) if w]
    if getattr(args, "server", None):
        return _remote_list(args, words)
    from ..state import StateStore

    with StateStore.open(Path(args.state_dir) if args.state_dir else None) as store:
        snaps, words = _open(args, words, store)
        return {"list": _list, "restore": _restore, "delete": _delete}[args.snapshots_command](args, snaps, words)


def _open(args: argparse.Namespace, words: list[str], store):
    """The stack's ``StackSnapshots`` and the words left after its name (none is taken when a spec names it)."""
    from ..names import require_stack_name
    from ..reconcile import Reconciler
    from ..stacksnapshots import open_snapshots
    from .local import desired_of

    reconciler = Reconciler(engine_url=args.engine, plugin_modules=args.plugin, strict_plugins=args.strict_plugins,
                            engine_timeout=args.engine_timeout, state=store, progress=_progress)
    if args.files or args.stack:
        desired = desired_of(args, reconciler)
        keys = {key: spec.name for key, spec in desired.volumes.items() if not getattr(spec, "external", False)}
        return open_snapshots(reconciler, desired.stack, runtime=desired.runtime, keys=keys), words
    if not words:
        raise SpecError(f"name the stack (reconcile snapshots {args.snapshots_command} STACK ...) or give its spec "
                        "with -f")
    return open_snapshots(reconciler, require_stack_name(words[0])), words[1:]


def _progress(name: str, line: str) -> None:
    """A restore's lines as they come (the driver's progress, containers stopped and started, what came back)."""
    out(f"  | {name}: {line}")


def _list(args: argparse.Namespace, snaps, words: list[str]) -> int:
    if len(words) > 1:
        raise SpecError(f"snapshots list takes at most one volume, not {' '.join(words)}")
    volume = snaps.name_of(words[0]) if words else None
    rows = snaps.snapshots(volume)
    if volume is not None and not rows and volume not in snaps.owned():
        raise ReconcilerError(f"stack {snaps.stack} has no volume {words[0]} (its volumes: "
                              f"{', '.join(sorted(snaps.owned())) or 'none'})")
    data = snapshots_data(rows)
    out(json.dumps(data, indent=2) if args.output == "json" else snapshots_text(data, stack=snaps.stack))
    return 0


def _restore(args: argparse.Namespace, snaps, words: list[str]) -> int:
    if not words or len(words) > 2:
        raise SpecError("snapshots restore takes a volume and at most one snapshot id: "
                        "reconcile snapshots restore STACK VOLUME [SNAPSHOT_ID]")
    volume = snaps.volume(words[0])
    row = snaps.chosen(volume, words[1:])[0]
    if not _confirmed(args, snaps.stack, volume, row):
        out("nothing was restored")
        return 1
    done = snaps.restore([row], lock_timeout=args.lock_timeout)
    for restored in done.restored:
        out(restored_text(snaps.stack, restored, stopped=done.stopped, started=done.started))
    return 0


def _confirmed(args: argparse.Namespace, stack: str, volume: str, row) -> bool:
    """``--yes``, or a person at a terminal answering yes: a restore discards what was written since."""
    if args.yes:
        return True
    what = f"volume {volume} of stack {stack} from snapshot {row.snapshot.id}"
    if not sys.stdin.isatty():
        raise ReconcilerError(f"restoring {what} discards what was written to it since: give --yes to confirm "
                              "(no terminal to ask)")
    answer = input(f"Restore {what}? What was written to it since is discarded. [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _delete(args: argparse.Namespace, snaps, words: list[str]) -> int:
    if len(words) < 2:
        raise SpecError("snapshots delete takes a volume and the snapshot ids to delete: "
                        "reconcile snapshots delete STACK VOLUME SNAPSHOT_ID...")
    volume = snaps.name_of(words[0])
    if volume not in snaps.owned() and not snaps.snapshots(volume):
        raise ReconcilerError(f"stack {snaps.stack} has no volume {words[0]} with snapshots (its volumes: "
                              f"{', '.join(sorted(snaps.owned())) or 'none'})")
    out(deleted_text(snaps.stack, volume, snaps.delete(volume, words[1:])))
    return 0


def _remote_list(args: argparse.Namespace, words: list[str]) -> int:
    """``snapshots list --server URL``: each daemon's answer, a table per daemon (or one JSON document)."""
    from ..client import DaemonClient, token_from
    from ..redact import redact

    if args.snapshots_command != "list":
        raise SpecError(f"snapshots {args.snapshots_command} runs here, on the engine: --server is for list")
    stack = args.stack or (words[0] if words else "")
    if not stack:
        raise SpecError("with --server, name the stack: reconcile snapshots list STACK [VOLUME] --server URL")
    volume = words[1] if not args.stack and len(words) > 1 else (words[0] if args.stack and words else None)
    token, code, results = token_from(args.token_file), 0, []
    for url in args.server:
        try:
            rows = DaemonClient(url, token, cacert=args.cacert).snapshots(stack)
            results.append((url, [r for r in rows if volume is None or r["volume"] == volume], None))
        except ReconcilerError as exc:
            results.append((url, None, str(exc)))
            code = 1
    if args.output == "json":
        out(json.dumps(results[0][1] if len(results) == 1 and not code else
                       [{"server": url, "snapshots": rows, "error": error} for url, rows, error in results], indent=2))
        return code
    for url, rows, error in results:
        if error is not None:
            print(f"error: {redact(error)}", file=sys.stderr, flush=True)
        else:
            out((f"{url}:\n" if len(results) > 1 else "") + snapshots_text(rows, stack=stack))
    return code
