"""Ordering a plan's changes into steps that can run in parallel safely. Pure.

Each change becomes one to three steps: ``down`` removes the old object (delete,
or the first half of a replace), ``wait`` waits for the conditions of its
dependencies (a container that ``depends_on`` another being started, healthy
or completed) and ``up`` creates or starts the new one. Splitting replaces
this way is what lets a network be recreated: the old containers come down,
then the network goes down and up, then the new containers come up, with no
cycle in the graph.

Edges:
- a change's ``wait`` follows the ``up`` of every object it ``requires`` (the ``down`` of
  one that is only deleted: a container an interrupted replacement left aside);
- a change's ``up`` follows its own ``down`` and ``wait``, and the ``up`` of
  every object it ``requires``;
- the ``down`` of an object follows the ``down`` of every change that ``holds`` it
  (containers attached to a network, dependents of a container), except a
  dependent that rolls: its old container keeps running until this object's
  successor is up (its roll requires it), so waiting for it would be a cycle.

Each step also says which *lane* runs it (``Step.lane``): most steps make the
engine work, but stopping a container and waiting for a condition mostly sit
on a clock (a stop grace period, a healthcheck interval). Those run in the
wait lane, so that thirty containers ignoring SIGTERM cost one grace period,
not thirty divided by the number of workers.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

from .errors import PlanError
from .model import Kind
from .plan import Action, Change

__all__ = ["Lane", "Phase", "Step", "build_steps", "dependents_of"]


class Phase(enum.StrEnum):
    """The part of a change a step carries out."""

    DOWN = "down"  # remove the old object (a delete, or the first half of a replace)
    WAIT = "wait"  # wait for the conditions of its dependencies (started, healthy, completed)
    UP = "up"  # create or start the new object
    ROLL = "roll"  # replace a container in place: the old one goes only once the new one runs


class Lane(enum.StrEnum):
    """Which of the executor's bounded pools runs a step.

    ``WORK`` steps load the engine (pull, build, create, start, network and
    volume changes): their bound (``ApplyOptions.workers``) is what keeps the
    engine from thrashing. ``WAIT`` steps spend their time waiting on the
    engine's clock, not its CPU (a container's stop grace period, a
    dependency's health): they get a much larger bound of their own
    (``ApplyOptions.waiters``) and never hold a worker.
    """

    WORK = "work"
    WAIT = "wait"


@dataclass(frozen=True)
class Step:
    """One phase of one change; ``after`` holds the ids of the steps it follows."""

    change: Change
    phase: Phase
    after: frozenset[str]

    @property
    def id(self) -> str:
        return f"{self.change.id}#{self.phase.value}"

    @property
    def lane(self) -> Lane:
        # Removing a container stops it first, which blocks for its grace period
        # when the process ignores SIGTERM; a removal itself is cheap.
        # A roll mostly waits too (for the new container to be ready, the old one to stop);
        # its engine work takes a worker slot inside the step (see apply.py).
        if self.phase in (Phase.WAIT, Phase.ROLL) or (self.phase == Phase.DOWN and self.change.kind is Kind.CONTAINER):
            return Lane.WAIT
        return Lane.WORK


def _phases(change: Change) -> tuple[Phase, ...]:
    if change.action is Action.DELETE:
        return (Phase.DOWN,)
    up = (Phase.WAIT, Phase.UP) if change.waits else (Phase.UP,)
    if change.action is Action.REPLACE:
        return (*up[:-1], Phase.ROLL) if change.rollout is not None else (Phase.DOWN, *up)
    return up


def build_steps(changes: Iterable[Change]) -> list[Step]:
    """Steps in a stable order, each naming the step ids it must wait for."""
    changes = list(changes)
    has = {(c.id, phase) for c in changes for phase in _phases(c)}

    def step_of(change_id: str, phase: Phase) -> str | None:
        """The step that carries out ``phase`` of a change (a roll stands for both its down and its up)."""
        if (change_id, phase) in has:
            return f"{change_id}#{phase.value}"
        if phase in (Phase.UP, Phase.DOWN) and (change_id, Phase.ROLL) in has:
            return f"{change_id}#{Phase.ROLL.value}"
        return None

    held_by: dict[str, list[str]] = {}
    for change in changes:
        if step_of(change.id, Phase.DOWN):
            for target in change.holds:
                held_by.setdefault(target, []).append(change.id)
    rolls_requiring = {c.id: set(c.requires) for c in changes if (c.id, Phase.ROLL) in has}

    def holder_first(phase: Phase, change_id: str, holder: str) -> bool:
        """Whether ``phase`` of ``change_id`` waits for ``holder`` (which holds it) to take its old object down."""
        if phase == Phase.ROLL:
            return (holder, Phase.DOWN) in has
        return phase == Phase.DOWN and change_id not in rolls_requiring.get(holder, ())

    steps = []
    for change in changes:
        for phase in _phases(change):
            after = {step_of(other, Phase.DOWN) for other in held_by.get(change.id, ())
                     if other != change.id and holder_first(phase, change.id, other)}
            if phase == Phase.DOWN and change.action is Action.REPLACE:
                # The old object goes only once the images its successor needs are there.
                after.update(step_of(dep, Phase.UP) for dep in change.requires if dep.startswith("image:"))
            if phase != Phase.DOWN:
                after.update(step_of(dep, Phase.UP) or step_of(dep, Phase.DOWN)
                             for dep in change.requires if dep != change.id)
            if phase in (Phase.UP, Phase.ROLL):
                after.update(step_of(change.id, own) for own in (Phase.DOWN, Phase.WAIT) if (change.id, own) in has)
            after.discard(None)
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
