"""reconciler-ramdisk: volumes that live in memory, as engine ``local`` volumes backed by tmpfs.

A spec asks for one with ``volumes: {scratch: {driver: ramdisk, options: {size: 64m}}}``.
Its data is gone when the last container using it stops: use it for caches and scratch space.
"""
from __future__ import annotations

import re
from typing import Mapping

from reconciler.sdk import (
    DriverContext, Kind, LiveObject, PermanentError, StorageDriver, VolumeSpec, hookimpl, owned_plus_wanted,
)
from reconciler.sdk.labels import DRIVER, is_owned

__all__ = ["RECONCILER_API_VERSION", "RamdiskDriver", "reconciler_register_drivers"]
__version__ = "0.1.0"

#: The plugin API this plugin is written for (``reconciler.sdk.API_VERSION``).
RECONCILER_API_VERSION = 2

NAME = "ramdisk"
DEFAULT_SIZE = "16m"
_SIZE = re.compile(r"^[1-9][0-9]*[kKmMgG%]?$")


def _engine():
    # Imported on first use: loading plugins (say, for `reconcile validate`) must not pay for the Docker SDK.
    from reconciler.sdk import docker as engine_kit

    return engine_kit


class RamdiskDriver(StorageDriver):
    """Owned volumes are the stack's volumes labelled ``io.reconciler.driver=ramdisk``."""

    #: Checked by ``reconcile validate`` and ``plan``, at the spec's file and line.
    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "size": {"description": "A size like 64m, 1g or 10% (of RAM); default 16m",
                     "type": "string", "pattern": _SIZE.pattern},
        },
    }

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self):
        return _engine().api_client(self.context)

    def observe(self, stack: str, wanted: Mapping[str, VolumeSpec]) -> list[LiveObject]:
        """One list call; a second only for wanted names the stack has under no driver at all."""
        engine = _engine()
        with engine.engine_errors("list ramdisk volumes"):
            found = owned_plus_wanted(
                self.api.volumes(filters=engine.owned_filter(stack, self.kind)).get("Volumes") or [], wanted,
                lambda names: self.api.volumes(filters={"name": names}).get("Volumes") or [],
                lambda volume: volume["Name"])
        # Unowned volumes under a wanted name are reported too, so the plan refuses to take them over.
        return [LiveObject(kind=Kind.VOLUME, name=v["Name"], id=v["Name"], labels=v.get("Labels") or {},
                           owned=is_owned(v.get("Labels"), stack, kind=self.kind), info=_info(v))
                for v in found.values()
                if not is_owned(v.get("Labels"), stack, kind=self.kind) or (v.get("Labels") or {}).get(DRIVER) == NAME]

    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> str:
        """A ``local`` volume mounting a tmpfs of ``size`` (default 16m); returns its id, its name (as observed)."""
        options = dict(spec.options)
        size = options.pop("size", DEFAULT_SIZE)
        if options:
            raise PermanentError(f"volume {spec.name}: ramdisk takes only the option 'size', not {', '.join(options)}")
        if not _SIZE.match(size):
            raise PermanentError(f"volume {spec.name}: size {size!r} is not a size like 64m, 1g or 10%")
        engine = _engine()
        with engine.engine_errors(f"create ramdisk volume {spec.name}"):
            self.api.create_volume(
                spec.name, driver="local", labels=dict(labels),
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={size}"})
        return spec.name

    def delete(self, live: LiveObject) -> None:
        """Remove the volume; one already gone is fine, one still mounted is a PermanentError."""
        with _engine().engine_errors(f"remove ramdisk volume {live.name}", missing_ok=True):
            self.api.remove_volume(live.name)


def _info(volume: dict) -> dict[str, str]:
    """What ``reconcile status`` shows for a ramdisk: its size."""
    size = (volume.get("Options") or {}).get("o", "").removeprefix("size=")
    return {"size": size} if size else {}


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Offer ``driver: ramdisk`` for volumes."""
    registry.add_storage_driver(NAME, RamdiskDriver)
