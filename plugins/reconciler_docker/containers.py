"""Containers through the engine's API: create, connect, start, wait, remove.

Observation reads the stack's containers with one filtered list call (a
daemon: one list of all containers per moment, shared by its stacks). Only for
containers whose config hash differs from the desired one does it read the
full inspect data, to explain the change (secret values are redacted by the
planner, which knows which keys are secret).

Configs and secrets become files on this host before the container that
mounts them is created (see :mod:`.files`), and ``prune_files`` removes those
no container of the stack mounts any more. What a spec becomes in the engine's
create call, and how its answers read back, is :mod:`.mapping` (pure).
"""
from __future__ import annotations

import os
import re
import time
from typing import Mapping, Sequence

import docker.errors

from reconciler.sdk import (
    ContainerSpec, LiveObject, PermanentError, PollTimeout, RecreateRequired, RuntimeDriver, poll_until,
)
from reconciler.sdk.docker import EngineDriver, engine_errors, is_ours, owned_filter
from reconciler.sdk.labels import CONFIG_HASH, KIND, NAME, REPLICA, STACK, is_owned

from .adopting import ContainerAdoption
from .eventstream import ContainerEvents
from .files import FileStore, is_local_engine
from .layerdiff import LayerChanges, layer_sizes
from .logs import ContainerLogs
from .pausing import ContainerPausing
from .mapping import (
    DEFAULT_NETWORK,
    container_arguments,
    endpoint_arguments,
    explainable,
    host_config_arguments,
    is_anonymous_volume,
    read_only_bind,
    status_exit_code,
    status_health,
)

# What the engine answers when it is asked to start a container whose containerd task (or runc
# state) outlived a dockerd that was killed while starting it: only a new container starts.
_STALE_TASK = re.compile(r"task [0-9a-f]{12,64}: already exists|container \"?[0-9a-f]{64}\"?: already exists"
                         r"|id already in use")
POLL_SECONDS = 0.25
REMOVAL_WAIT = 10.0  # seconds a create waits for the name a container being removed still holds
# A container the engine is restarting after a crash has no network sandbox: it cannot be renamed (a 404
# "sandbox <id> not found"), nor removed without being stopped first (a 409 "cannot remove a restarting container").
_RESTARTING = re.compile(r"sandbox [0-9a-f]+ not found|is restarting", re.I)
_BUSY = re.compile(r"cannot remove a (running|restarting|paused) container", re.I)
_PORT_TAKEN = re.compile(r"address already in use|port is already allocated", re.I)
# "listen tcp4 127.0.0.1:8080: bind: address already in use", "Bind for 0.0.0.0:8080 failed: port is already allocated"
_PORT = re.compile(r"(?:listen (?P<protocol>[a-z]+?)[46]? |Bind for )(?P<address>\S+?):? (?:bind|failed)")


def _name(container: dict) -> str:
    return container["Names"][0].lstrip("/")


