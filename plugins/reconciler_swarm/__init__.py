"""The ``swarm`` runtime: a stack's containers as Docker Swarm services (``runtime: swarm``).

Declared in the ``reconciler`` entry-point group by this distribution's
pyproject.toml, like the built-in Docker drivers. It talks to a Swarm
manager through the SDK's Docker engine kit (``reconciler.sdk.docker``), as the
docker plugin does: one client, every call counted. The driver module, and with it the Docker
SDK, is imported only when a run makes the driver: loading plugins stays cheap.
See docs/swarm.md.
"""
from __future__ import annotations

from reconciler.sdk import hookimpl

__all__ = ["RECONCILER_API_VERSION", "reconciler_register_drivers"]

RECONCILER_API_VERSION = 2


def _services(context):
    from .services import SwarmRuntimeDriver

    return SwarmRuntimeDriver(context)


def _refusals(spec):
    """What a service cannot honour, one message per field: the pure mapping, no Docker import.

    The runtime's one check of a spec: ``reconcile validate`` shows each at the
    container, and ``apply`` refuses the spec before any change.
    """
    from .mapping import service_problems

    return service_problems(spec)


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Register the ``swarm`` runtime; it schedules a container's replicas itself (one service per key)."""
    registry.add_runtime_driver("swarm", _services, schedules_replicas=True, check=_refusals)
