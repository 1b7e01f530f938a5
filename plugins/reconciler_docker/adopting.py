"""The Docker drivers' ``differences``: read what the engine holds, then judge it with :mod:`.adoption`.

Why a module of its own: adoption asks each driver whether an object it did
not create (a Compose project's container, network or volume) already is what
the spec says. The verdict is pure (``adoption``); the reads it needs (one
inspect of the object, and of a container's image) are the same for every
Docker driver, so they live here as small mixins rather than in the drivers'
own modules. An object that is gone has no verdict (None): it is created anew.
"""
from __future__ import annotations

from typing import Any, Callable

from reconciler.sdk import ContainerSpec, LiveObject, NetworkSpec, VolumeSpec
from reconciler.sdk.docker import engine_errors

from .adoption import container_differences, network_differences, volume_differences

__all__ = ["ContainerAdoption", "NetworkAdoption", "VolumeAdoption"]


def _inspect(action: str, read: Callable[[], dict]) -> dict | None:
    """The engine's inspect data, or None when it has no such object."""
    with engine_errors(action, missing_ok=True):
        return read()
    return None


class ContainerAdoption:
    """``differences`` for the runtime driver: two reads, the container's inspect and its image's."""

    api: Any

    def differences(self, spec: ContainerSpec, live: LiveObject) -> list[str] | None:
        """The spec's fields the adopted container ``live`` does not match; [] when it can be kept as it is."""
        info = _inspect(f"inspect container {live.name}", lambda: self.api.inspect_container(live.id))
        if info is None:
            return None
        image = _inspect(f"inspect the image of container {live.name}",
                         lambda: self.api.inspect_image(info.get("Image") or live.image_id))
        return container_differences(spec, info, image)


class NetworkAdoption:
    """``differences`` for the network driver: one read of the network."""

    api: Any

    def differences(self, spec: NetworkSpec, live: LiveObject) -> list[str] | None:
        """The spec's fields the adopted network ``live`` does not match (driver, flags, options, pool, labels)."""
        info = _inspect(f"inspect network {live.name}", lambda: self.api.inspect_network(live.id))
        return None if info is None else network_differences(spec, info)


class VolumeAdoption:
    """``differences`` for the ``local`` storage driver: one read of the volume."""

    api: Any

    def differences(self, spec: VolumeSpec, live: LiveObject) -> list[str] | None:
        """The spec's fields the adopted volume ``live`` does not match (driver, options, labels)."""
        info = _inspect(f"inspect volume {live.name}", lambda: self.api.inspect_volume(live.name))
        return None if info is None else volume_differences(spec, info)
