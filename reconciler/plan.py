"""The plan: plain data that crosses phases.

What the planner (``reconciler.planner``) makes, the CLI renders, a plan file
fingerprints, apply executes and hooks receive: the changes, each with its
action, its reason code and the fields that differ (old → new, secrets
redacted). Kept apart from the planner, as Terraform keeps ``plans/plan.go``
apart from ``context_plan.go``, so that reading a plan never imports the code
that makes one. No I/O and nothing that knows an engine.
"""
from __future__ import annotations

import enum

from .model import Kind, LiveObject
from .redact import REDACTED
from .values import value

__all__ = ["Action", "Change", "FieldChange", "Operation", "Plan", "REDACTED", "Reason", "Rollout", "Takeover"]


class Action(str, enum.Enum):
    """What a change does to its object (Terraform's vocabulary: ``+``, ``~``, ``-/+``, ``-``)."""

    CREATE = "create"
    UPDATE = "update"  # images: build, pull or push again under the same reference; networks and volumes:
    # change options their driver marks in place; containers of a runtime that schedules replicas
    # (a Swarm service): change the service, whose tasks the runtime rolls over itself
    REPLACE = "replace"
    START = "start"
    DELETE = "delete"


class Operation(enum.StrEnum):
    """What a run is for, as the lifecycle hooks are told (``operation=``): a policy may treat them differently."""

    APPLY = "apply"  # make the engine match a spec (also ``plan``, ``watch`` and the daemon's passes)
    DESTROY = "destroy"  # remove everything the stack owns


class Reason(enum.StrEnum):
    """Why a change is planned: the code that text, JSON, notifications and policies read.

    Modelled on Terraform's ``ResourceInstanceChangeActionReason``: the
    ``reasons`` text of a change is a rendering for people; code that needs
    to know *why* reads this, never the English.
    """

    NEW = "new"  # the object does not exist (or its name is taken: see Change.error)
    CONFIG_CHANGED = "config-changed"  # its desired config hash differs from the live one
    OPTIONS_CHANGED = "options-changed"  # only driver options its driver changes in place differ (an update)
    IMAGE_CHANGED = "image-changed"  # a container's image gets, or already has, another id
    REWIRED = "rewired"  # a container attached to other networks than its spec says
    DRIFTED = "drifted"  # its runtime reports fields changed outside the reconciler (``details["drift"]``)
    DEPENDENCY_RECREATED = "dependency-recreated"  # a network or volume it uses is recreated
    NOT_RUNNING = "not-running"  # a container that should run is stopped, created or paused
    FILES_MISSING = "files-missing"  # the config or secret files it mounts are gone (a reboot empties a tmpfs)
    FILESYSTEM_DRIFT = "filesystem-drift"  # ``filesystem: recreate`` and its writable layer changed (``fsdrift``)
    NO_LONGER_IN_SPEC = "no-longer-in-spec"  # owned by the stack, gone from the spec
    SCALED_DOWN = "scaled-down"  # a replica above the spec's ``replicas``
    BUILD_MISSING = "build-missing"  # a built image that is not present
    BUILD_CHANGED = "build-changed"  # a built image whose inputs changed
    PUSH_MISSING = "push-missing"  # an up-to-date build the registry does not have yet
    LOAD_MISSING = "load-missing"  # an archived image that is not present
    CONTENT_CHANGED = "content-changed"  # its registry driver says the source holds other content now
    PULL_MISSING = "pull-missing"  # a pulled image that is not present
    PULL_TAG_MOVED = "pull-tag-moved"  # the tag points to another digest upstream
    PULL_ALWAYS = "pull-always"  # pull policy ``always`` and no digest to compare
    NOT_RECORDED = "not-recorded"  # claims the stack by its labels, not in the record: shown, never applied
    INTERRUPTED = "interrupted"  # a container an interrupted replacement left renamed aside (``<name>-old-<id>``)

    @property
    def image_verb(self) -> str:
        """What a registry driver does for an image change with this reason: build, load, push or pull."""
        return _IMAGE_VERBS.get(self, "pull")


_IMAGE_VERBS = {
    Reason.BUILD_MISSING: "build",
    Reason.BUILD_CHANGED: "build",
    Reason.PUSH_MISSING: "push",
    Reason.LOAD_MISSING: "load",
}


@value
class FieldChange:
    """One field that differs; values are display strings, already redacted (``explain.render_field`` shows it)."""

    path: str
    old: str | None = None
    new: str | None = None
    #: A list-valued field's items (display strings) that only the new value, or only the old one, holds.
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.old is None and self.new is None:
            return f"{self.path}: changed"
        return f"{self.path}: {self.old if self.old is not None else '(unset)'} → {self.new if self.new is not None else '(unset)'}"


