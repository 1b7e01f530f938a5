"""The ``reconcile`` command: parse arguments, run the command, turn expected failures into one line and exit 1.

``parser`` builds the command line; ``local`` runs the commands that work
here (on a spec, an engine or a fleet, a state directory); ``remote`` asks
running daemons (``--server``); ``images`` runs image automation by hand;
``snapshots`` lists, restores and deletes volume snapshots; ``previews`` lists
the preview stacks of a daemon's branches; ``streams`` prints
logs and events as they come, from either; ``views`` shows what a runner answered.
No reconcile logic lives here. Expected failures (``ReconcilerError``) become
one clear message and exit code 1; no traceback reaches the user for them.
A command imports only what it uses: ``reconcile validate`` never pays for
the Docker SDK, a ``--server`` command never loads a plugin.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import NoReturn, Sequence

from ..errors import ReconcilerError
from ..redact import RedactingFilter, redact
from .output import EXIT_BROKEN_PIPE, READER_GONE
from .parser import build_parser

__all__ = ["main", "run"]

#: The commands that ask running daemons when given --server (``sync`` always does).
REMOTE = ("status", "history", "suspend", "resume", "sync", "rollback", "release")
#: The commands that print lines as they come, from the engine or from a daemon (``--server``).
STREAMS = ("logs", "events")
#: Command → the function running it, in ``local`` (``remote``: REMOTE ones given --server; ``streams``: STREAMS).
COMMANDS = {"validate": "cmd_validate", "convert": "cmd_convert", "plan": "cmd_plan", "apply": "cmd_apply", "adopt": "cmd_adopt",
            "status": "cmd_status", "destroy": "cmd_destroy", "watch": "cmd_watch", "daemon": "cmd_daemon",
            "history": "cmd_history", "suspend": "cmd_suspend", "resume": "cmd_suspend",
            "rollback": "cmd_rollback", "release": "cmd_rollback", "sync": "cmd_sync",
            "plugins": "cmd_plugins", "schema": "cmd_schema", "logs": "cmd_logs", "events": "cmd_events",
            "images": "cmd_images", "snapshots": "cmd_snapshots", "previews": "cmd_previews"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``reconcile`` with ``argv`` (default: the process's); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    READER_GONE.clear()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # every record ends here, third-party loggers' too
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    try:
        code = _command(args)(args)
    except ReconcilerError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    # 141 is what a shell reports for a writer killed by SIGPIPE: the output was cut short.
    return EXIT_BROKEN_PIPE if READER_GONE.is_set() else code


def run() -> NoReturn:
    """The ``reconcile`` console script (and ``python -m reconciler``): ``main()``, then the process ends.

    Tearing the interpreter down, every module and object freed one by one,
    costs a short command about 20 ms (a tenth of a converged apply) and buys
    nothing once ``main`` has returned: the record, the lock and every file are
    closed by then, and the kernel frees the rest. So the exit handlers run
    (logging's flush among them) and the process ends without the teardown,
    unless a thread is still running that the interpreter would wait for (a
    daemon thread, such as a follow's reader blocked on the engine, is not
    one: it would only be stopped later, at the teardown).
    """
    code = main()
    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        sys.exit(code)  # a thread the interpreter would wait for: let it
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader left after the last block: nothing more to say
        pass
    os._exit(code)


def _command(args):
    """The function running ``args.command``, its module imported only now."""
    if args.command in STREAMS:  # the engine's or a daemon's lines, either way
        from . import streams as commands
    elif args.command == "images":
        from . import images as commands
    elif args.command == "snapshots":
        from . import snapshots as commands
    elif args.command == "previews":
        from . import previews as commands
    elif args.command in REMOTE and (args.command == "sync" or args.server):
        from . import remote as commands
    else:
        from . import local as commands
    return getattr(commands, COMMANDS[args.command])
