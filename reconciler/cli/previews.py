"""``reconcile previews``: the preview stacks a daemon keeps for its git sources' branches.

The daemon keeps each preview in its record (branch, revision, state, URLs)
as it makes, updates and removes them; this command reads that record (a
daemon's ``state_dir`` with ``--state-dir``), or asks running daemons with
``--server`` (``GET /api/previews``). It never asks the engine or git:
what the record says is what the daemon last saw. The table and the JSON are
``reconciler.render_previews``'s, the same for both.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .output import out

__all__ = ["cmd_previews"]


def cmd_previews(args: argparse.Namespace) -> int:
    """``previews``: every preview (of ``--source`` only when given), as a table or JSON."""
    if args.server:
        return _remote(args)
    from ..render_previews import previews_data, previews_text
    from ..state import StateStore

    with StateStore.open(Path(args.state_dir) if args.state_dir else None) as store:
        items = previews_data(store.previews(args.source))
    out(json.dumps({"previews": items}, indent=2) if args.output == "json" else previews_text(items))
    return 0


def _remote(args: argparse.Namespace) -> int:
    """Each daemon's previews: one table with a HOST column (or one JSON list, an entry per daemon); 1 when a
    daemon did not answer (the others are shown)."""
    from ..client import DaemonClient, token_from
    from ..errors import ReconcilerError
    from ..render_previews import servers_previews_text

    token, code, results = token_from(args.token_file), 0, []
    for url in args.server:
        try:
            results.append((url, DaemonClient(url, token, cacert=args.cacert).previews(args.source)))
        except ReconcilerError as exc:
            results.append((url, str(exc)))
            code = 1
    if args.output == "json":
        out(json.dumps([{"server": url, "previews": None if isinstance(r, str) else r,
                         "error": r if isinstance(r, str) else None} for url, r in results], indent=2))
    else:
        out(servers_previews_text(results))
    return code
