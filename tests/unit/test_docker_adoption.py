"""Adoption's verdict: does a container, network or volume we did not create already match the spec?

The fixtures in ``engine_data/`` are the real ``docker inspect`` output of
Docker 20.10 for containers made by Debian's docker-compose 1.29.2
(``compose-v1-*``: the project ``rtest-diff22fx``, and ``rtest-diff22fx2`` for
``app``) and by our own driver from the same Compose file (``reconciler-web``:
stack ``rtest-diff22us``), and of the image they run. The specs below are what
``load_desired`` makes of that Compose file::

    services:
      web:
        image: reconciler/busybox:latest
        command: ["httpd", "-f", "-p", "8080"]
        environment: {LOG_LEVEL: debug, MODE: prod}
        labels: {team: shop}
        ports: ["127.0.0.1:18931:8080", "8081/udp"]
        volumes: [data:/data, ./site:/site:ro, /cache]
        networks: {front: {aliases: [www]}, back: {}}
        healthcheck: {test: [CMD, "true"], interval: 5s, timeout: 2s, retries: 3, start_period: 1s}
        restart: unless-stopped
        init: true
        stop_grace_period: 3s
        working_dir: /data
        user: "1000"
      worker: {image: reconciler/busybox:latest, command: sleep 3600, init: true}
"""
from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.model import ContainerSpec, EnvVar, FileMount, HealthCheck, Mount, NetworkSpec, Port, VolumeSpec
from reconciler_docker.adoption import container_differences, network_differences, volume_differences

DATA = Path(__file__).parent / "engine_data"


