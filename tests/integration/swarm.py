"""A real two-node Swarm for the swarm runtime's tests: engines 4 (manager) and 5 (worker).

``scripts/engines.sh swarm 4 5`` does the work. The engines get a state
directory, an address prefix and a host bridge of their own (``SWARM_ENV``),
so the fleet tests' engines 1–3, and their ``down``, never touch them, nor
they those. The session fixture ``swarm_engines`` forms the swarm and tears it
all down at the end (swarm leave, engines, namespaces, bridge, rule) if it
started it; without root or ``ip netns`` it skips, saying why.
"""
from __future__ import annotations

import os

import docker
import pytest

from reconciler.labels import owner_selector

from ..waiting import wait_until
from .engines import _why_not, engines_script

__all__ = ["SWARM_ENV", "SwarmEngines", "remove_swarm_stack", "swarm_engines"]

MANAGER, WORKER = 4, 5
SWARM_ENV = {
    "RECONCILER_ENGINES_STATE": os.environ.get("RECONCILER_SWARM_STATE", "/tmp/reconciler-swarm"),
    "RECONCILER_ENGINES_PREFIX": "10.233.0",
    "RECONCILER_ENGINES_BRIDGE": "rcswarm0",
    "RECONCILER_SWARM_HEARTBEAT": "1s",  # a stopped worker is found lost in seconds, not half a minute
}


def _script(*args: str) -> str:
    return engines_script(*args, env=SWARM_ENV)


def _socket(number: int) -> str:
    return f"unix:///run/reconciler-host{number}.sock"


class SwarmEngines:
    """The manager's and the worker's engines, by their unix sockets."""

    manager_url = _socket(MANAGER)
    worker_url = _socket(WORKER)

    @staticmethod
    def client(url: str) -> docker.APIClient:
        return docker.APIClient(base_url=url, version="auto", timeout=30)

    @property
    def manager(self) -> docker.APIClient:
        return self.client(self.manager_url)

    @property
    def worker(self) -> docker.APIClient:
        return self.client(self.worker_url)

    def node_ids(self) -> dict[str, str]:
        """"manager"/"worker" → Swarm node ID."""
        return {"manager": self.manager.info()["Swarm"]["NodeID"], "worker": self.worker.info()["Swarm"]["NodeID"]}

    def stop_worker(self) -> None:
        _script("stop", str(WORKER))

    def start_worker(self) -> None:
        _script("start", str(WORKER))
        wait_until(lambda: all(n["Status"]["State"] == "ready" for n in self.manager.nodes()), 90,
                   "the worker to be ready again")


def _running() -> bool:
    try:
        manager = SwarmEngines().manager.info()["Swarm"]
        worker = SwarmEngines().worker.info()["Swarm"]
    except Exception:  # noqa: BLE001  not there (yet)
        return False
    return bool(manager.get("ControlAvailable")) and worker.get("LocalNodeState") == "active"


@pytest.fixture(scope="session")
def swarm_engines(engine) -> SwarmEngines:
    """Engines 4 and 5 as a two-node Swarm; torn down at the end unless the swarm ran before the session."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    ours = not _running()
    try:
        _script("swarm", str(MANAGER), str(WORKER))
        engines = SwarmEngines()
        wait_until(lambda: len([n for n in engines.manager.nodes() if n["Status"]["State"] == "ready"]) == 2, 60,
                   "both nodes to be ready")
        yield engines
    finally:
        if ours:
            _script("down")


def remove_swarm_stack(engines: SwarmEngines, stack: str) -> None:
    """Every service, config, secret, network and volume claiming ``stack`` (by label), on both nodes."""
    manager = engines.manager
    label = {"label": [owner_selector(stack)]}
    for service in manager.services(filters=label):
        manager.remove_service(service["ID"])
    wait_until(lambda: not _task_containers(manager, stack) and not _task_containers(engines.worker, stack), 60,
               f"the tasks of {stack} to go")
    for listing, remove in ((manager.configs, manager.remove_config), (manager.secrets, manager.remove_secret)):
        for obj in listing(filters=label):
            remove(obj["ID"])
    for net in manager.networks(filters=label):
        wait_until(lambda: _removed(manager, net["Id"]), 30, f"network {net['Name']} to be removable")
    for client in (manager, engines.worker):
        try:
            for volume in client.volumes().get("Volumes") or []:
                if volume["Name"].startswith(stack + "_"):
                    client.remove_volume(volume["Name"], force=True)
        except docker.errors.APIError:
            pass  # the worker is down (a drill's): its volumes go with the swarm


def _task_containers(client: docker.APIClient, stack: str) -> list[dict]:
    try:
        found = client.containers(all=True, filters={"label": ["com.docker.swarm.service.name"]})
    except (docker.errors.DockerException, OSError):
        return []  # the worker is down
    return [c for c in found if c["Labels"]["com.docker.swarm.service.name"].startswith(stack + "_")]


def _removed(client: docker.APIClient, network_id: str) -> bool:
    try:
        client.remove_network(network_id)
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:
        return False
    return True


# Three managers of one swarm (engines 6, 7 and 8), for failover drills: a set of engines of its own
# (state directory, prefix, bridge), so neither the two-node swarm nor the fleet's engines are touched.
MANAGERS = (6, 7, 8)
MANAGERS_ENV = {
    "RECONCILER_ENGINES_STATE": os.environ.get("RECONCILER_MANAGERS_STATE", "/tmp/reconciler-managers"),
    "RECONCILER_ENGINES_PREFIX": "10.234.0",
    "RECONCILER_ENGINES_BRIDGE": "rcmgr0",
}


class ManagerSwarm:
    """Engines 6, 7 and 8, all managers: ``url(i)`` is engine i's tcp:// URL on its namespace address."""

    numbers = MANAGERS

    @staticmethod
    def url(number: int) -> str:
        return f"tcp://{MANAGERS_ENV['RECONCILER_ENGINES_PREFIX']}.{10 + number}:2375"

    def client(self, number: int) -> docker.APIClient:
        return docker.APIClient(base_url=_socket(number), version="auto", timeout=30)

    def stop(self, number: int) -> None:
        _managers_script("stop", str(number))

    def start(self, number: int) -> None:
        _managers_script("start", str(number))

    def has_leader(self, number: int) -> bool:
        """Whether engine ``number`` can reach a leader (a manager without quorum cannot list nodes)."""
        try:
            return any(n.get("ManagerStatus", {}).get("Leader") for n in self.client(number).nodes())
        except (docker.errors.DockerException, OSError):
            return False


def _managers_script(*args: str) -> str:
    return engines_script(*args, env=MANAGERS_ENV)


@pytest.fixture(scope="module")
def manager_swarm(engine) -> ManagerSwarm:
    """Three engines as the three managers of one swarm, for one module; torn down after it."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    try:
        _managers_script("swarm", ",".join(map(str, MANAGERS)))
        swarm = ManagerSwarm()
        wait_until(lambda: len([n for n in swarm.client(MANAGERS[0]).nodes()
                                if n["Status"]["State"] == "ready" and n.get("ManagerStatus")]) == 3, 90,
                   "three ready managers")
        yield swarm
    finally:
        _managers_script("down")
