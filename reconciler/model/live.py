"""What the engine holds, as drivers report it, and what the reconciler's own record says it did.

Drivers' ``observe`` builds ``LiveObject``s (with a registry driver's
``Content`` verdict for images); ``reconciler.observe`` gathers them into a
``LiveState``; ``reconciler.state`` reads a ``Record``. The planner reads all
three and never writes them.
"""
from __future__ import annotations

from dataclasses import field
from typing import Mapping

from .. import labels as _labels
from ..values import value
from .kinds import Kind

__all__ = ["Claim", "Content", "LiveObject", "LiveState", "Record"]


@value
class Content:
    """A registry driver's answer to "does the local image hold what the spec's source holds now?".

    Set on an image's ``LiveObject.content`` by ``observe``: the documented way
    for a registry driver to say that the content behind a reference changed
    (a tag moved upstream, an archive now holds another image), and the only
    one the core reads. The core then pulls the image again
    (``RegistryDriver.pull``) and replaces the containers that use it.
    ``None`` on the live object means the driver did not or could not tell:
    the image is then never updated for its content (only an image with
    ``pull: always`` that tracks its tag is pulled anyway, by policy).
    """

    #: True: the source holds other content than the local image; False: checked, the same.
    changed: bool
    #: The local content, as a short non-secret identifier (a digest, an image id), for the plan's text.
    local: str = ""
    #: What the source holds now, likewise (shown by ``status`` as ``upstream``).
    source: str = ""


@value
class LiveObject:
    """An object as its driver reports it, reduced to what planning needs.

    Built by drivers' ``observe``; read by the planner, ``status`` and plugins.
    """

    kind: Kind
    #: The engine name (images: the reference).
    name: str
    #: The engine id. Volumes have none: the id the reconciler gave the volume
    #: (its ``io.reconciler.volume-id`` label) when its driver reports it, else the name.
    id: str
    #: Every label the object carries (see ``reconciler.labels``).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: True when the labels claim this stack owns it.
    owned: bool = False
    #: A container's state: ``running``, ``exited``, ``created``, ``paused``, ``restarting``.
    state: str = ""
    #: A container's health status, when it has a healthcheck.
    health: str = ""
    #: An exited container's exit code.
    exit_code: int | None = None
    #: The image a container runs, or an image's own id.
    image_id: str = ""
    #: Non-secret values a driver could read cheaply, used to explain a change:
    #: ``networks`` and ``volumes`` (attached names) for containers,
    #: ``repo_digests`` for images, and after a config change the old values of
    #: the changed fields. No key here tells the planner that an image's content
    #: changed: a registry driver says so through ``content``.
    details: Mapping[str, object] = field(default_factory=dict)
    #: Images only: whether the content behind the reference changed (see ``Content``);
    #: None (the driver cannot tell) never triggers an update for the image's content.
    content: Content | None = None
    #: What ``reconcile status`` shows about the object (text and JSON, under ``details``):
    #: short, non-secret facts the driver read anyway, e.g. a storage driver's ``path``
    #: or ``usage``. Never read by the planner.
    info: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.labels.get(_labels.NAME, "")

    @property
    def config_hash(self) -> str:
        return self.labels.get(_labels.CONFIG_HASH, "")

    @property
    def field_hashes(self) -> dict[str, str]:
        return _labels.read_field_hashes(self.labels)


@value
class LiveState:
    """What the engine holds that matters to this stack: owned objects and name collisions.

    Each map is keyed by engine name (images by reference).
    """

    images: Mapping[str, LiveObject] = field(default_factory=dict)
    networks: Mapping[str, LiveObject] = field(default_factory=dict)
    volumes: Mapping[str, LiveObject] = field(default_factory=dict)
    containers: Mapping[str, LiveObject] = field(default_factory=dict)

    def of(self, kind: Kind) -> Mapping[str, LiveObject]:
        """The live objects of ``kind`` by engine name."""
        return getattr(self, kind.section)  # the maps are named after the spec's sections

    @classmethod
    def by_kind(cls, maps: Mapping[Kind, Mapping[str, LiveObject]]) -> LiveState:
        """The state holding ``maps[kind]`` for each kind (none for a kind ``maps`` lacks)."""
        return cls(**{kind.section: maps.get(kind, {}) for kind in Kind})


