"""The Docker runtime's pure mapping: a ContainerSpec to the engine's create arguments, and its answers back."""
from __future__ import annotations

import subprocess
import sys

from reconciler.model import ContainerSpec, HealthCheck, Mount, Port
from reconciler_docker.mapping import (
    container_arguments,
    endpoint_arguments,
    explainable,
    host_config_arguments,
    read_only_bind,
    status_exit_code,
    status_health,
)


def spec(**fields) -> ContainerSpec:
    return ContainerSpec(key="web", name="demo-web-1", replica=1, image_key=None, image_ref="app:1", **fields)


def test_mounts_are_the_bodies_the_sdk_would_build_and_an_anonymous_volume_is_inherited():
    web = spec(mounts=(Mount("volume", "/data", "demo_data"), Mount("volume", "/cache"),
                       Mount("tmpfs", "/tmp", tmpfs_size=1024), Mount("bind", "/src", "/srv", create_host_path=True)))
    args = host_config_arguments(web, inherited={"/cache": "f" * 64}, files=[read_only_bind("/run/secrets/db", "/f/db")])
    assert args["mounts"] == [
        {"Target": "/data", "Source": "demo_data", "Type": "volume", "ReadOnly": False},
        {"Target": "/cache", "Source": "f" * 64, "Type": "volume", "ReadOnly": False},
        {"Target": "/tmp", "Source": None, "Type": "tmpfs", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1024}},
        {"Target": "/run/secrets/db", "Source": "/f/db", "Type": "bind", "ReadOnly": True},
    ]
    assert args["binds"] == ["/srv:/src:rw"]


def test_ports_restart_networks_and_compose_fields():
    web = spec(ports=(Port(80, 8080), Port(81), Port(53, 5353, "udp", "127.0.0.1")), expose=("90",),
               restart="on-failure:3", networks=(("demo_back", ("db",)), ("demo_front", ())),
               addresses=(("demo_back", "10.0.0.2", ""),), ulimits=(("nofile", 10, 20),), log_driver="json-file")
    host = host_config_arguments(web)
    assert host["port_bindings"] == {"80/tcp": [8080], "81/tcp": [None], "53/udp": [("127.0.0.1", 5353)]}
    assert host["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["network_mode"] == "demo_back"
    assert host["ulimits"] == [{"name": "nofile", "soft": 10, "hard": 20}]
    assert host["log_config"] == {"type": "json-file", "config": {}}
    assert "cap_add" not in host, "unset Compose fields leave the engine's defaults"
    assert endpoint_arguments(web, "demo_back", ("db",)) == {"aliases": ["db"], "ipv4_address": "10.0.0.2",
                                                             "ipv6_address": None}
    assert endpoint_arguments(web, "demo_front", ()) == {"aliases": None, "ipv4_address": None, "ipv6_address": None}
    assert container_arguments(web, {})["ports"] == [(80, "tcp"), (81, "tcp"), (53, "udp"), (90, "")]


def test_the_healthcheck_and_command_as_the_engine_takes_them():
    web = spec(command=("serve",), healthcheck=HealthCheck(test=("CMD", "true"), interval_ns=10**9, retries=3))
    args = container_arguments(web, {"io.example": "1"})
    assert args["command"] == ["serve"] and args["entrypoint"] is None and args["labels"] == {"io.example": "1"}
    assert args["healthcheck"] == {"test": ["CMD", "true"], "interval": 10**9, "timeout": None, "retries": 3,
                                   "start_period": None}


def test_the_answers_read_back():
    assert status_health("Up 3 seconds (health: starting)") == "starting"
    assert status_health("Up 3 minutes (unhealthy)") == "unhealthy"
    assert status_health("Up 3 minutes") == ""
    assert status_exit_code("Exited (137) 2 minutes ago") == 137 and status_exit_code("Up 1 second") is None
    info = {"Config": {"Env": ["A=1", "B=x=y"], "Cmd": ["serve"], "Image": "app:1"},
            "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}}
    old = explainable(info, "/files/demo/configs/")
    assert old["env"] == {"A": "1", "B": "x=y"} and old["command"] == ("serve",) and old["restart"] == "on-failure:2"
    assert old["user"] is None and old["configs"] == {}


def test_mounts_ports_and_healthcheck_read_back_as_the_specs_records():
    info = {"Config": {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 10**9, "Retries": 3}},
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": None}},
            "Mounts": [{"Type": "bind", "Source": "/srv/data", "Destination": "/data", "RW": False},
                       {"Type": "volume", "Name": "demo_db", "Source": "/var/lib/docker/volumes/demo_db/_data",
                        "Destination": "/db", "RW": True},
                       {"Type": "bind", "Source": "/files/demo/configs/app-1234", "Destination": "/etc/app",
                        "RW": False}]}
    old = explainable(info, "/files/demo/configs/")
    assert old["mounts"] == (Mount("bind", "/data", source="/srv/data", read_only=True),
                             Mount("volume", "/db", source="demo_db"))
    assert old["ports"] == (Port(53, protocol="udp"), Port(80, 8080, host_ip="127.0.0.1"))
    assert old["healthcheck"] == HealthCheck(("CMD", "true"), interval_ns=10**9, retries=3)


def test_the_mapping_imports_no_docker_sdk():
    code = "import sys, reconciler_docker.mapping; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
