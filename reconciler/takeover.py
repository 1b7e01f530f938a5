"""The engine side of adoption: finding a Compose project's objects, writing the takeover, finding what it took.

``reconciler.adoption`` decides, without I/O, what becomes of each object of
a running Compose project; this module does what needs the drivers around
it, for ``Reconciler`` (``apply --adopt-compose``, ``reconcile adopt``):

- ``plan_takeover``: list the project's objects (``ObjectDriver.find_labelled``,
  one call per kind and driver) and ask each driver whether an object already
  is what the spec says (``ObjectDriver.differences``);
- ``write_takeover``: rename the containers Compose v1 named otherwise, then
  record every object taken with its claim;
- ``with_claimed``: an adopted object keeps Compose's labels, so a pass whose
  spec no longer names it (``destroy``, a service removed from the file) does
  not list it by name; it is looked up by the Compose labels its claim
  requires, so that it can be pruned. A pass whose spec names every claimed
  object costs nothing here.
"""
from __future__ import annotations

from typing import Any

from .adoption import KINDS, Adoption, compose_selectors, plan_adoption
from .drivers import Drivers
from .errors import PlanError
from .model import DesiredState, Kind, LiveObject, LiveState, Record
from .retry import READ_RETRY, call_with_retries

__all__ = ["plan_takeover", "with_claimed", "write_takeover"]


def plan_takeover(desired: DesiredState, drivers: Drivers, live: LiveState, record: Record) -> Adoption:
    """What taking the running Compose project of ``desired.stack``'s name over does; a clash is a ``PlanError``."""
    project = desired.stack
    found = {kind: _labelled(drivers, kind, compose_selectors(project)) for kind in KINDS}
    adoption = plan_adoption(desired, project, found, live, record,
                             lambda spec, obj: drivers.get(obj.kind, spec.driver).differences(spec, obj))
    if adoption.clashes:
        raise PlanError(f"cannot take over Compose project {project}, nothing was changed:\n"
                        + "\n".join(f"  {line}" for line in adoption.clashes))
    return adoption


def write_takeover(adoption: Adoption, drivers: Drivers, book: Any) -> None:
    """Rename the containers Compose v1 named otherwise, then record every object taken (``book``: a ``StackBook``).

    Renames first: a container renamed but not yet recorded is found again by
    the next ``adopt`` (by Compose's labels, under its new name); one recorded
    under a name it does not have yet would be missed.
    """
    for taken in adoption.taken:
        if taken.takeover.renamed_from:
            runtime = drivers.get(Kind.CONTAINER, taken.driver)
            call_with_retries(lambda: runtime.rename(taken.found.id, taken.takeover.name), READ_RETRY)
    book.taken_over((taken.adopted, taken.driver, taken.claim) for taken in adoption.taken)


def with_claimed(live: LiveState, record: Record, drivers: Drivers) -> LiveState:
    """``live`` plus the objects the record claims that it lacks, found by the foreign labels their claims require."""
    wanted: dict[Kind, dict[tuple[tuple[str, str], ...], list[tuple[str, str]]]] = {}
    for (kind, name, object_id), claim in record.claims.items():
        listed = live.of(kind).get(name)
        if listed is None or (kind is Kind.CONTAINER and listed.id != object_id):
            selectors = tuple(sorted(claim.requires.items()))
            wanted.setdefault(kind, {}).setdefault(selectors, []).append((name, object_id))
    if not wanted:
        return live
    maps = {kind: dict(live.of(kind)) for kind in Kind}
    for kind, by_selectors in wanted.items():
        for selectors, objects in by_selectors.items():
            for obj in _labelled(drivers, kind, [f"{key}={value}" for key, value in selectors]):
                if any(_is(obj, name, object_id) for name, object_id in objects):
                    maps[kind].setdefault(obj.name, obj)
    return LiveState.by_kind(maps)


def _is(obj: LiveObject, name: str, object_id: str) -> bool:
    """Whether ``obj`` is the recorded object (a container by its engine id, which a rename keeps)."""
    if obj.kind is Kind.CONTAINER:
        return obj.id == object_id
    return (obj.name, obj.id) == (name, object_id)


def _labelled(drivers: Drivers, kind: Kind, selectors: list[str]) -> list[LiveObject]:
    """The objects of ``kind`` carrying every one of ``selectors``, as every driver of the kind lists them, each once."""
    seen: dict[str, LiveObject] = {}
    for driver in drivers.all(kind):
        for obj in call_with_retries(lambda: driver.find_labelled(selectors), READ_RETRY):
            seen.setdefault(obj.id or obj.name, obj)
    return list(seen.values())