class DockerRuntimeDriver(ContainerEvents, ContainerLogs, ContainerAdoption, ContainerPausing, EngineDriver,
                          RuntimeDriver):
    # -- observe ---------------------------------------------------------
    def observe(self, stack: str, wanted: Mapping[str, ContainerSpec]) -> list[LiveObject]:
        # A container run from one of the images we built carries its labels (kind image): not the stack's.
        with engine_errors("list containers"):
            found = self.listed(stack, wanted, owned=lambda: self.api.containers(
                all=True, filters=owned_filter(stack, self.kind)), everything=lambda: self.api.containers(all=True),
                lookup=self._named, name_of=_name)
        return self._live_objects(stack, found, wanted)

    def find_labelled(self, selectors: Sequence[str]) -> list[LiveObject]:
        """The containers carrying every one of ``selectors`` (a Compose project's, for adoption)."""
        with engine_errors("list containers"):
            found = self.api.containers(all=True, filters={"label": list(selectors)})
        return self._live_objects(self.context.stack, {_name(c): c for c in found}, {})

    def _live_objects(self, stack: str, found: Mapping[str, dict], wanted: Mapping[str, ContainerSpec]) -> list:
        out = []
        files = f"{self._files(stack).dir}/"
        for name, container in sorted(found.items()):
            if container.get("State") == "removing":  # on its way out (a `docker rm -f` in flight): a pass creates
                continue                              # its successor, which waits for the name (``create``)
            labels = container.get("Labels") or {}
            details = self._details(name, container, files)
            claimed = is_owned(labels, stack, kind=self.kind)
            if claimed and name in wanted and labels.get(CONFIG_HASH) != wanted[name].config_hash:
                details.update(self._explainable(name, files))
            if claimed and name in wanted and wanted[name].filesystem.watched and not wanted[name].read_only:
                details["filesystem"] = LayerChanges(self.context.engine_url or "", lambda: self.api).of(
                    container["Id"], name, container.get("Mounts"))
            status = container.get("Status", "")
            out.append(self.live(name, container["Id"], labels, state=container.get("State", ""),
                                 health=status_health(status), exit_code=status_exit_code(status),
                                 image_id=container.get("ImageID", ""), details=details))
        return out

    def writable_sizes(self, stack: str) -> dict[str, int]:
        """Each of the stack's containers' writable-layer size (``SizeRw``), by name: one list call (``status``)."""
        return layer_sizes(self.api, owned_filter(stack, self.kind))

    def _named(self, names: list[str]) -> list[dict]:
        pattern = "^/(" + "|".join(re.escape(n) for n in names) + ")$"
        return self.api.containers(all=True, filters={"name": pattern})

    @staticmethod
    def _details(name: str, container: dict, files: str) -> dict:
        networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
        mounts = container.get("Mounts") or []
        volumes = [m["Name"] for m in mounts if m.get("Type") == "volume" and m.get("Name")]
        details = {"networks": sorted(networks), "volumes": sorted(volumes), "status": container.get("Status", ""),
                   "default_network": DEFAULT_NETWORK}
        # A tmpfs empties when the host reboots: a container whose files went cannot start again.
        if any(str(m.get("Source", "")).startswith(files) and not os.path.exists(m["Source"]) for m in mounts):
            details["files_missing"] = True
        return details

    def _explainable(self, name: str, files: str) -> dict:
        """The non-derived values a plan shows as "old" for a changed container."""
        with engine_errors(f"inspect container {name}"):
            try:
                info = self.api.inspect_container(name)
            except docker.errors.NotFound:
                return {}
        return explainable(info, files + "configs/")

    # -- create / start --------------------------------------------------
    def create(self, spec: ContainerSpec, labels: Mapping[str, str]) -> str:
        """Create the container, attached to its networks; return its engine id."""
        files = self._file_mounts(spec)  # first: a remote engine is refused before any call
        api = self.api
        networks = list(spec.networks)
        inherited = self._anonymous_volumes(spec, labels)
        host_config = api.create_host_config(**host_config_arguments(spec, inherited=inherited, files=files))
        networking = None
        if networks:
            first, aliases = networks[0]
            networking = api.create_networking_config(
                {first: api.create_endpoint_config(**endpoint_arguments(spec, first, aliases))})
        with engine_errors(f"create container {spec.name}"):
            try:
                created = api.create_container(**container_arguments(spec, labels), host_config=host_config,
                                               networking_config=networking)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                if self._name_freed(spec.name):  # the name was held by a container being removed
                    created = api.create_container(**container_arguments(spec, labels), host_config=host_config,
                                                   networking_config=networking)
                else:  # a retry after the engine created it but failed to answer: carry on with that one
                    created = self._created_before(spec, labels)
                    if created is None:
                        raise
            attached = set(((created.get("NetworkSettings") or {}).get("Networks") or {}))
            for network, aliases in networks[1:]:
                if network not in attached:
                    api.connect_container_to_network(created["Id"], network,
                                                     **endpoint_arguments(spec, network, aliases))
        return created["Id"]

    def _anonymous_volumes(self, spec: ContainerSpec, labels: Mapping[str, str]) -> dict[str, str]:
        """Target → anonymous volume of the container this one succeeds, as Compose hands them on.

        The predecessor is the stack's container of the same key and replica
        (during a replacement it is renamed aside, still present). Costs one
        filtered list call, and only for a container with anonymous volumes.
        """
        targets = {m.target for m in spec.mounts if m.type == "volume" and not m.source}
        if not targets:
            return {}
        selector = [f"{label}={labels[label]}" for label in (STACK, KIND, NAME, REPLICA) if label in labels]
        with engine_errors(f"list the predecessors of container {spec.name}"):
            found = self.api.containers(all=True, filters={"label": selector})
        inherited: dict[str, str] = {}
        for container in sorted(found, key=lambda c: c.get("Created", 0)):  # the newest wins
            for mount in container.get("Mounts") or []:
                name, target = mount.get("Name"), mount.get("Destination")
                if mount.get("Type") == "volume" and target in targets and name and is_anonymous_volume(name):
                    inherited[target] = name
        return inherited

    def _file_mounts(self, spec: ContainerSpec) -> list[dict]:
        """Write the container's configs and secrets on this host; read-only bind mounts of them."""
        if not spec.files:
            return []
        if not is_local_engine(self.context.engine_url):
            url = self.context.engine_url or os.environ.get("DOCKER_HOST")
            raise PermanentError(
                f"container {spec.name} mounts configs or secrets: they are written as files on this machine and "
                f"bind-mounted, but the engine at {url} is remote and cannot see them; run the reconciler on the "
                "engine's host, against its unix socket")
        store = self._files(self.context.stack)
        return [read_only_bind(m.target, store.write(m)) for m in spec.files]

    def _files(self, stack: str) -> FileStore:
        return FileStore(stack, engine=self.context.engine_url)

    def prune_files(self, stack: str) -> None:
        """Remove the stack's config and secret files that no container of the stack mounts any more.

        Costs one list call, and none when the stack has no files on this host.
        """
        store = self._files(stack)
        if not is_local_engine(self.context.engine_url) or not store.exists():
            return
        with engine_errors("list containers"):
            containers = self.api.containers(all=True, filters=owned_filter(stack, self.kind))
        store.prune(m.get("Source", "") for c in containers for m in c.get("Mounts") or [] if m.get("Type") == "bind")

    def _name_freed(self, name: str, timeout: float = REMOVAL_WAIT) -> bool:
        """True once the container holding ``name`` is gone, if it was being removed (waiting ``timeout`` at most)."""
        def status() -> str:
            try:
                return (self.api.inspect_container(name).get("State") or {}).get("Status") or "?"
            except docker.errors.NotFound:
                return ""

        if status() != "removing":
            return False
        try:
            poll_until(lambda: status() != "removing", timeout=timeout, interval=POLL_SECONDS)
        except PollTimeout:
            return False
        return status() == ""

    def _created_before(self, spec: ContainerSpec, labels: Mapping[str, str]) -> dict | None:
        """The existing container named ``spec.name`` if it is exactly the one we meant to create."""
        try:
            existing = self.api.inspect_container(spec.name)
        except docker.errors.NotFound:
            return None
        return existing if is_ours((existing.get("Config") or {}).get("Labels"), labels) else None

    def start(self, name: str) -> None:
        """Start (or unpause) the container; one that never ran and cannot bind its port is removed;
        ``RecreateRequired`` when a crash left its task behind."""
        with engine_errors(f"start container {name}"):
            try:
                self.api.start(name)
            except docker.errors.APIError as exc:
                explanation = str(exc.explanation or "")
                # Asking first would cost every start a read; a paused container is rare.
                if exc.status_code == 409 and "paused" in explanation:
                    self.api.unpause(name)
                elif _PORT_TAKEN.search(explanation):
                    raise self._port_taken(name, explanation) from None
                elif _STALE_TASK.search(explanation):
                    raise RecreateRequired(f"start container {name}: {explanation} (the engine kept the task "
                                           f"of a start it did not finish, e.g. when it was killed)") from exc
                else:
                    raise

    def _port_taken(self, name: str, explanation: str) -> PermanentError:
        """The error for a start that found a host port taken, after removing the container if it never ran.

        Left in ``created``, it would hold its name and be "started" again on
        the next pass, failing the same way; removed, the next pass creates it
        afresh once the port is free. A container that ran before is kept.
        """
        found = _PORT.search(explanation)
        port, holder = "a host port it publishes", ""
        if found:
            port = f"host port {found['address']}" + (f"/{found['protocol']}" if found["protocol"] else "")
            holder = self._holder(name, found["address"], found["protocol"])
        fate = "the container was left stopped"
        try:
            state = self.api.inspect_container(name).get("State") or {}
            if state.get("Status") == "created" and str(state.get("StartedAt", "0001-")).startswith("0001-"):
                self.api.remove_container(name, v=False)
                fate = "the container never ran and was removed"
        except docker.errors.NotFound:
            fate = "the container is gone"
        return PermanentError(f"start container {name}: {port} is already in use ({fate}){holder}: {explanation}")

    def _holder(self, name: str, address: str, protocol: str | None) -> str:
        """Who publishes that host port ("; held by container web-1 of stack shop"), asked only after a start
        found it taken (one list call of the running containers); "" when that cannot be told."""
        host, _, number = address.rpartition(":")
        if not number.isdigit():
            return ""
        try:
            running = self.api.containers()
        except docker.errors.DockerException:
            return ""
        host = host.strip("[]")
        for container in running:
            for published in container.get("Ports") or []:
                if (published.get("PublicPort") == int(number) and _name(container) != name
                        and (not protocol or published.get("Type") == protocol)
                        and _same_address(published.get("IP") or "", host)):
                    stack = (container.get("Labels") or {}).get(STACK)
                    return f"; held by container {_name(container)}" + (f" of stack {stack}" if stack else "")
        return "; held by no container (a process on the engine's host holds it)"

    def delete(self, live: LiveObject) -> None:
        """Stop gracefully (the container's own stop signal and grace period), then remove.

        Anonymous volumes are kept, as named ones: data is never deleted implicitly.
        """
        with engine_errors(f"remove container {live.name}"):
            try:
                if live.state in ("running", "restarting", "paused"):
                    self.api.stop(live.id)
                try:
                    self.api.remove_container(live.id, v=False)
                except docker.errors.APIError as exc:
                    if exc.status_code != 409 or not _BUSY.search(str(exc.explanation or "")):
                        raise
                    # It runs again since it was observed (its restart policy brought it back): stop it now.
                    self.api.stop(live.id)
                    self.api.remove_container(live.id, v=False)
            except docker.errors.NotFound:
                pass

    # -- rolling replacements ---------------------------------------------
    def rename(self, container_id: str, name: str) -> None:
        """Rename the container; one the engine is restarting after a crash is stopped first.

        Such a container serves nobody, and the engine cannot rename it while
        it restarts; stopped, it renames, and a rollback can still start it again.
        """
        with engine_errors(f"rename container {container_id[:12]} to {name}"):
            try:
                self.api.rename(container_id, name)
            except docker.errors.APIError as exc:
                if not _RESTARTING.search(str(exc.explanation or "")):
                    raise
                self.api.stop(container_id)
                self.api.rename(container_id, name)

    def stop(self, container_id: str) -> None:
        with engine_errors(f"stop container {container_id[:12]}"):
            try:
                self.api.stop(container_id)
            except docker.errors.NotFound:
                pass

    def drain(self, container_id: str) -> None:
        """Disconnect it from its user-defined networks: its aliases resolve to its successor only.

        Established connections to it end; new lookups of the alias no longer
        return it, so clients stop reaching a container about to stop.
        """
        with engine_errors(f"drain container {container_id[:12]}"):
            try:
                networks = (self.api.inspect_container(container_id).get("NetworkSettings") or {}).get("Networks")
            except docker.errors.NotFound:
                return
            for network in networks or {}:
                if network not in ("bridge", "host", "none"):
                    try:
                        self.api.disconnect_container_from_network(container_id, network)
                    except docker.errors.NotFound:
                        pass

    def ready(self, name: str, *, healthcheck: bool, min_ready: float, timeout: float) -> None:
        """Healthy (with a healthcheck), else still running ``min_ready`` seconds after it started."""
        try:
            if healthcheck:
                self.wait(name, "healthy", timeout=timeout)
                return
            self.wait(name, "started", timeout=timeout)
            time.sleep(min_ready)
            with engine_errors(f"inspect container {name}"):
                state = self.api.inspect_container(name).get("State") or {}
            if not state.get("Running"):
                raise PermanentError(f"container {name} exited with code {state.get('ExitCode')} "
                                     f"{'within ' + format(min_ready, 'g') + 's' if min_ready else 'at once'}")
        except PermanentError as exc:
            raise PermanentError(f"{exc}{self._last_lines(name)}") from exc

    def _last_lines(self, name: str, count: int = 5) -> str:
        """The container's last log lines, to say why it failed (empty when there are none)."""
        try:
            text = self.api.logs(name, tail=count).decode(errors="replace").strip()
        except docker.errors.DockerException:
            return ""
        return "; last log lines:\n    " + "\n    ".join(text.splitlines()[-count:]) if text else ""

    # -- wait --------------------------------------------------------------
    def wait(self, name: str, condition: str, *, timeout: float) -> None:
        """Until the container is ``started``, ``healthy`` or ``completed``; ``PermanentError`` once it cannot be."""
        state: dict = {}

        def met() -> bool:
            with engine_errors(f"inspect container {name}"):
                try:
                    found = self.api.inspect_container(name).get("State") or {}
                except docker.errors.NotFound:
                    raise PermanentError(f"container {name} does not exist") from None
            state.clear()
            state.update(found)  # the last one seen, for the timeout's message
            return _condition_met(name, condition, state)

        try:
            poll_until(met, timeout=timeout, interval=POLL_SECONDS)
        except PollTimeout:
            raise PermanentError(f"container {name} was not {condition} within {timeout:g}s "
                                 f"(status {state.get('Status')}{_health_text(state)})") from None


