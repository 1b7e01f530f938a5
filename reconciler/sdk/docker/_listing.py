"""What a driver's observe lists: the stack's objects by a filtered call, or out of one list shared by every stack.

Why a module of its own: with a shared engine (the daemon), a pass of each
stack listing each kind with its own label filter made 4,000 list calls for
1,000 stacks resyncing. A driver there lists its whole kind once per moment
(``reconciler.sdk.fresh_read``: never an answer older than its pass), and
every pass of that moment picks its objects out of the ``Listing``, indexed
once per listing by owning stack and by name, so a pass costs O(its
objects), not O(the engine's). Without one (the CLI), the filtered calls are
made exactly as before: one per kind, one more only for wanted names that the
stack does not own yet.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

from ...drivers import DriverContext, fresh_read, owned_plus_wanted
from ...labels import KIND, STACK

__all__ = ["Listing", "listed"]


class Listing:
    """One list call's answer for a whole kind, indexed by owning stack and by name."""

    def __init__(self, objects: Iterable[dict], kind: str, name_of: Callable[[dict], str]) -> None:
        self.by_name: dict[str, dict] = {}
        self._owned: dict[str, list[dict]] = defaultdict(list)
        for obj in objects:
            self.by_name.setdefault(name_of(obj), obj)
            labels = obj.get("Labels") or {}
            if labels.get(KIND) == kind and STACK in labels:  # what owner_selectors(stack, kind) selects
                self._owned[labels[STACK]].append(obj)

    def owned(self, stack: str) -> list[dict]:
        """The objects whose labels claim ``stack`` for this kind, as its filtered list call would answer."""
        return list(self._owned.get(stack, ()))

    def named(self, names: Iterable[str]) -> list[dict]:
        """The objects under ``names`` (exactly those names)."""
        return [self.by_name[name] for name in names if name in self.by_name]


def listed(context: DriverContext, stack: str, kind: str, wanted: Iterable[str], *,
           owned: Callable[[], list[dict]], everything: Callable[[], list[dict]],
           lookup: Callable[[list[str]], Iterable[dict]], name_of: Callable[[dict], str]) -> dict[str, dict]:
    """The engine objects of ``kind`` that ``stack`` owns, plus any under a ``wanted`` name, by name.

    An ordinary pass (no ``context.engine_shared``, or no ``fresh_after``):
    ``owned()`` (the stack's filtered list) and ``lookup(names)`` for wanted
    names it does not own, as ``owned_plus_wanted`` says. A pass of a burst
    (a resync sweep of a shared engine): ``everything()`` (the unfiltered
    list) once per moment for every stack, through ``fresh_read``, and both
    answers picked out of it.
    """
    if context.engine_shared is None or context.fresh_after is None:  # not a pass of a burst
        return owned_plus_wanted(owned(), wanted, lookup, name_of)
    kind = str(getattr(kind, "value", kind))  # a model.Kind or its label value
    listing = fresh_read(context, f"reconciler.sdk.docker.list.{kind}",
                          lambda: Listing(everything(), kind, name_of))
    return owned_plus_wanted(listing.owned(stack), wanted, listing.named, name_of)