@value
class Rollout:
    """How a container's replacement rolls out, decided by the planner from its ``update`` policy."""

    #: ``start-first``: the new container starts beside the old one, which stops once the new one
    #: is ready; ``stop-first``: the old one stops, then the new one starts.
    order: str
    #: Why this order (shown in the plan).
    why: str = ""
    #: Seconds to wait before starting, after the replica replaced before it.
    delay: float = 0.0
    #: Seconds the new container may take to be ready.
    timeout: float = 60.0
    #: Seconds a container without a healthcheck must keep running to be ready.
    min_ready: float = 0.0
    #: Whether the new container has a healthcheck (ready means healthy).
    healthcheck: bool = False


@value
class Change:
    """One change to one object: what the plan shows, what apply executes, what hooks receive."""

    #: What happens to the object.
    action: Action
    #: The object's kind.
    kind: Kind
    #: The engine name (images: the reference).
    name: str
    #: The key in the spec (``containers.<key>``), or the live object's key when it left the spec.
    key: str
    #: Why, for people: one line each, secrets already redacted. Render these; never parse them.
    reasons: tuple[str, ...] = ()
    #: The fields that differ, old → new (display values, redacted).
    fields: tuple[FieldChange, ...] = ()
    #: The fields that force a replacement (what Terraform marks "forces replacement").
    forced_by: tuple[str, ...] = ()
    #: Objects (``kind:name``) whose own changes must finish before this one creates or starts anything.
    requires: tuple[str, ...] = ()
    #: Objects whose removal must wait until this change has removed its old object.
    holds: tuple[str, ...] = ()
    #: (container name, condition) pairs to wait for before creating: started, healthy or completed.
    waits: tuple[tuple[str, str], ...] = ()
    #: The live object's id (replace, start, delete, image update), so a saved plan can tell it moved.
    live_id: str = ""
    #: The driver that creates the new object.
    driver: str = ""
    #: The driver that removes the old object (differs from ``driver`` when a spec moves a volume).
    live_driver: str = ""
    #: An image change that gives the image a new id: its containers are replaced with it.
    renews: bool = False
    #: Set when the change cannot be applied at all (a name taken by an object the stack does not own).
    error: str = ""
    #: Set when the change needs an explicit flag (recreating a network or a volume).
    blocked: str = ""
    #: Why, as a code (see ``Reason``).
    reason: Reason = Reason.NEW
    #: For a container replaced in place (rename aside, create, start, then remove the old one):
    #: how. None for a replacement that must remove the old container first (a network or
    #: volume it uses is recreated) and for every other change.
    rollout: Rollout | None = None
    #: The live container's state when planned (``running``, ``exited``, ...), for rollbacks.
    live_state: str = ""
    #: A container whose runtime schedules its replicas (a Swarm service): shown as a service.
    scheduled: bool = False
    #: A container taken over from Compose, replaced only because its image is rebuilt: the image
    #: id it runs. The replacement is skipped, and the container kept, if the image the build gives
    #: holds the same (``RegistryDriver.equivalent``).
    keeps_if_image: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind.value}:{self.name}"


@value
class Takeover:
    """One object of another tool's project that this pass takes over (``reconcile adopt``).

    Made by ``reconciler.adoption``; the plan shows each before anything
    happens. ``verdict`` says what becomes of it: ``adopt`` (a network or a
    volume: taken over in place, its data untouched), ``keep`` (a container
    that already runs as the spec says: not restarted) or ``replace`` (a
    container that differs: the plan's change for it replaces it with its
    update order).
    """

    kind: Kind
    #: The engine name it has after the takeover (the spec's name for it).
    name: str
    #: Its key in the spec.
    key: str
    verdict: str
    #: The engine name it had, when the takeover renames it (a Compose v1 container ``shop_web_1``).
    renamed_from: str = ""
    #: Why, in a few words each: the fields that differ, or what was kept.
    reasons: tuple[str, ...] = ()


@value
class Plan:
    """Every change that makes the engine match the spec, in dependency order. Plain data."""

    #: The stack the plan is for.
    stack: str
    #: The changes, images first, then networks, volumes and containers.
    changes: tuple[Change, ...] = ()
    #: Things a user should know that change nothing (a volume kept although it left the spec).
    notes: tuple[str, ...] = ()
    #: Objects this pass takes into the reconciler's record without creating them (``--adopt``,
    #: or a missing record rebuilt from labels and config hashes).
    adopted: tuple[LiveObject, ...] = ()
    #: What this pass takes over from another tool's project (``reconcile adopt``), before its changes.
    takeovers: tuple[Takeover, ...] = ()
    #: That project's objects this pass leaves alone, each with why (not in the spec, a one-off run).
    left_alone: tuple[str, ...] = ()
    #: Why no change of this plan may be applied, one line each, located at the spec's line (an
    #: external network or volume that does not exist): ``plan`` fails with them, ``apply`` refuses.
    refusals: tuple[str, ...] = ()
    #: Containers with ``filesystem: report`` whose writable layer changed: no change, but not converged
    #: for ``plan --detailed-exitcode`` (see ``reconciler.fsdrift``).
    drifted: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes and not self.takeovers

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for change in self.changes:
            out[change.action.value] = out.get(change.action.value, 0) + 1
        return out