@value
class Claim:
    """What the record vouches for an object adopted from another tool, whose labels cannot say it.

    The engine cannot change an object's labels, so a volume, a network or a
    container taken over from a Compose project (``reconcile adopt``) keeps
    Compose's. The record then holds the labels the reconciler would have
    given it, and the planner reads the object as if it carried them.
    """

    #: The reconciler's labels for the object (stack, kind, key, config hash, field hashes, …).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Foreign labels the object must still carry for the claim to hold (its Compose project and
    #: key): a volume has no engine id, so another volume made later under its name is not it.
    requires: Mapping[str, str] = field(default_factory=dict)
    #: A kept container whose image Compose built: the image id it runs → the id of the image the
    #: reconciler built from the spec that holds the same (``RegistryDriver.equivalent``), or "" until
    #: that build has been compared with it.
    images: Mapping[str, str] = field(default_factory=dict)

    def holds_for(self, obj: LiveObject) -> bool:
        """Whether ``obj`` still carries the foreign labels it was adopted with."""
        return all(obj.labels.get(key) == want for key, want in self.requires.items())


@value
class Record:
    """What the reconciler's own record says about one stack on one engine (see ``reconciler.state``).

    Labels say what an object *claims*; the record says what the reconciler
    *did*. The planner reads both: an object whose labels claim the stack but
    which the record does not list is reported, never changed or deleted,
    unless the user adopts it (``--adopt``).
    """

    #: (kind, name, id) of every object the reconciler created.
    created: frozenset[tuple[Kind, str, str]] = frozenset()
    #: (kind, name, id) of every object it took over instead (``--adopt``, or a record rebuilt from
    #: labels): it may update, replace and prune them, but deleting a volume's data needs more.
    adopted: frozenset[tuple[Kind, str, str]] = frozenset()
    #: True when the record knows nothing of this stack on this engine (a new machine, a new state
    #: directory): the pass rebuilds it from the objects that match by labels and config hash,
    #: and deletes nothing.
    missing: bool = False
    #: Where it was read (the state database's path), for messages about what it does not list: a
    #: daemon keeps its record in its own state directory, which a command here does not read.
    where: str = field(default="", compare=False)
    #: (kind, name, id) → what the record vouches for an object adopted from another tool (see ``Claim``).
    claims: Mapping[tuple[Kind, str, str], Claim] = field(default_factory=dict)

    def union(self, other: Record) -> Record:
        """What either record lists (the stack's record under another identity of the same engine)."""
        return Record(created=self.created | other.created, adopted=self.adopted | other.adopted,
                      missing=self.missing and other.missing, where=self.where or other.where,
                      claims={**other.claims, **self.claims})

    def claim(self, obj: LiveObject) -> Claim | None:
        """The record's claim on ``obj`` (a container by its engine id), when ``obj`` still answers it."""
        found = self.claims.get((obj.kind, obj.name, obj.id))
        if found is None and obj.kind is Kind.CONTAINER and obj.id:
            found = next((c for (kind, _, object_id), c in self.claims.items()
                          if kind is Kind.CONTAINER and object_id == obj.id), None)
        return found if found is not None and found.holds_for(obj) else None

    def lists(self, obj: LiveObject) -> bool:
        """Whether the record lists this very object (kind, name and id; a container by its id alone).

        A replacement renames the old container aside (``<name>-old-<id>``) and an
        interruption can leave it there: its engine id, which a rename keeps and
        no label can forge, still names it (DESIGN.md, "the record follows objects by engine id").
        """
        return _listed(self.created, obj) or _listed(self.adopted, obj)

    def made(self, obj: LiveObject) -> bool:
        """Whether the reconciler created this very object (not merely adopted it)."""
        return _listed(self.created, obj)


def _listed(rows: frozenset[tuple[Kind, str, str]], obj: LiveObject) -> bool:
    if (obj.kind, obj.name, obj.id) in rows:
        return True
    return obj.kind is Kind.CONTAINER and bool(obj.id) and any(
        kind is Kind.CONTAINER and object_id == obj.id for kind, _, object_id in rows)
