"""The ``hostdir`` storage driver: a host directory, made with an owner and mode, used as a volume.

Why not a bind mount? A bind mount needs the directory to exist with the
right owner before the container starts, and every container must repeat the
host path. A ``hostdir`` volume makes the directory itself (parents too), sets
its owner and mode, and then registers an engine volume of the ``local``
driver bound to it (``type=none, o=bind, device=PATH``), so containers mount
it by name like any other volume::

    volumes:
      data:
        driver: hostdir
        options: {path: /srv/app/data, owner: "1000:1000", mode: "0750"}

Lifetime: the core deletes a volume only under ``--prune-volumes`` (or
``--recreate-volumes`` when its options changed), never implicitly, and only
a volume its record says it created. When it does, ``delete`` removes the
engine volume, then the directory with its data *if the directory carries
this volume's marker* (see ``hostpaths``): a directory that existed before,
an adopted one (``adopt: "true"``) or one another tool made is kept.
``destroy`` without ``--prune-volumes`` keeps both.

The directory is made by the process running the reconciler, so that process
must run on the engine's host (or share its filesystem).
"""
from __future__ import annotations

import logging
import os
from typing import Mapping

import docker.errors

from reconciler.sdk import LiveObject, StorageDriver, VolumeSpec
from reconciler.sdk.docker import engine_errors
from reconciler.sdk.labels import DRIVER, STACK, VOLUME_ID

from .hostpaths import (
    MARKER,
    HostDirOptions,
    check_directory,
    option_problems,
    parse_mode,
    parse_options,
    parse_owner,
    prepare_directory,
    remove_directory,
)
from .volumes import DockerVolumeDriver, volume_id

__all__ = [
    "MARKER",
    "NAME",
    "HostDirDriver",
    "HostDirOptions",
    "engine_options",
    "option_problems",
    "parse_mode",
    "parse_options",
    "parse_owner",
    "prepare_directory",
    "remove_directory",
]

NAME = "hostdir"
log = logging.getLogger(__name__)


def engine_options(path: str) -> dict[str, str]:
    """The ``local`` driver options that bind an engine volume to ``path``."""
    return {"type": "none", "o": "bind", "device": path}


class HostDirDriver(DockerVolumeDriver):
    """Engine volumes bound to host directories that this driver creates, owns and removes."""

    claims = frozenset({NAME})
    #: A volume's directory removed from the host by hand tells no event: a daemon's resyncs look.
    changes_reported = False
    # Snapshots are the ``local`` driver's alone for now: a hostdir volume keeps the contract's refusals.
    takes_snapshots = False
    snapshot, restore = StorageDriver.snapshot, StorageDriver.restore
    list_snapshots, delete_snapshot = StorageDriver.list_snapshots, StorageDriver.delete_snapshot

    def observe(self, stack: str, wanted: Mapping[str, VolumeSpec]) -> list[LiveObject]:
        """Like the ``local`` driver, for volumes labelled ``hostdir``.

        A volume whose directory has gone from the host is left out, so the
        plan creates it again: ``create`` remakes the directory, and the
        engine answers the volume creation with the existing volume.
        """
        found = super().observe(stack, wanted)
        return [live for live in found if not (live.owned and live.name in wanted and not self._present(live))]

    def differences(self, spec: VolumeSpec, live: LiveObject) -> None:
        """Cannot tell: Compose never makes a hostdir volume (its directory, marker and owner are ours alone)."""
        return None

    @staticmethod
    def _present(live: LiveObject) -> bool:
        return os.path.isdir(str(live.details.get("path", "")))

    @staticmethod
    def _details(vol: dict) -> dict:
        return {"path": (vol.get("Options") or {}).get("device", "")}

    @staticmethod
    def _info(vol: dict) -> dict[str, str]:
        """What ``status`` shows: the host directory holding the data."""
        path = (vol.get("Options") or {}).get("device", "")
        return {"path": path} if path else {}

    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> str:
        """Make the engine volume and its directory (marked as made for it), with owner and mode; return its id.

        A path that exists is refused before anything is made, unless it is
        this volume's own directory (its marker says so) or the volume adopts it.
        """
        options = parse_options(spec.options)
        stack = labels.get(STACK, self.context.stack)
        check_directory(options, stack=stack, volume=spec.name)
        with engine_errors(f"create volume {spec.name}"):
            volume = self.api.create_volume(spec.name, driver="local", driver_opts=engine_options(options.path),
                                            labels=dict(labels))
        # The engine answers with the volume that exists, if one does: its id goes in the marker.
        uid = (volume.get("Labels") or {}).get(VOLUME_ID, "")
        prepare_directory(options, stack=stack, volume=spec.name, uid=uid)
        return volume_id(volume)

    def delete(self, live: LiveObject) -> None:
        """Remove the engine volume, then its directory and data if the directory's marker names this volume."""
        with engine_errors(f"remove volume {live.name}"):
            try:
                volume = self.api.inspect_volume(live.name)
                self.api.remove_volume(live.name)
            except docker.errors.NotFound:
                return
        path = self._directory(volume)
        if path and not remove_directory(path, stack=self.context.stack, volume=live.name,
                                         uid=(volume.get("Labels") or {}).get(VOLUME_ID, "")):
            log.warning("volume %s is removed; its directory %s is kept: it has no marker of this volume "
                        "(adopted, or not made by the reconciler)", live.name, path)

    def _directory(self, volume: dict) -> str | None:
        """The bound directory, only for a volume this driver made for this stack."""
        labels = volume.get("Labels") or {}
        options = volume.get("Options") or {}
        if labels.get(DRIVER) != NAME or labels.get(STACK) != self.context.stack:
            return None  # e.g. a local volume being replaced by a hostdir one: no directory of ours
        if options.get("o") != "bind" or not os.path.isabs(options.get("device", "")):
            return None
        return options["device"]
