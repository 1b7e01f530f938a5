"""Which live objects a stack may change: labels claim, the record proves. Pure.

Labels can be copied by anyone who can reach the engine, so an object whose
labels claim the stack is the stack's only when the reconciler's own record
(``model.Record``, read from ``reconciler.state``) lists it. ``vet`` turns the
drivers' view (``LiveObject.owned``: the labels claim it) into the planner's:

- listed in the record: owned, as before;
- not listed, and the user passed ``--adopt``: owned, and recorded as adopted;
- not listed, the record is missing (a new machine), wanted by the spec with
  the same config hash: owned, recorded as adopted (the record is rebuilt);
- otherwise *unrecorded*: not owned. The planner reports it with an error and
  never changes or deletes it.

An object adopted from another tool (``reconcile adopt``: a Compose project's)
keeps that tool's labels, which the engine cannot change; its record row holds
a ``Claim`` instead, and ``vet`` reads the object as if it carried the claimed
labels, as long as it still carries the foreign labels it was adopted with.

Deleting a volume's data needs more than ownership: the record must say the
reconciler *created* that very volume, or the user passes ``--adopt``.

The record follows a container by its engine id, which a rename keeps: a
rolling replacement (``reconciler.rollout``) renames the old container to
``aside_name`` before its successor takes the name, and a pass stopped in
between (SIGTERM, SIGKILL, a full disk) leaves it there. ``set_aside_for``
reads the name it gave up back, so the next pass finishes the replacement or
puts the old container back on its own.
"""
from __future__ import annotations

from dataclasses import replace

from .defaults import DEFAULT_DRIVERS
from .labels import COMPOSE_PROJECT, DRIVER, is_owned
from .model import Claim, DesiredState, Kind, LiveObject, LiveState, Record
from .plan import Action, Change, Reason
from .values import value

__all__ = ["Vetted", "aside_name", "live_driver", "not_managed", "refused_create", "set_aside_for", "unrecorded",
           "vet"]

_VETTED_KINDS = (Kind.NETWORK, Kind.VOLUME, Kind.CONTAINER)  # images are shared caches: never deleted
_ASIDE, _ID_DIGITS = "-old-", 12


def aside_name(name: str, container_id: str) -> str:
    """Where the container ``container_id`` waits while a successor takes ``name``."""
    return f"{name}{_ASIDE}{container_id[:_ID_DIGITS]}"


def set_aside_for(obj: LiveObject) -> str:
    """The name a container renamed aside gave up ("" when ``obj`` is not one).

    Only a container whose engine name is ``aside_name`` of its own engine id
    counts: the suffix carries the id, which nobody chooses.
    """
    suffix = f"{_ASIDE}{obj.id[:_ID_DIGITS]}"
    if obj.kind is not Kind.CONTAINER or len(obj.id) < _ID_DIGITS or not obj.name.endswith(suffix):
        return ""
    return obj.name[: -len(suffix)]


@value
class Vetted:
    """The live state as the planner may act on it, and what the record does not back."""

    #: The live state with ``owned`` true only for objects the stack may change.
    live: LiveState
    #: Objects this pass takes into the record without creating them (``--adopt``, a rebuild).
    adopted: tuple[LiveObject, ...] = ()
    #: The stack's name, to tell an unrecorded claim from a stranger's object.
    stack: str = ""
    #: None: no record consulted (labels decide, as before the record existed).
    record: Record | None = None
    adopt: bool = False

    @property
    def rebuilding(self) -> bool:
        """A pass that rebuilds a missing record: it deletes nothing, not even to replace."""
        return self.record is not None and self.record.missing and not self.adopt

    def unrecorded(self, obj: LiveObject | None) -> bool:
        """Whether ``obj`` claims the stack by its labels but the record does not back the claim."""
        return obj is not None and not obj.owned and is_owned(obj.labels, self.stack, kind=obj.kind)

    def may_delete_data(self, obj: LiveObject) -> bool:
        """Whether deleting ``obj`` (a volume) may delete its data: the reconciler created it, the user took it
        over from another tool (``reconcile adopt``: the record holds its claim), or ``--adopt``."""
        return (self.record is None or self.adopt or self.record.made(obj)
                or self.record.claim(obj) is not None)


