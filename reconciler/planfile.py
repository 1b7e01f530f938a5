"""Saved plans: ``plan --out plan.json`` then ``apply plan.json`` applies exactly what was shown.

A saved plan holds what the user reviewed (redacted, like every plan) and a
fingerprint of what apply would do: each change's action, the live object it
acts on (by id), the desired config hash it aims for and, for an image, the
content its registry driver saw at the source (in its reasons). ``apply`` recomputes
the plan from the same spec files against fresh live state and refuses, before
any write, unless the fingerprints match: if the spec, a secret, an env file or
the engine moved underneath, the user must look at a new plan.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from .errors import SpecError, StalePlanError
from .hashing import short_hash
from .model import DesiredState, Kind
from .plan import Plan
from .render import plan_data
from .values import value

__all__ = ["SavedPlan", "check_fresh", "plan_fingerprint", "read_plan", "write_plan"]

FORMAT = 1
R = TypeVar("R")


@value
class SavedPlan:
    stack: str
    sources: tuple[str, ...]
    engine: str | None
    prune_volumes: bool
    fingerprint: str
    summary: str
    #: Planned with ``--adopt``: applying it takes over the same objects.
    adopt: bool = False

    def request(self, given: R) -> R:
        """The ``reconcile.ApplyRequest`` that applies exactly this plan: ``given`` (the command line's), with
        what the plan was made with (``--prune-volumes``, ``--adopt``) and the plan itself to check against.

        (``ApplyRequest`` is not imported: ``reconcile`` asks this module whether a plan is fresh.)
        """
        return dataclasses.replace(given, prune_volumes=given.prune_volumes or self.prune_volumes,
                                   adopt=given.adopt or self.adopt, saved=self)


def plan_fingerprint(plan: Plan, desired: DesiredState) -> str:
    """What apply would do, as one hash: actions, live ids and target config hashes."""
    targets = {f"container:{n}": s.config_hash for n, s in desired.containers.items()}
    targets.update({f"network:{s.name}": s.config_hash for s in desired.networks.values()})
    targets.update({f"volume:{s.name}": s.config_hash for s in desired.volumes.values()})
    targets.update({f"image:{ref}": s.build_hash or s.pull for ref, s in desired.of(Kind.IMAGE).items()})
    # An image's reasons name the content its registry driver saw at its source (a digest, an
    # archive's image id): content that moved again since the plan is not what was reviewed.
    items = [(c.id, c.action.value, c.live_id, c.error, c.blocked, targets.get(c.id, ""),
              c.reasons if c.kind is Kind.IMAGE else ()) for c in plan.changes]
    return short_hash(items, length=32)


def _summary(plan: Plan) -> str:
    return ", ".join(f"{c.action.value} {c.id}" for c in plan.changes) or "no changes"


def write_plan(path: Path, plan: Plan, desired: DesiredState, *, engine: str | None, prune_volumes: bool,
               adopt: bool = False) -> None:
    """Write the plan file: the reviewed plan plus what is needed to apply exactly it."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "sources": [str(Path(s).resolve()) for s in desired.sources],
        "engine": engine,
        "prune_volumes": prune_volumes,
        "adopt": adopt,
        "fingerprint": plan_fingerprint(plan, desired),
        "summary": _summary(plan),
        **plan_data(plan),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_plan(path: Path) -> SavedPlan:
    """Read a plan file written by ``write_plan``; a clear SpecError if it is not one."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"unsupported plan format {data.get('format')!r}")
        return SavedPlan(
            stack=str(data["stack"]),
            sources=tuple(str(s) for s in data["sources"]),
            engine=data.get("engine"),
            prune_volumes=bool(data.get("prune_volumes", False)),
            fingerprint=str(data["fingerprint"]),
            summary=str(data.get("summary", "")),
            adopt=bool(data.get("adopt", False)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpecError(f"{path}: not a readable plan file ({exc})") from exc


def check_fresh(saved: SavedPlan, plan: Plan, desired: DesiredState) -> None:
    """Raise StalePlanError unless ``plan`` is exactly the saved one."""
    if plan_fingerprint(plan, desired) != saved.fingerprint:
        raise StalePlanError(
            "the saved plan is stale: the spec or the engine changed since it was made; "
            f"nothing was applied.\n  saved: {saved.summary}\n  now:   {_summary(plan)}\n"
            "Run 'reconcile plan' again and review it."
        )
