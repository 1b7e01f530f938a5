"""Taking over a running Compose project: which of its objects become the stack's, and how. Pure.

People who run ``docker compose up`` cannot move to GitOps with an outage:
their containers hold the names the stack wants and their volumes hold the
data. ``reconcile adopt`` (``apply --adopt-compose``) takes the project's
objects over where they stand instead. The engine cannot change an object's
labels, so Compose's stay on; the reconciler's record holds a ``Claim`` for
each object taken (the labels it would have given it), which the planner reads
as if the object carried them (``reconciler.ownership.vet``).

What becomes of each object of the project (found by Compose's own labels,
v1 and v2 alike):

- a volume or a network the spec names under the same engine name is
  *adopted*: taken over in place, its data never touched. Where its driver
  says it differs from the spec, the claim says so too, and the plan then
  shows the change the spec asks for (a volume's is blocked, as always,
  without ``--recreate-volumes``);
- a container of a service the spec has is *kept* when its runtime driver
  finds that it already runs as the spec says (``ObjectDriver.differences``
  answers ``[]``): it is not restarted, only renamed to the spec's name when
  Compose v1 named it ``shop_web_1``. Otherwise it is *replaced*: its claim
  names the differing fields, and the plan replaces it with the container's
  update order, as any changed container;
- anything else is left alone and said so: a one-off container
  (``docker compose run``), a service or a replica the spec does not have, an
  object the spec names otherwise. Objects of another project or of nobody
  are never looked at; one that holds a name the spec wants is the planner's
  usual "exists and is not managed by this stack" error.

``plan_adoption`` decides; ``Adoption.view`` shows the planner the live state
and the record as they will be once the takeover is written, so one plan
shows the takeover and the changes that follow it, before anything happens.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from . import labels as L
from .hashing import canonical_json
from .model import Claim, DesiredState, Kind, LiveObject, LiveState, Record
from .plan import Takeover
from .values import value

__all__ = ["Adoption", "Taken", "compose_selectors", "plan_adoption"]

#: The kinds a Compose project has objects of (its images are shared caches: used, never owned).
KINDS = (Kind.NETWORK, Kind.VOLUME, Kind.CONTAINER)
_KEY_LABEL = {Kind.NETWORK: L.COMPOSE_NETWORK, Kind.VOLUME: L.COMPOSE_VOLUME, Kind.CONTAINER: L.COMPOSE_SERVICE}
_DIFFERS = "≠"  # a field hash no spec field has: the planner names the field as changed

#: ``compare(spec, found)``: the driver's ``differences`` (None: it cannot tell).
Compare = Callable[[Any, LiveObject], "list[str] | None"]


def compose_selectors(project: str) -> list[str]:
    """The label filter (``key=value``) selecting every object of the Compose project ``project``."""
    return [f"{L.COMPOSE_PROJECT}={project}"]


@value
class Taken:
    """One object taken over: what the plan shows, the object as the engine lists it, and the record's claim."""

    takeover: Takeover
    #: The object as found, under its current engine name.
    found: LiveObject
    claim: Claim
    #: The driver of the spec entry it becomes (the record's ``driver``).
    driver: str

    @property
    def adopted(self) -> LiveObject:
        """The object under the name it has once taken over."""
        return replace(self.found, name=self.takeover.name)


@value
class Adoption:
    """What ``reconcile adopt`` does to one Compose project, decided before anything happens."""

    project: str
    taken: tuple[Taken, ...] = ()
    #: The project's objects left alone, each with why (shown, never touched).
    left_alone: tuple[str, ...] = ()
    #: Why the takeover cannot happen (a name the spec wants is held by another container); empty: it can.
    clashes: tuple[str, ...] = ()

    @property
    def takeovers(self) -> tuple[Takeover, ...]:
        return tuple(t.takeover for t in self.taken)

    def renames(self) -> list[tuple[str, str]]:
        """(container id, new name) for each container the takeover renames."""
        return [(t.found.id, t.takeover.name) for t in self.taken if t.takeover.renamed_from]

    def view(self, live: LiveState, record: Record) -> tuple[LiveState, Record]:
        """``live`` and ``record`` as they will be once the takeover is written (renames made, claims recorded)."""
        maps = {kind: dict(live.of(kind)) for kind in Kind}
        adopted, claims = set(record.adopted), dict(record.claims)
        for taken in self.taken:
            obj = taken.adopted
            maps[obj.kind].pop(taken.found.name, None)
            maps[obj.kind][obj.name] = obj
            adopted.add((obj.kind, obj.name, obj.id))
            claims[(obj.kind, obj.name, obj.id)] = taken.claim
        return LiveState.by_kind(maps), replace(record, adopted=frozenset(adopted), claims=claims, missing=False)