def _claimed(obj: LiveObject, claim: Claim) -> LiveObject:
    """``obj`` as its claim says: the claimed labels, and the image it runs read as the build it was found equal to.

    A kept container whose image Compose built, and whose build has not been
    compared yet, says so in ``details["compose_build"]`` (its image id): the
    planner then replaces it only if the rebuilt image turns out different.
    """
    image = claim.images.get(obj.image_id)
    details = obj.details
    if image == "":
        details = {**details, "compose_build": obj.image_id}
    return replace(obj, labels={**obj.labels, **claim.labels}, owned=True, image_id=image or obj.image_id,
                   details=details)


def vet(desired: DesiredState, live: LiveState, record: Record | None, *, adopt: bool = False) -> Vetted:
    """The objects the stack may change, given the record (None: trust the labels, as before)."""
    if record is None:
        return Vetted(live=live, stack=desired.stack)
    adopted: list[LiveObject] = []
    vetted = {kind: dict(live.of(kind)) for kind in Kind}
    for kind in _VETTED_KINDS:
        wanted = desired.of(kind)
        for name, obj in live.of(kind).items():
            claim = record.claim(obj) if record.claims else None
            if claim is not None:
                vetted[kind][name] = _claimed(obj, claim)
                continue
            if not obj.owned or record.lists(obj):
                continue
            spec = wanted.get(name)
            if adopt or (record.missing and spec is not None and obj.config_hash == spec.config_hash):
                adopted.append(obj)
            else:
                vetted[kind][name] = replace(obj, owned=False)
    return Vetted(live=LiveState.by_kind(vetted), adopted=tuple(adopted), stack=desired.stack, record=record, adopt=adopt)


# -- what the planner says of objects the stack may not touch --------------------------
def live_driver(kind: Kind, current: LiveObject) -> str:
    """The driver that made a live object: its label, else the default of its kind."""
    return current.labels.get(DRIVER) or DEFAULT_DRIVERS[kind.section]


def refused_create(kind: Kind, name: str, key: str, driver: str, vetted: Vetted, current: LiveObject) -> Change:
    """The create of a wanted name that another object holds: an error, never a takeover."""
    claimed = vetted.unrecorded(current)
    return Change(Action.CREATE, kind, name, key, ("new",), driver=driver,
                  error=unrecorded(kind, name, vetted) if claimed else not_managed(kind, name, current, vetted),
                  reason=Reason.NOT_RECORDED if claimed else Reason.NEW)


def unrecorded(kind: Kind, name: str, vetted: Vetted | None = None) -> str:
    """Why an object claiming the stack is left alone: which record was read, and where a daemon keeps its own."""
    where = vetted.record.where if vetted is not None and vetted.record is not None else ""
    read = (f"; the record read is {where}, and a daemon managing this stack keeps its own in its state_dir "
            f"(run this with RECONCILER_STATE_DIR=that directory, or on the daemon's host)") if where else ""
    return (f"{kind.value} {name} claims this stack by its labels, but the reconciler's record does not list it "
            f"(labels can be copied): it is left alone{read}; rerun with --adopt to take it over")


def not_managed(kind: Kind, name: str, current: LiveObject | None = None, vetted: Vetted | None = None) -> str:
    """Why a wanted name held by an object the stack does not own is an error (naming its Compose project, if any)."""
    project = current.labels.get(COMPOSE_PROJECT, "") if current is not None else ""
    if project and vetted is not None and project == vetted.stack:
        return (f"{kind.value} {name} belongs to the running Compose project {project}: take the project over with "
                f"'reconcile adopt' (or apply --adopt-compose), or stop it first (docker compose down)")
    if project:
        return (f"{kind.value} {name} exists and belongs to Compose project {project}, not to this stack; "
                f"rename it in the spec, or take that project over under its own name")
    return f"{kind.value} {name} exists and is not managed by this stack; rename it or remove it by hand"
