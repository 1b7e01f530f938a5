"""Built-in drivers for the Docker engine, registered like any third-party plugin.

Declared in the ``reconciler`` entry-point group by this distribution's
pyproject.toml; the core has no idea these exist until pluggy loads them.
"""
from __future__ import annotations

from reconciler.hookspecs import hookimpl

__all__ = ["reconciler_register_drivers"]

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


def _hostdir_options(options):
    """The hostdir options' problems, for ``reconcile validate``: no Docker import."""
    from .hostpaths import option_problems

    return option_problems(options)


def _containers(context):
    from .containers import DockerRuntimeDriver

    return DockerRuntimeDriver(context)


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Register the engine's own image, network, volume and container handling."""
    registry.add_registry_driver("docker", _images)
    registry.add_registry_driver("archive", _archive)
    for name in NETWORK_DRIVERS:
        registry.add_network_driver(name, _networks)
    registry.add_storage_driver("local", _volumes)
    registry.add_storage_driver("hostdir", _hostdir, options=_hostdir_options)
    registry.add_runtime_driver("docker", _containers)