def plan_adoption(desired: DesiredState, project: str, found: Mapping[Kind, Sequence[LiveObject]],
                  live: LiveState, record: Record | None, compare: Compare) -> Adoption:
    """What taking ``project`` over does to each of its objects (``found``: them, by kind, as their drivers list them).

    ``live`` is the stack's observed state (to find a clash with the spec's
    names); objects the ``record`` already holds were taken before and are
    not taken again, so adopting twice changes nothing.
    """
    taken: list[Taken] = []
    left: list[str] = []
    clashes: list[str] = []
    for kind in KINDS:
        for obj in sorted(found.get(kind, ()), key=lambda o: o.name):
            if obj.labels.get(L.COMPOSE_PROJECT) != project:
                continue  # a driver that matched more than asked: never another project's
            if record is not None and (record.lists(obj) or record.claim(obj) is not None):
                continue
            why, spec = _spec_for(desired, kind, obj)
            if spec is None:
                left.append(f"{kind.value} {obj.name}: {why}")
                continue
            differences = compare(spec, obj)
            built = _compose_built(kind, spec, differences)
            if built:
                differences = []  # the image alone: compared with the build when apply has made it
            takeover = _takeover(kind, obj, spec, differences, built)
            holder = live.of(kind).get(spec.name)
            if takeover.renamed_from and holder is not None and holder.id != obj.id:
                clashes.append(f"container {obj.name} (service {spec.key} of Compose project {project}) would take "
                               f"the name {spec.name}, which container {holder.id[:12]} holds: remove or rename it")
                continue
            claim = _claim(desired.stack, kind, obj, spec, differences, project)
            if built:
                claim = replace(claim, images={obj.image_id: ""})
            taken.append(Taken(takeover, obj, claim, spec.driver))
    return Adoption(project=project, taken=tuple(taken), left_alone=tuple(left), clashes=tuple(clashes))


def _spec_for(desired: DesiredState, kind: Kind, obj: LiveObject) -> tuple[str, Any]:
    """(why not, None) or ("", the spec entry ``obj`` becomes)."""
    key = obj.labels.get(_KEY_LABEL[kind], "")
    if kind is Kind.CONTAINER:
        if obj.labels.get(L.COMPOSE_ONEOFF, "").lower() == "true":
            return "a one-off container (docker compose run): left alone", None
        number = _number(obj.labels.get(L.COMPOSE_NUMBER, "1"))
        spec = next((s for s in desired.containers.values() if s.key == key and s.replica == number), None)
        if spec is None:
            missing = "service" if not any(s.key == key for s in desired.containers.values()) else "replica"
            return (f"the file has no {missing} {key}" + (f" #{number}" if missing == "replica" else "")
                    + ": left alone (remove it by hand, or add it to the file and adopt again)"), None
        return "", spec
    spec = desired.section(kind).get(key)
    if spec is None:
        return f"the file has no {kind.value} {key}: left alone", None
    if getattr(spec, "external", False):
        return f"the file uses {kind.value} {key} as external: used, never owned", None
    if spec.name != obj.name:
        return f"the file names {kind.value} {key} {spec.name} now: left alone", None
    return "", spec


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 1


def _compose_built(kind: Kind, spec: Any, differences: list[str] | None) -> bool:
    """Whether a container differs at most in its image, which the spec builds (Compose built the one it runs).

    Compose v1 tags the build ``shop_web``, v2 and the reconciler ``shop-web``, and
    no label tells from which context an image was built: whether the container
    runs what the file builds is known once apply has built it
    (``Change.keeps_if_image``).
    """
    return (kind is Kind.CONTAINER and differences is not None and set(differences) <= {"image"}
            and bool(getattr(spec, "image_build", "")))


def _takeover(kind: Kind, obj: LiveObject, spec: Any, differences: list[str] | None,
              built: bool = False) -> Takeover:
    renamed = obj.name if obj.name != spec.name else ""
    if kind is not Kind.CONTAINER:
        reasons = ["taken over in place: its data stays where it is" if kind is Kind.VOLUME
                   else "taken over in place: its containers stay attached"]
        if differences:
            reasons.append(f"differs from the file: {', '.join(differences)}")
        elif differences is None:
            reasons.append("its driver cannot compare it with the file: taken as it is")
        return Takeover(kind, spec.name, spec.key, "adopt", renamed, tuple(reasons))
    if built:
        return Takeover(kind, spec.name, spec.key, "keep", renamed,
                        ("runs as the file says, from an image Compose built: kept running if building the file "
                         "gives the same image (compared at apply), else replaced",))
    if differences == []:
        return Takeover(kind, spec.name, spec.key, "keep", renamed,
                        ("runs as the file says: kept running, not restarted",))
    why = (f"differs from the file: {', '.join(differences)}" if differences
           else "its runtime cannot compare it with the file")
    return Takeover(kind, spec.name, spec.key, "replace", renamed, (why,))


def _claim(stack: str, kind: Kind, obj: LiveObject, spec: Any, differences: list[str] | None,
           project: str) -> Claim:
    """The labels the record vouches for ``obj``: ours for ``spec``, with the differing fields marked changed."""
    ours = {k: v for k, v in L.object_labels(stack, kind, spec).items() if k.startswith(L.PREFIX)}
    if differences or (differences is None and kind is Kind.CONTAINER):
        fields = L.read_field_hashes(ours)
        fields.update({path: _DIFFERS for path in differences or ()})
        ours[L.FIELDS] = canonical_json(fields)
        ours[L.CONFIG_HASH] = ""  # never a spec's: the planner sees a changed config
    requires = {L.COMPOSE_PROJECT: project, _KEY_LABEL[kind]: obj.labels.get(_KEY_LABEL[kind], "")}
    return Claim(labels=ours, requires=requires)
