"""Where every command's output goes: stdout, one block at a time, quietly once its reader has gone."""
from __future__ import annotations

import os
import sys
import threading

__all__ = ["EXIT_BROKEN_PIPE", "READER_GONE", "out"]

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
READER_GONE = threading.Event()  # set once stdout's reader has gone away (``reconcile plan | head``)


def out(text: str) -> None:
    """Print one block; once the reader has gone, keep going silently.

    An apply whose output nobody reads any more must still finish rather than
    stop half-way, so a broken pipe only silences stdout (the recipe in
    Python's ``signal`` docs: point it at devnull so no later flush fails).
    """
    if READER_GONE.is_set():
        return
    try:
        print(text, flush=True)
    except BrokenPipeError:
        READER_GONE.set()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
