"""Built-in drivers for the Docker engine, registered like any third-party plugin.

Declared in the ``reconciler`` entry-point group by this distribution's
pyproject.toml; the core has no idea these exist until pluggy loads them.
"""
from __future__ import annotations

from reconciler.sdk import hookimpl

from .schemas import HOSTDIR_OPTIONS, LOCAL_VOLUME_OPTIONS, NO_OPTIONS

__all__ = ["RECONCILER_API_VERSION", "reconciler_register_drivers"]

RECONCILER_API_VERSION = 2

NETWORK_DRIVERS = ("bridge", "overlay", "macvlan", "ipvlan")


def _images(context):
    from .images import DockerRegistryDriver

    return DockerRegistryDriver(context)


def _archive(context):
    from .archive import ArchiveRegistryDriver

    return ArchiveRegistryDriver(context)


def _networks(context):
    from .networks import DockerNetworkDriver

    return DockerNetworkDriver(context)


def _volumes(context):
    from .volumes import DockerVolumeDriver

    return DockerVolumeDriver(context)


def _hostdir(context):
    from .hostdir import HostDirDriver

    return HostDirDriver(context)


def _hostdir_check(spec):
    """A hostdir volume's problems (its options), for ``reconcile validate`` and ``apply``: no Docker import."""
    from .hostpaths import option_problems

    return option_problems(spec.options)


def _containers(context):
    from .containers import DockerRuntimeDriver

    return DockerRuntimeDriver(context)


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Register the engine's own image, network, volume and container handling."""
    registry.add_registry_driver("docker", _images, schema=NO_OPTIONS)
    registry.add_registry_driver("archive", _archive, schema=NO_OPTIONS)
    for name in NETWORK_DRIVERS:
        registry.add_network_driver(name, _networks)  # the engine's network drivers each take their own
    registry.add_storage_driver("local", _volumes, schema=LOCAL_VOLUME_OPTIONS, takes_snapshots=True)
    registry.add_storage_driver("hostdir", _hostdir, schema=HOSTDIR_OPTIONS, check=_hostdir_check)
    registry.add_runtime_driver("docker", _containers)
