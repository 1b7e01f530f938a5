"""reconciler-sandbox: a container runtime that runs on Docker but refuses what escapes a container.

A stack picks it with ``runtime: sandbox``. Containers run exactly as with the
built-in ``docker`` runtime, which this one wraps, except that ``create`` refuses
(a ``PermanentError``: that container fails, the rest of the apply goes on)
privileged containers, the host's network or PID namespace, and bind mounts of
the Docker socket. It shows the runtime driver contract in one small module:
every method is the wrapped runtime's, so start, wait, rolling replacements and
event following all keep working. The wrapped runtime is found by its name
(``registry.lookup``), not imported: a plugin imports only ``reconciler.sdk``.
"""
from __future__ import annotations

from typing import Any, Collection, Iterator, Mapping

from reconciler.sdk import ContainerSpec, DriverContext, Kind, LiveObject, PermanentError, RuntimeDriver, hookimpl

__all__ = ["RECONCILER_API_VERSION", "SandboxRuntime", "reconciler_register_drivers", "refusals"]
__version__ = "0.1.0"

RECONCILER_API_VERSION = 2
NAME = "sandbox"
WRAPPED = "docker"  # the runtime this one wraps
_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


def refusals(spec: ContainerSpec) -> list[str]:
    """Why ``spec`` may not run in the sandbox (empty: it may)."""
    out = []
    if spec.privileged:
        out.append("privileged: true")
    if spec.network_mode == "host":
        out.append("network_mode: host")
    out += [f"a bind mount of the Docker socket ({m.source})" for m in spec.mounts
            if m.type == "bind" and m.source in _SOCKETS]
    return out


class SandboxRuntime(RuntimeDriver):
    """The ``docker`` runtime (``inner``, made for the same ``context``), minus what escapes a container."""

    def __init__(self, context: DriverContext, inner: RuntimeDriver) -> None:
        self.context = context
        self.inner = inner

    def create(self, spec: ContainerSpec, labels: Mapping[str, str]) -> str:
        """Refuse what escapes the sandbox; create the rest as the docker runtime does."""
        refused = refusals(spec)
        if refused:
            raise PermanentError(f"container {spec.name}: the sandbox runtime refuses {', '.join(refused)}")
        return self.inner.create(spec, labels)

    # Everything else is the docker runtime's.
    def observe(self, stack: str, wanted: Mapping[str, ContainerSpec]) -> list[LiveObject]:
        return self.inner.observe(stack, wanted)

    def delete(self, live: LiveObject) -> None:
        self.inner.delete(live)

    def start(self, name: str) -> None:
        self.inner.start(name)

    def wait(self, name: str, condition: str, *, timeout: float) -> None:
        self.inner.wait(name, condition, timeout=timeout)

    def ready(self, name: str, **kwargs: Any) -> None:
        self.inner.ready(name, **kwargs)

    def rename(self, container_id: str, name: str) -> None:
        self.inner.rename(container_id, name)

    def stop(self, container_id: str) -> None:
        self.inner.stop(container_id)

    def drain(self, container_id: str) -> None:
        self.inner.drain(container_id)

    def engine_id(self) -> str | None:
        return self.inner.engine_id()

    def prune_files(self, stack: str) -> None:
        self.inner.prune_files(stack)

    def events(self, stack: str, names: Collection[str], stop: Any) -> Iterator[str]:
        return self.inner.events(stack, names, stop)


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Offer ``runtime: sandbox``: the ``docker`` runtime, made when a run needs it, wrapped."""
    inner = registry.lookup(Kind.CONTAINER, WRAPPED)
    registry.add_runtime_driver(NAME, lambda context: SandboxRuntime(context, inner(context)))