def _same_address(published: str, wanted: str) -> bool:
    """Whether a container publishing on ``published`` holds ``wanted`` (an address on every interface holds all)."""
    anywhere = ("", "0.0.0.0", "::")
    return published == wanted or published in anywhere or wanted in anywhere


def _condition_met(name: str, condition: str, state: dict) -> bool:
    status = state.get("Status")
    exit_code = state.get("ExitCode")
    if condition == "started":
        return status in ("running", "exited") and not state.get("StartedAt", "0001-").startswith("0001-")
    if condition == "completed":
        if status == "exited" and exit_code != 0:
            raise PermanentError(f"container {name} exited with code {exit_code}, not completed")
        return status == "exited"
    health = (state.get("Health") or {}).get("Status")
    if health is None:
        raise PermanentError(f"container {name} has no healthcheck, so it can never be healthy")
    if status == "exited":
        raise PermanentError(f"container {name} exited with code {exit_code} before it was healthy")
    if health == "unhealthy":  # the engine says so only after its retries ran out (as compose)
        raise PermanentError(f"container {name} is unhealthy{_last_probe(state)}")
    return health == "healthy"


def _last_probe(state: dict) -> str:
    log = (state.get("Health") or {}).get("Log") or []
    output = (log[-1].get("Output") or "").strip().splitlines() if log else []
    return f": {output[0][:200]}" if output else ""


def _health_text(state: dict) -> str:
    health = (state.get("Health") or {}).get("Status")
    return f", health {health}" if health else ""
