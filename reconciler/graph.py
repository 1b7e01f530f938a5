"""Ordering a plan's changes into steps that can run in parallel safely. Pure.

Each change becomes one or two steps: ``down`` removes the old object (delete,
or the first half of a replace) and ``up`` creates or starts the new one.
Splitting replaces this way is what lets a network be recreated: the old
containers come down, then the network goes down and up, then the new
containers come up, with no cycle in the graph.

Edges:
- a change's ``up`` follows its own ``down``;
- a change's ``up`` follows the ``up`` of every object it ``requires``;
- the ``down`` of an object follows the ``down`` of every change that ``holds`` it
  (containers attached to a network, dependents of a container).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

from .errors import PlanError
from .plan import Action, Change

__all__ = ["Phase", "Step", "build_steps", "dependents_of"]


class Phase(enum.StrEnum):
    """The half of a change a step carries out."""

    DOWN = "down"  # remove the old object (a delete, or the first half of a replace)
    UP = "up"  # create or start the new object


DOWN, UP = Phase.DOWN, Phase.UP  # the names before 0.2


@dataclass(frozen=True)
class Step:
    """One phase of one change, and the step ids it must wait for."""

    change: Change
    phase: Phase
    after: frozenset[str]

    @property
    def id(self) -> str:
        return f"{self.change.id}#{self.phase.value}"


def _phases(change: Change) -> tuple[Phase, ...]:
    if change.action is Action.DELETE:
        return (DOWN,)
    if change.action is Action.REPLACE:
        return (DOWN, UP)
    return (UP,)


def build_steps(changes: Iterable[Change]) -> list[Step]:
    """Steps in a stable order, each naming the step ids it must wait for."""
    changes = list(changes)
    has = {(c.id, phase) for c in changes for phase in _phases(c)}
    held_by: dict[str, list[str]] = {}
    for change in changes:
        if (change.id, DOWN) in has:
            for target in change.holds:
                held_by.setdefault(target, []).append(change.id)
    steps = []
    for change in changes:
        for phase in _phases(change):
            after: set[str] = set()
            if phase == UP:
                if (change.id, DOWN) in has:
                    after.add(f"{change.id}#{Phase.DOWN.value}")
                after.update(f"{dep}#{Phase.UP.value}" for dep in change.requires if (dep, UP) in has and dep != change.id)
            else:
                after.update(f"{holder}#{Phase.DOWN.value}" for holder in held_by.get(change.id, ()) if holder != change.id)
            steps.append(Step(change, phase, frozenset(after)))
    _check_acyclic(steps)
    return steps


def _check_acyclic(steps: list[Step]) -> None:
    remaining = {s.id: set(s.after) for s in steps}
    while remaining:
        ready = [sid for sid, after in remaining.items() if not after]
        if not ready:
            raise PlanError(f"the plan's changes wait for each other in a cycle: {', '.join(sorted(remaining))}")
        for sid in ready:
            del remaining[sid]
        for after in remaining.values():
            after.difference_update(ready)


def dependents_of(steps: list[Step], failed: str) -> set[str]:
    """Every step id that transitively waits for ``failed``."""
    out: set[str] = set()
    frontier = {failed}
    while frontier:
        frontier = {s.id for s in steps if s.after & frontier and s.id not in out}
        out |= frontier
    return out
