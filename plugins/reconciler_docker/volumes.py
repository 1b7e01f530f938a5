"""The engine's ``local`` volume driver, with its options (tmpfs, nfs, cifs, bind)."""
from __future__ import annotations

from typing import Mapping

import docker.errors

from reconciler.drivers import DriverContext, StorageDriver
from reconciler.model import STACK_LABEL, Kind, LiveObject, VolumeSpec

from .engine import api_client, engine_errors, owned_filter


class DockerVolumeDriver(StorageDriver):
    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self):
        return api_client(self.context)

    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        with engine_errors("list volumes"):
            found = {v["Name"]: v for v in self.api.volumes(filters=owned_filter(stack)).get("Volumes") or []}
            missing = [name for name in wanted if name not in found]
            if missing:
                for vol in self.api.volumes(filters={"name": missing}).get("Volumes") or []:
                    if vol["Name"] in missing:
                        found[vol["Name"]] = vol
        return [self._live(stack, vol) for vol in found.values()]

    @staticmethod
    def _live(stack: str, vol: dict) -> LiveObject:
        labels = vol.get("Labels") or {}
        return LiveObject(kind=Kind.VOLUME, name=vol["Name"], id=vol["Name"], labels=labels,
                          owned=labels.get(STACK_LABEL) == stack)

    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> None:
        with engine_errors(f"create volume {spec.name}"):
            self.api.create_volume(spec.name, driver=spec.driver, driver_opts=dict(spec.options) or None,
                                   labels=dict(labels))

    def delete(self, live: LiveObject) -> None:
        with engine_errors(f"remove volume {live.name}"):
            try:
                self.api.remove_volume(live.name)
            except docker.errors.NotFound:
                pass