def inspect(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


IMAGE = inspect("busybox-image")


def web(project: str = "rtest-diff22fx", **changes) -> ContainerSpec:
    spec = ContainerSpec(
        key="web", name=f"{project}-web-1", replica=1, image_key=None, image_ref="reconciler/busybox:latest",
        command=("httpd", "-f", "-p", "8080"), env=(EnvVar("LOG_LEVEL", "debug"), EnvVar("MODE", "prod")),
        ports=(Port(8080, 18931, "tcp", "127.0.0.1"), Port(8081, None, "udp")),
        networks=((f"{project}_back", ("web",)), (f"{project}_front", ("web", "www"))),
        mounts=(Mount("volume", "/data", f"{project}_data", volume_key="data"),
                Mount("bind", "/site", "/tmp/diff22/fx/site", read_only=True, create_host_path=True),
                Mount("volume", "/cache")),
        restart="unless-stopped", labels=(("team", "shop"),), user="1000", working_dir="/data",
        healthcheck=HealthCheck(("CMD", "true"), 5_000_000_000, 2_000_000_000, 3, 1_000_000_000),
        stop_grace_period=3, init=True)
    return dataclasses.replace(spec, **changes)


def worker(**changes) -> ContainerSpec:
    spec = ContainerSpec(key="worker", name="rtest-diff22fx-worker-1", replica=1, image_key=None,
                         image_ref="reconciler/busybox:latest", command=("sleep", "3600"), init=True,
                         networks=(("rtest-diff22fx_default", ("worker",)),))
    return dataclasses.replace(spec, **changes)


def app(**changes) -> ContainerSpec:
    """The ``app`` service of the second project: most of the host config's fields set."""
    spec = ContainerSpec(
        key="app", name="rtest-diff22fx2-app-1", replica=1, image_key=None, image_ref="reconciler/busybox",
        command=("sleep 3600",), entrypoint=("sh", "-c"), env=(EnvVar("EMPTY", ""),),
        networks=(("rtest-diff22fx2_fixed", ("app",)),),
        mounts=(Mount("tmpfs", "/run", tmpfs_size=1 << 20), Mount("tmpfs", "/scratch", tmpfs_size=2 << 20),
                Mount("volume", "/vol", "rtest-diff22fx2_vol", read_only=True, volume_key="vol")),
        restart="on-failure:3", healthcheck=HealthCheck(("CMD-SHELL", "true"), interval_ns=30_000_000_000),
        hostname="apphost", stop_signal="SIGINT", memory=64 << 20, nano_cpus=500_000_000, expose=("9000/tcp",),
        cap_add=("NET_ADMIN",), cap_drop=("MKNOD",), sysctls=(("net.core.somaxconn", "1024"),),
        extra_hosts=("db.local:10.0.0.5",), dns=("1.1.1.1",), dns_search=("example.com",), shm_size=128 << 20,
        ulimits=(("nofile", 1024, 2048),), security_opt=("no-new-privileges:true",), log_driver="json-file",
        log_options=(("max-size", "1m"),), stdin_open=True, tty=True, read_only=True,
        addresses=(("rtest-diff22fx2_fixed", "10.231.7.10", ""),))
    return dataclasses.replace(spec, **changes)


# -- the same ---------------------------------------------------------------------
def test_containers_compose_v1_made_from_the_same_file_have_no_differences():
    assert container_differences(web(), inspect("compose-v1-web"), IMAGE) == []
    assert container_differences(worker(), inspect("compose-v1-worker"), IMAGE) == []
    assert container_differences(app(), inspect("compose-v1-app"), IMAGE) == []


def test_a_container_our_driver_created_has_no_differences_against_its_spec():
    assert container_differences(web("rtest-diff22us"), inspect("reconciler-web"), IMAGE) == []


def test_what_the_image_supplies_counts_as_unset_in_the_spec():
    image = copy.deepcopy(IMAGE)
    image["Config"].update(Env=["PATH=/bin", "LANG=C"], Cmd=["serve"], Entrypoint=["/init"], WorkingDir="/srv",
                           User="app", StopSignal="SIGQUIT", Labels={"vendor": "acme"}, Volumes={"/var/lib/x": {}},
                           ExposedPorts={"9999/tcp": {}}, Healthcheck={"Test": ["CMD", "ping"], "Interval": 7})
    info = inspect("compose-v1-worker")
    info["Config"].update(Env=["PATH=/bin", "LANG=C"], Cmd=["serve"], Entrypoint=["/init"], WorkingDir="/srv",
                          User="app", StopSignal="SIGQUIT", Labels={**info["Config"]["Labels"], "vendor": "acme"},
                          ExposedPorts={"9999/tcp": {}}, Healthcheck={"Test": ["CMD", "ping"], "Interval": 7})
    info["Mounts"].append({"Type": "volume", "Name": "f" * 64, "Destination": "/var/lib/x", "RW": True})
    assert container_differences(worker(command=None), info, image) == []
    # The same container, the image gone: nothing is the image's any more.
    assert "env.LANG" in container_differences(worker(command=None), info, None)


def test_a_healthcheck_is_merged_with_the_images_field_by_field():
    image = copy.deepcopy(IMAGE)
    image["Config"]["Healthcheck"] = {"Test": ["CMD", "ping"], "Interval": 7, "Retries": 5}
    info = inspect("compose-v1-worker")
    info["Config"]["Healthcheck"] = {"Test": ["CMD", "true"], "Interval": 7, "Retries": 5}
    assert container_differences(worker(healthcheck=HealthCheck(("CMD", "true"))), info, image) == []
    assert container_differences(worker(healthcheck=HealthCheck(("CMD", "true"), retries=2)), info, image) == [
        "healthcheck"]


def test_a_new_entrypoint_drops_the_images_command():
    image = copy.deepcopy(IMAGE)  # Cmd ["sh"]
    info = inspect("compose-v1-worker")
    info["Config"].update(Entrypoint=["/init"], Cmd=None)
    assert container_differences(worker(command=None, entrypoint=("/init",)), info, image) == []
    info["Config"]["Cmd"] = ["sh"]
    assert container_differences(worker(command=None, entrypoint=("/init",)), info, image) == ["command"]


def test_what_compose_adds_is_ignored():
    info = inspect("compose-v1-web")
    # Compose v2's additions: the container name as an alias, labels of its own.
    for endpoint in info["NetworkSettings"]["Networks"].values():
        endpoint["Aliases"].append("rtest-diff22fx-web-1")
    info["Config"]["Labels"]["com.docker.compose.depends_on"] = ""
    info["Config"]["Labels"]["com.docker.compose.image"] = "sha256:44a6"
    assert container_differences(web(), info, IMAGE) == []


def test_the_image_is_what_the_ref_names_now():
    assert container_differences(web(image_ref="docker.io/reconciler/busybox"), inspect("compose-v1-web"),
                                 IMAGE) == []
    assert container_differences(web(image_ref="reconciler/busybox:1.36"), inspect("compose-v1-web"),
                                 IMAGE) == ["image"]
    moved = {**IMAGE, "RepoTags": []}  # the tag went to another image since the container was made
    assert container_differences(web(), inspect("compose-v1-web"), moved) == ["image"]
    assert container_differences(web(), inspect("compose-v1-web"), None) != ["image"]


# -- each difference by its path ------------------------------------------------------
@pytest.mark.parametrize(("changes", "paths"), [
    ({"env": (EnvVar("LOG_LEVEL", "info"), EnvVar("MODE", "prod"))}, ["env.LOG_LEVEL"]),
    ({"env": (EnvVar("LOG_LEVEL", "debug"),)}, ["env.MODE"]),
    ({"env": (EnvVar("LOG_LEVEL", "debug"), EnvVar("MODE", "prod"), EnvVar("NEW", "1"))}, ["env.NEW"]),
    ({"labels": (("team", "ops"),)}, ["labels.team"]),
    ({"command": ("httpd", "-f")}, ["command"]),
    ({"entrypoint": ("/bin/sh",)}, ["entrypoint"]),
    ({"ports": (Port(8080, 18932, "tcp", "127.0.0.1"), Port(8081, None, "udp"))}, ["ports"]),
    ({"ports": (Port(8080, 18931, "tcp"), Port(8081, None, "udp"))}, ["ports"]),
    ({"ports": (Port(8080, 18931, "tcp", "127.0.0.1"), Port(8081, None, "tcp"))}, ["ports"]),
    ({"mounts": (Mount("volume", "/data", "other"), Mount("bind", "/site", "/tmp/diff22/fx/site", read_only=True),
                 Mount("volume", "/cache"))}, ["mounts"]),
    ({"mounts": (Mount("volume", "/data", "rtest-diff22fx_data"), Mount("bind", "/site", "/tmp/diff22/fx/site"),
                 Mount("volume", "/cache"))}, ["mounts"]),
    ({"mounts": (Mount("volume", "/data", "rtest-diff22fx_data"),
                 Mount("bind", "/site", "/tmp/diff22/fx/site", read_only=True))}, ["mounts"]),
    ({"networks": (("rtest-diff22fx_back", ("web",)),)}, ["networks"]),
    ({"networks": (("rtest-diff22fx_back", ("web", "api")), ("rtest-diff22fx_front", ("web", "www")))},
     ["networks"]),
    ({"restart": "always"}, ["restart"]),
    ({"healthcheck": None}, ["healthcheck"]),
    ({"healthcheck": HealthCheck(("CMD", "true"), 6_000_000_000, 2_000_000_000, 3, 1_000_000_000)},
     ["healthcheck"]),
    ({"user": None}, ["user"]),
    ({"working_dir": "/srv"}, ["working_dir"]),
    ({"hostname": "web"}, ["hostname"]),
    ({"stop_signal": "SIGINT"}, ["stop_signal"]),
    ({"stop_grace_period": None}, ["stop_grace_period"]),
    ({"init": False}, ["init"]),
    ({"privileged": True}, ["privileged"]),
    ({"memory": 1 << 30, "nano_cpus": 10**9}, ["memory", "nano_cpus"]),
    ({"cap_add": ("SYS_ADMIN",), "cap_drop": ("ALL",)}, ["cap_add", "cap_drop"]),
    ({"sysctls": (("net.ipv4.ip_forward", "1"),), "extra_hosts": ("a:1.2.3.4",)}, ["extra_hosts", "sysctls"]),
    ({"dns": ("9.9.9.9",), "dns_search": ("x",), "dns_opt": ("ndots:1",)}, ["dns", "dns_opt", "dns_search"]),
    ({"ulimits": (("nofile", 1, 2),), "devices": ("/dev/fuse",)}, ["devices", "ulimits"]),
    ({"security_opt": ("no-new-privileges:true",), "pid": "host"}, ["pid", "security_opt"]),
    ({"shm_size": 1 << 20, "ipc": "host", "runtime": "runsc"}, ["ipc", "runtime", "shm_size"]),
    ({"log_driver": "local"}, ["logging"]),
    ({"tty": True, "stdin_open": True, "read_only": True}, ["read_only", "stdin_open", "tty"]),
    ({"expose": ("9000/tcp",)}, ["expose"]),
    ({"network_mode": "host", "networks": ()}, ["network_mode"]),
    ({"addresses": (("rtest-diff22fx_back", "172.28.0.2", ""),)}, ["addresses"]),
])
def test_each_difference_is_named_by_its_field(changes, paths):
    assert container_differences(web(**changes), inspect("compose-v1-web"), IMAGE) == paths


@pytest.mark.parametrize(("changes", "paths"), [
    ({"mounts": (Mount("tmpfs", "/run", tmpfs_size=2 << 20), Mount("tmpfs", "/scratch", tmpfs_size=2 << 20),
                 Mount("volume", "/vol", "rtest-diff22fx2_vol", read_only=True))}, ["mounts"]),
    ({"addresses": (("rtest-diff22fx2_fixed", "10.231.7.11", ""),)}, ["addresses"]),
    ({"addresses": ()}, ["addresses"]),
    ({"log_options": (("max-size", "2m"),)}, ["logging"]),
    ({"log_driver": None, "log_options": ()}, []),  # the engine's default driver is not compared
    ({"shm_size": None}, []),
    ({"cap_add": ("CAP_NET_ADMIN",)}, []),
    ({"ulimits": (("nofile", 1024, 4096),)}, ["ulimits"]),
    ({"stop_signal": None}, ["stop_signal"]),
    ({"hostname": None}, ["hostname"]),
    ({"healthcheck": HealthCheck(("CMD-SHELL", "false"), interval_ns=30_000_000_000)}, ["healthcheck"]),
])
def test_the_host_configs_fields_are_compared_by_meaning(changes, paths):
    assert container_differences(app(**changes), inspect("compose-v1-app"), IMAGE) == paths


def test_settings_the_spec_cannot_express_are_named_by_their_compose_key():
    info = inspect("compose-v1-worker")
    info["HostConfig"].update(CpuShares=512, Links=["/db:/web/db"])
    assert container_differences(worker(), info, IMAGE) == ["cpu_shares", "links"]


def test_configs_and_secrets_are_only_ours_when_we_wrote_them():
    secret = FileMount("secret", "db", "/run/secrets/db", "ab" * 32, mode=0o400)
    info = inspect("compose-v1-worker")
    info["Mounts"].append({"Type": "bind", "Source": "/srv/shop/db.txt", "Destination": "/run/secrets/db",
                           "RW": False})
    assert container_differences(worker(files=(secret,)), info, IMAGE) == ["secrets"]
    info["Mounts"][-1]["Source"] = f"/run/reconciler/shop/secrets/db-{'ab' * 8}-0-0-0400"
    assert container_differences(worker(files=(secret,)), info, IMAGE) == []


# -- networks and volumes -------------------------------------------------------------
NETWORK = {"Name": "rtest-diff22fx_front", "Driver": "bridge", "Internal": False, "Attachable": True,
           "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": "192.168.16.0/20",
                                                                      "Gateway": "192.168.16.1"}]},
           "Options": {}, "Labels": {"com.docker.compose.network": "front",
                                     "com.docker.compose.project": "rtest-diff22fx",
                                     "com.docker.compose.version": "1.29.2"}}
