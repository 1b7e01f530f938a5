"""The ``swarm`` runtime: a stack's containers as Swarm services, through a manager's engine API.

One service per container key (the core gives this runtime one spec per key,
``replicas`` set: ``RuntimeDriver.schedules_replicas``), named
``<stack>_<key>`` and carrying the core's ownership labels on the service.
The Swarm schedules, restarts and reschedules the tasks: a task that dies is
its job, never a change here. What the reconciler repairs is the service
itself: a config changed in the spec (its config hash) or edited by hand
(``docker service update``, found by comparing the live ``Spec`` with the one
we would send: ``mapping.drifted_fields``), both with a ``service update``,
which the Swarm rolls out by the container's ``update:`` policy.

Observation costs nothing on an engine that manages no Swarm (the ``docker
info`` made when the run connected says so). On a manager, a swarm stack's
costs three list calls made at once (services, tasks and networks, each
filtered by the stack's label but the last); another stack's one
(services), and the other two only when it still owns services.
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Collection, Iterator, Mapping

import docker.errors

from reconciler.sdk import (
    ContainerSpec, EngineEvent, FileMount, Kind, LiveObject, PermanentError, PollTimeout, RuntimeDriver, fresh_read,
    owned_plus_wanted, poll_until, stream_opened,
)
from reconciler.sdk.docker import (
    EngineDriver, engine_errors, engine_swarm, follow_events, is_ours, owned_filter,
)
from reconciler.sdk.labels import CONFIG_HASH, KIND, NAME, STACK, is_owned, owner_selector

from .mapping import drifted_fields, file_object_name, service_spec

__all__ = ["SwarmRuntimeDriver"]

POLL_SECONDS = 0.5
_NETWORKS_KEY = "reconciler_swarm.networks"


def _event_service(event: dict, names: Collection[str]) -> str | None:
    """The name of the stack's service an event is about, or None."""
    name = ((event.get("Actor") or {}).get("Attributes") or {}).get("name", "")
    return name if name in names else None


def _service_event(event: dict) -> EngineEvent | None:
    """A service event as an ``EngineEvent``: a service's events carry no labels, so it is routed by name."""
    actor = event.get("Actor") or {}
    name, action = (actor.get("Attributes") or {}).get("name", ""), event.get("Action") or ""
    return EngineEvent(Kind.CONTAINER, name, action, id=actor.get("ID", "")) if name and action else None


def _name(service: dict) -> str:
    return service["Spec"]["Name"]


