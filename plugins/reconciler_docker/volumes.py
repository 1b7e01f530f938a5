"""The engine's ``local`` volume driver, with its options (tmpfs, nfs, cifs, bind).

Several storage drivers of this plugin keep their volumes on the engine (the
``hostdir`` driver is one), and the core observes each driver instance on its
own and merges what they report by name. So each driver claims only the
volumes whose ``io.reconciler.driver`` label names it: two drivers never
report the same owned volume, and they share one list call per pass.
"""
from __future__ import annotations

from typing import Mapping

import docker.errors

from reconciler.drivers import DriverContext, StorageDriver
from reconciler.model import DRIVER_LABEL, STACK_LABEL, Kind, LiveObject, VolumeSpec

from .engine import api_client, engine_errors, owned_filter, shared_read

__all__ = ["DockerVolumeDriver"]


class DockerVolumeDriver(StorageDriver):
    """Volumes made by the engine's ``local`` driver, with the spec's driver options."""

    #: The ``io.reconciler.driver`` label values this driver claims ("" = no label).
    claims: frozenset[str] = frozenset({"local", ""})

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self):
        return api_client(self.context)

    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        """The stack's volumes this driver claims, plus unowned volumes under wanted names.

        One list call for the stack; a second only for wanted names the stack
        does not own at all (not even through another driver).
        """
        with engine_errors("list volumes"):
            listed = shared_read(self.context, f"volumes:{stack}",
                                 lambda: self.api.volumes(filters=owned_filter(stack)).get("Volumes") or [])
            owned = {v["Name"]: v for v in listed}
            missing = [name for name in wanted if name not in owned]
            others = {}
            if missing:
                for vol in self.api.volumes(filters={"name": missing}).get("Volumes") or []:
                    if vol["Name"] in missing:
                        others[vol["Name"]] = vol
        mine = [vol for vol in owned.values() if (vol.get("Labels") or {}).get(DRIVER_LABEL, "") in self.claims]
        return [self._live(stack, vol) for vol in mine + list(others.values())]

    @staticmethod
    def _live(stack: str, vol: dict) -> LiveObject:
        labels = vol.get("Labels") or {}
        return LiveObject(kind=Kind.VOLUME, name=vol["Name"], id=vol["Name"], labels=labels,
                          owned=labels.get(STACK_LABEL) == stack)

    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> None:
        """Create ``spec.name`` with the engine driver ``spec.driver`` and its options."""
        with engine_errors(f"create volume {spec.name}"):
            self.api.create_volume(spec.name, driver=spec.driver, driver_opts=dict(spec.options) or None,
                                   labels=dict(labels))

    def delete(self, live: LiveObject) -> None:
        """Remove the engine volume (and so its data); one already gone is fine."""
        with engine_errors(f"remove volume {live.name}"):
            try:
                self.api.remove_volume(live.name)
            except docker.errors.NotFound:
                pass