VOLUME = {"Driver": "local", "Labels": {"com.docker.compose.project": "rtest-diff22fx",
                                        "com.docker.compose.version": "1.29.2", "com.docker.compose.volume": "data"},
          "Mountpoint": "/var/lib/docker/volumes/rtest-diff22fx_data/_data", "Name": "rtest-diff22fx_data",
          "Options": None, "Scope": "local"}


def test_a_compose_network_is_compared_by_driver_flags_options_pool_and_labels():
    spec = NetworkSpec(key="front", name="rtest-diff22fx_front")
    assert network_differences(spec, NETWORK) == []  # attachable: Compose v1 makes every network so
    assert network_differences(dataclasses.replace(spec, subnet="192.168.16.0/20"), NETWORK) == []
    changed = dataclasses.replace(spec, driver="macvlan", internal=True, options=(("mtu", "1400"),),
                                  subnet="10.0.0.0/24", gateway="10.0.0.1", labels=(("tier", "web"),))
    assert network_differences(changed, NETWORK) == ["driver", "gateway", "internal", "labels.tier",
                                                     "options.mtu", "subnet"]
    assert network_differences(dataclasses.replace(spec, attachable=True), {**NETWORK, "Attachable": False}) == [
        "attachable"]


def test_a_compose_volume_is_compared_by_driver_options_and_labels():
    spec = VolumeSpec(key="data", name="rtest-diff22fx_data")
    assert volume_differences(spec, VOLUME) == []
    changed = dataclasses.replace(spec, options=(("type", "tmpfs"),), labels=(("backup", "daily"),))
    assert volume_differences(changed, VOLUME) == ["labels.backup", "options.type"]
    assert volume_differences(spec, {**VOLUME, "Options": {"type": "tmpfs"}}) == ["options.type"]
    assert volume_differences(spec, {**VOLUME, "Driver": "nfs"}) == ["driver"]


def test_the_comparison_imports_no_docker_sdk():
    code = "import sys, reconciler_docker.adoption; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