class SwarmRuntimeDriver(EngineDriver, RuntimeDriver):
    """Containers as Swarm services on the manager the run's engine URL reaches."""

    schedules_replicas = True
    #: A service's tasks fail, restart and move with no event the daemon follows: a daemon's resyncs look.
    changes_reported = False

    # -- observe -------------------------------------------------------------
    def observe(self, stack: str, wanted: Mapping[str, ContainerSpec]) -> list[LiveObject]:
        """The stack's services, with their tasks, drift and update progress.

        No engine call at all when the engine manages no Swarm and the stack
        wants no service (a docker stack); an error when it wants some.
        """
        if not self._manager():
            if wanted:
                raise PermanentError(self._not_a_manager())
            return []
        if wanted:  # a swarm stack: the three lists at once (tasks carry their service's labels)
            with ThreadPoolExecutor(2, thread_name_prefix="swarm-observe") as pool:
                tasks_listed = pool.submit(self._tasks, stack)
                networks_listed = pool.submit(self._network_names)
                found = self._services(stack, wanted)
                tasks, networks = tasks_listed.result(), networks_listed.result()
        else:  # a stack of another runtime: one list, to prune the services it may have left behind
            found = self._services(stack, wanted)
            owned = any(is_owned(s["Spec"].get("Labels"), stack, kind=self.kind) for s in found.values())
            tasks, networks = (self._tasks(stack), self._network_names()) if owned else ([], {})
        out = []
        for name, service in sorted(found.items()):
            labels = service["Spec"].get("Labels") or {}
            mine = [t for t in tasks if t.get("ServiceID") == service["ID"]]
            out.append(self._live(stack, service, labels, mine, networks, wanted.get(name)))
        return out

    def _live(self, stack: str, service: dict, labels: Mapping[str, str], tasks: list[dict],
              networks: Mapping[str, str], spec: ContainerSpec | None) -> LiveObject:
        live_spec = _named_networks(service["Spec"], networks)
        details: dict[str, Any] = {
            "networks": sorted(n["Target"] for n in live_spec["TaskTemplate"].get("Networks") or []),
            "volumes": sorted(m["Source"] for m in live_spec["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
                              if m.get("Type") == "volume" and m.get("Source")),
        }
        files = live_spec["TaskTemplate"]["ContainerSpec"].get("Configs") or []
        prefix = f"{stack}_"
        details["configs"] = {name.rpartition("_")[0][len(prefix):]: name.rpartition("_")[2]  # for the plan's "old"
                              for name in (c.get("ConfigName", "") for c in files) if name.startswith(prefix)}
        claimed = is_owned(labels, stack, kind=self.kind)
        if spec is not None and claimed and labels.get(CONFIG_HASH) == spec.config_hash:
            # The service claims the spec's config: whatever differs from what we would send was edited by hand.
            want = service_spec(spec, labels, stack=stack)
            drift = drifted_fields(want, live_spec)
            if drift:
                details["drift"] = drift
        info, health = _task_info(service, tasks)
        return self.live(_name(service), service["ID"], labels, state="running", health=health,
                         details=details, info=info)

    def events(self, stack: str, names: Collection[str], stop: threading.Event) -> Iterator[str]:
        """The manager's service events, as the names of the stack's services that changed.

        A hand ``docker service update`` is repaired at once by ``reconcile
        watch`` and the daemon, not at the next resync. On an engine that
        manages no Swarm nothing can happen: it waits for ``stop`` without a call.
        """
        if not self._manager():
            stream_opened(stop)  # nothing to follow, so nothing can be missed
            stop.wait()
            return
        yield from follow_events(self.api, ["service"], stop, lambda event: _event_service(event, names),
                                 source="manager")

    def engine_events(self, stop: threading.Event) -> Iterator[EngineEvent]:
        """Every service event of the manager (``ObjectDriver.engine_events``); nothing on an engine with no Swarm."""
        if not self._manager():
            stream_opened(stop)  # nothing to follow, so nothing can be missed
            stop.wait()
            return
        yield from follow_events(self.api, ["service"], stop, _service_event, source="manager")

    def _services(self, stack: str, wanted: Mapping[str, ContainerSpec]) -> dict[str, dict]:
        with engine_errors("list services"):
            return owned_plus_wanted(self.api.services(filters=owned_filter(stack, self.kind)), wanted,
                                     lambda names: self.api.services(filters={"name": names}), _name)

    def _tasks(self, stack: str) -> list[dict]:
        """The tasks of the stack's services: a task carries its service's labels.

        Selected by the stack's label alone: ``observe`` pairs each task with an
        owned service by its ``ServiceID``, which is what decides.
        """
        with engine_errors("list tasks"):
            return self.api.tasks(filters={"label": [owner_selector(stack)]})

    def _network_names(self) -> dict[str, str]:
        """Network ID → name, from the one network list of this pass, or of this moment (``fresh_read``).

        Live services name networks by ID.
        """
        def fetch() -> dict[str, str]:
            with engine_errors("list networks"):
                return {n["Id"]: n["Name"] for n in self.api.networks()}

        return fresh_read(self.context, _NETWORKS_KEY, fetch)

    def _manager(self) -> bool:
        return bool(engine_swarm(self.context).get("ControlAvailable"))

    def _not_a_manager(self) -> str:
        state = engine_swarm(self.context).get("LocalNodeState") or "inactive"
        where = self.context.engine_url or "the default engine"
        return (f"runtime swarm: {where} is not a Swarm manager (its swarm state: {state}); point --engine at a "
                f"manager, or make this engine one with `docker swarm init`")

    def engine_id(self) -> str | None:
        """The swarm, ``swarm:<cluster ID>``, on a manager (None elsewhere): a swarm stack's lock and record.

        Every manager of one swarm answers the same, so runs reaching it through
        different managers (a daemon failing over) take one lock and share one
        record. Read from the ``docker info`` made when the run connected: no call.
        """
        swarm = engine_swarm(self.context)
        cluster = (swarm.get("Cluster") or {}).get("ID") if swarm.get("ControlAvailable") else None
        return f"swarm:{cluster}" if cluster else None

    # -- create / update / delete ---------------------------------------------
    def create(self, spec: ContainerSpec, labels: Mapping[str, str]) -> str:
        """Create the service (its configs and secrets first); the Swarm starts its tasks.

        What a service cannot honour (``mapping.service_problems``, this runtime's
        registered check) was refused before any change: ``apply`` runs it.
        """
        body = service_spec(spec, labels, stack=self.context.stack, file_ids=self._file_objects(spec))
        with engine_errors(f"create service {spec.name}"):
            try:
                created = self.api.create_service(**_arguments(body))
            except docker.errors.APIError as exc:
                existing = self._created_before(spec.name, labels) if exc.status_code == 409 else None
                if existing is None:
                    raise
                return existing
        return created["ID"]

    def update(self, spec: ContainerSpec, live: LiveObject, labels: Mapping[str, str]) -> str:
        """``service update`` with the whole spec: the Swarm rolls the tasks over by its UpdateConfig."""
        body = service_spec(spec, labels, stack=self.context.stack, file_ids=self._file_objects(spec))
        with engine_errors(f"update service {spec.name}"):
            current = self.api.inspect_service(live.id)
            if not is_owned((current.get("Spec") or {}).get("Labels"), self.context.stack, kind=self.kind):
                raise PermanentError(f"service {spec.name} is not managed by stack {self.context.stack}")
            body["TaskTemplate"]["ForceUpdate"] = current["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
            self.api.update_service(current["ID"], current["Version"]["Index"], fetch_current_spec=False,
                                    **_arguments(body))
        return current["ID"]

    def _created_before(self, name: str, labels: Mapping[str, str]) -> str | None:
        try:
            existing = self.api.inspect_service(name)
        except docker.errors.NotFound:
            return None
        return existing["ID"] if is_ours(existing["Spec"].get("Labels"), labels) else None

    def start(self, name: str) -> None:
        """Nothing to do: the Swarm starts a service's tasks itself (``wait`` follows them)."""

    def delete(self, live: LiveObject) -> None:
        """Remove the service; the Swarm stops its tasks. A service already gone is fine."""
        with engine_errors(f"remove service {live.name}", missing_ok=True):
            self.api.remove_service(live.id)

    # -- configs and secrets ------------------------------------------------------
    def _file_objects(self, spec: ContainerSpec) -> dict[str, str]:
        """The Swarm configs and secrets ``spec`` mounts, made where missing: object name → ID."""
        ids: dict[str, str] = {}
        for kind, mounts in (("config", [m for m in spec.files if not m.secret]),
                             ("secret", [m for m in spec.files if m.secret])):
            if mounts:
                ids.update(self._ensure_files(kind, mounts))
        return ids

    def _ensure_files(self, kind: str, mounts: list[FileMount]) -> dict[str, str]:
        stack = self.context.stack
        names = sorted({file_object_name(stack, m) for m in mounts})
        listing, create = ((self.api.configs, self.api.create_config) if kind == "config"
                           else (self.api.secrets, self.api.create_secret))
        with engine_errors(f"list {kind}s"):
            ids = {o["Spec"]["Name"]: o["ID"] for o in listing(filters={"name": names}) if o["Spec"]["Name"] in names}
        for mount in mounts:
            name = file_object_name(stack, mount)
            if name in ids:
                continue
            labels = {STACK: stack, KIND: kind, NAME: mount.name}
            with engine_errors(f"create {kind} {name}"):  # the content never reaches a message
                try:
                    ids[name] = create(name, mount.content.reveal(), labels=labels)["ID"]
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
                    ids[name] = next(o["ID"] for o in listing(filters={"name": [name]}) if o["Spec"]["Name"] == name)
        return ids

    def prune_files(self, stack: str) -> None:
        """Remove the stack's config and secret versions no service of the stack references.

        No call on an engine that manages no Swarm.
        """
        if not self._manager():
            return
        with engine_errors("list services"):
            services = self.api.services(filters=owned_filter(stack, self.kind))
        used = set()
        for service in services:
            container = service["Spec"]["TaskTemplate"]["ContainerSpec"]
            used |= {c.get("ConfigName") for c in container.get("Configs") or []}
            used |= {s.get("SecretName") for s in container.get("Secrets") or []}
        for kind, listing, remove in (("config", self.api.configs, self.api.remove_config),
                                      ("secret", self.api.secrets, self.api.remove_secret)):
            with engine_errors(f"list {kind}s"):
                objects = listing(filters=owned_filter(stack, kind))
            for obj in objects:
                if obj["Spec"]["Name"] not in used:
                    with engine_errors(f"remove {kind} {obj['Spec']['Name']}"):
                        try:
                            remove(obj["ID"])
                        except docker.errors.NotFound:
                            pass
                        except docker.errors.APIError as exc:
                            if "in use" not in str(exc.explanation or ""):  # a task still holds it: next time
                                raise

    # -- wait ------------------------------------------------------------------
    def wait(self, name: str, condition: str, *, timeout: float) -> None:
        """Until every replica's task runs (healthy: the Swarm counts a task with a healthcheck running once healthy)."""
        if condition == "completed":
            raise PermanentError(f"service {name} never completes: a Swarm service runs until it is removed")
        seen: dict = {}

        def converged() -> bool:
            with engine_errors(f"inspect service {name}"):
                try:
                    service = self.api.inspect_service(name)
                except docker.errors.NotFound:
                    raise PermanentError(f"service {name} does not exist") from None
                tasks = self.api.tasks(filters={"service": [name]})
            seen["info"], _ = _task_info(service, tasks)  # the last one seen, for the timeout's message
            wanted = (service["Spec"].get("Mode") or {}).get("Replicated", {}).get("Replicas", 1)
            return _running(tasks) >= wanted and service.get("UpdateStatus", {}).get("State") != "updating"

        try:
            poll_until(converged, timeout=timeout, interval=POLL_SECONDS)
        except PollTimeout:
            info = seen["info"]
            error = f", {info['task_error']}" if "task_error" in info else ""
            raise PermanentError(f"service {name} was not {condition} within {timeout:g}s "
                                 f"(tasks {info.get('tasks')}{error})") from None


def _arguments(body: dict) -> dict:
    """The SDK's create_service/update_service keywords for a ServiceSpec body (plain dicts are sent as they are)."""
    return {"task_template": body["TaskTemplate"], "name": body["Name"], "labels": body["Labels"],
            "mode": body["Mode"], "update_config": body["UpdateConfig"], "rollback_config": body["RollbackConfig"],
            "endpoint_spec": body["EndpointSpec"]}


def _named_networks(spec: dict, names: Mapping[str, str]) -> dict:
    """The live spec with its networks' IDs replaced by their names, as ``service_spec`` names them."""
    template = dict(spec.get("TaskTemplate") or {})
    template.setdefault("ContainerSpec", {})
    template["Networks"] = [{**n, "Target": names.get(n.get("Target", ""), n.get("Target", ""))}
                            for n in template.get("Networks") or []]
    return {**spec, "TaskTemplate": template}


def _running(tasks: list[dict]) -> int:
    return sum(1 for t in tasks if t.get("DesiredState") == "running" and (t.get("Status") or {}).get("State") == "running")


def _task_info(service: dict, tasks: list[dict]) -> tuple[dict[str, str], str]:
    """What ``status`` shows of a service (replicas running per node, the last task error, the
    rolling update's state), and its health: ``degraded`` while fewer tasks run than wanted."""
    wanted = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
    running = _running(tasks)
    nodes = Counter(t.get("NodeID", "")[:12] for t in tasks
                    if t.get("DesiredState") == "running" and (t.get("Status") or {}).get("State") == "running")
    info = {"tasks": f"{running}/{wanted} running",
            "nodes": ", ".join(f"{node}: {count}" for node, count in sorted(nodes.items())) or "none"}
    failed = [t for t in tasks if (t.get("Status") or {}).get("Err")]
    if failed:
        last = max(failed, key=lambda t: (t.get("Status") or {}).get("Timestamp", ""))
        info["task_error"] = f"{last['Status']['Err']} ({last['Status'].get('State')})"[:200]
    update = service.get("UpdateStatus") or {}
    if update.get("State"):
        info["update"] = update["State"] + (f": {update['Message']}" if update.get("Message") else "")
    health = "degraded" if running < wanted or update.get("State") in ("paused", "rollback_paused") else ""
    return info, health
