"""Pausing a container for a consistent snapshot of its volumes (a start-first release, issue 26).

A release that snapshots a running container's volumes before replacing it
start-first freezes the container (the cgroup freezer, ``docker pause``)
rather than stopping it: its processes write nothing while the storage driver
copies the volume, and clients' connections stay open, their requests merely
wait. Kept beside ``containers.py`` as a mixin of the runtime driver.
"""
from __future__ import annotations

from typing import Any

import docker.errors

from reconciler.sdk.docker import engine_errors

__all__ = ["ContainerPausing"]


class ContainerPausing:
    """``RuntimeDriver.pause`` and ``unpause`` through the engine's API."""

    api: Any

    def pause(self, container_id: str) -> None:
        """Freeze the container; one already paused is fine."""
        with engine_errors(f"pause container {container_id[:12]}"):
            try:
                self.api.pause(container_id)
            except docker.errors.APIError as exc:
                if "already paused" not in str(exc.explanation or exc):
                    raise

    def unpause(self, container_id: str) -> None:
        """Let the container run again; one not paused (or gone) is fine."""
        with engine_errors(f"unpause container {container_id[:12]}"):
            try:
                self.api.unpause(container_id)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "is not paused" not in str(exc.explanation or exc):
                    raise
