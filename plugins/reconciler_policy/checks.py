"""Judging a desired state against a policy: pure functions over frozen specs.

The checks look at what the spec asks for, not at what the plan changes: a
container already running with a denied setting is still reported, so tightening
a policy makes the next apply refuse until the spec complies. Replicas share
their config, so each violation is reported once per container key.

Bind sources are resolved (symlinks, ``..``) on the machine the reconciler runs
on, which is the engine's host for a local engine. A violation of a mount names
the ``file:line:col`` the spec wrote it at (``Mount.origin``), after the
container, so the author of a Compose file or a stack spec is sent to the line
to change.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

from reconciler.sdk import ContainerSpec, DesiredState, ImageSpec, inside

from .rules import Policy

__all__ = ["DOCKER_SOCKETS", "find_violations", "container_violations", "names_registry", "registry_of"]

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
DEFAULT_REGISTRY = "docker.io"
_REGISTRY_ALIASES = {"index.docker.io": DEFAULT_REGISTRY}


def find_violations(policy: Policy, desired: DesiredState) -> list[str]:
    """Every violation in ``desired``, one line each: ``container KEY (NAMES): [FILE:LINE:COL: ]what and which rule``.

    The position is where the spec wrote a mount (the container's other fields have none to give).
    """
    by_key: dict[str, list[ContainerSpec]] = {}
    for spec in sorted(desired.containers.values(), key=lambda s: (s.key, s.replica, s.name)):
        by_key.setdefault(spec.key, []).append(spec)
    lines: list[str] = []
    for key, replicas in sorted(by_key.items()):
        found: list[tuple[str, str]] = []
        for spec in replicas:
            found.extend(v for v in container_violations(policy, spec, desired.images) if v not in found)
        names = ", ".join(spec.name for spec in replicas)
        lines.extend(f"container {key} ({names}): {origin + ': ' if origin else ''}{violation}"
                     for origin, violation in found)
    return lines


def container_violations(policy: Policy, spec: ContainerSpec,
                         images: Mapping[str, ImageSpec]) -> list[tuple[str, str]]:
    """What one container replica does that ``policy`` forbids: (where the spec says it, or "", what and which
    rule)."""
    found: list[str] = []
    if policy.deny_privileged and getattr(spec, "privileged", False):
        found.append("privileged mode is denied by policy rule deny_privileged")
    if policy.deny_privileged:
        found.extend(f"{what} is denied by policy rule deny_privileged" for what in _privileges(spec))
    if policy.deny_host_network and getattr(spec, "network_mode", None) == "host":
        found.append("network_mode host is denied by policy rule deny_host_network")
    located = [("", violation) for violation in found]
    for mount in spec.mounts:
        if mount.type == "bind":
            located.extend((mount.origin, v) for v in _bind_violations(policy, mount.source, mount.target))
    if policy.allowed_registries is not None:
        located.extend(("", v) for v in _registry_violations(policy.allowed_registries, spec, images))
    return located


# Capabilities that amount to privileged mode (mounts, devices, kernel modules, raw I/O, ptrace of the host's).
_PRIVILEGED_CAPS = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH"})


def _privileges(spec: ContainerSpec) -> list[str]:
    """The settings besides ``privileged`` that give a container the host's powers, as shown in a violation."""
    found = [f"cap_add {cap}" for cap in getattr(spec, "cap_add", ())
             if cap.upper().removeprefix("CAP_") in _PRIVILEGED_CAPS]
    found += [f"device {device.split(':')[0]}" for device in getattr(spec, "devices", ())]
    found += [f"security_opt {opt}" for opt in getattr(spec, "security_opt", ())
              if "unconfined" in opt or opt.replace(":", "=") == "label=disable"]
    found += [f"{field} host" for field in ("pid", "ipc") if getattr(spec, field, None) == "host"]
    return found


def _bind_violations(policy: Policy, source: str, target: str) -> list[str]:
    found: list[str] = []
    resolved = os.path.realpath(source)
    shown = f"bind mount {source}" + (f" (resolves to {resolved})" if resolved != source else "") + f" at {target}"
    if policy.deny_docker_socket and _exposes_docker_socket(source):
        found.append(f"volumes: {shown} exposes the Docker socket; denied by policy rule deny_docker_socket")
    sources = {os.path.normpath(source), resolved}
    denied = [root for root in policy.denied_host_paths
              if any(inside(src, form) or inside(form, src) for src in sources for form in _forms(root))]
    if denied:  # inside a denied root, or above one (mounting / exposes /etc): denied wins over allowed
        found.append(f"volumes: {shown} exposes {', '.join(denied)}; denied by policy rule denied_host_paths")
    allowed = policy.allowed_host_paths
    if allowed is not None and not any(inside(resolved, os.path.realpath(root)) for root in allowed):
        roots = ", ".join(allowed) or "none"
        found.append(f"volumes: {shown} is outside the paths allowed by policy rule allowed_host_paths ({roots})")
    return found


def _forms(path: str) -> set[str]:
    """``path`` as written (normalized) and with its links resolved: a rule matches either spelling."""
    return {os.path.normpath(path), os.path.realpath(path)}


def _exposes_docker_socket(source: str) -> bool:
    """True when ``source`` is the engine's socket or a directory above it, in any spelling."""
    return any(inside(socket, src) for socket in _socket_paths() for src in _forms(source))


def _socket_paths() -> set[str]:
    paths = set(DOCKER_SOCKETS)
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        paths.add(host[len("unix://"):])
    return {form for path in paths for form in _forms(path)}


def _registry_violations(allowed: Iterable[str], spec: ContainerSpec, images: Mapping[str, ImageSpec]) -> list[str]:
    image = images.get(spec.image_key) if spec.image_key else None
    if image is not None and image.is_build and not names_registry(spec.image_ref):
        return []  # built here, not pulled: no registry is involved
    registry = registry_of(spec.image_ref)
    permitted = {_canonical(r) for r in allowed}
    if registry in permitted:
        return []
    listed = ", ".join(allowed) or "none"
    return [f"image: {spec.image_ref} comes from registry {registry}, which policy rule allowed_registries "
            f"does not allow (allowed: {listed})"]


def names_registry(ref: str) -> bool:
    """True when an image reference starts with an explicit registry host (docker's rules)."""
    first, slash, _ = ref.partition("/")
    if not slash:
        return False
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def registry_of(ref: str) -> str:
    """The registry an image reference pulls from: its first component if that is a host, else docker.io.

    ``busybox``, ``library/busybox`` and ``busybox@sha256:...`` are docker.io;
    ``registry.local:5000/app:1`` is registry.local:5000; ``localhost/app`` is localhost.
    """
    if not names_registry(ref):
        return DEFAULT_REGISTRY
    return _canonical(ref.partition("/")[0])


def _canonical(registry: str) -> str:
    name = registry.strip().lower()
    return _REGISTRY_ALIASES.get(name, name)
