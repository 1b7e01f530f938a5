"""``reconcile rollback STACK --to REV --with-data`` in the daemon: the held revision's data comes back before it runs.

A rollback holds the stack at REV (``StateStore.hold_at``); with data, the
hold also says ``pending``. The stack's next pass, right before it applies
REV (``StackLoop.before_apply``), restores each volume from the newest
snapshot taken when the stack left REV, with the stack's containers that mount
it stopped and left stopped, then marks the hold ``restored`` so no later pass
does it again; the apply then starts REV's containers on REV's data. A restore
that fails fails the pass (retried): REV is never applied onto data it does
not know. Only a held stack's pass reads anything here (one small read).
"""
from __future__ import annotations

import logging
from typing import Any

from ..model import DesiredState
from ..releasedata import data_restored
from ..state import HOLD_DATA_PENDING

__all__ = ["restore_held_data"]

log = logging.getLogger(__name__)


def restore_held_data(reconciler: Any, held: bool, desired: DesiredState) -> None:
    """Before a held stack's pass applies ``desired`` (its held revision): restore the data its hold asks for, once.

    ``held``: whether the worker loaded the held revision (not the source's head).
    """
    state = reconciler.state
    if not held or not desired.revision or state.hold_data(desired.stack) != HOLD_DATA_PENDING:
        return
    from ..stacksnapshots import restore_for_rollback

    done = restore_for_rollback(reconciler, desired.stack, desired.revision, runtime=desired.runtime)
    state.data_restored(desired.stack, desired.revision)
    stopped = f"; stopped for it: {', '.join(done.stopped)}" if done.stopped else ""
    for restored in done.restored:
        log.warning("stack %s, rolled back to %s with its data: %s%s", desired.stack, desired.revision[:12],
                    data_restored(restored), stopped)
