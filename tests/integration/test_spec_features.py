"""Spec features reach the engine as written: ports, internal networks, volume options, limits."""
from __future__ import annotations

import time
import urllib.request

import pytest

pytestmark = pytest.mark.engine


def test_published_port_serves_on_loopback_and_limits_and_user_apply(stack):
    (stack.dir / "www").mkdir()
    (stack.dir / "www" / "index.html").write_text("hello from the stack\n")
    stack.write("""
        name: STACK
        containers:
          web:
            image: BASE
            command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
            init: true
            user: "65534:65534"
            working_dir: /www
            ports: ["127.0.0.1::8080"]
            volumes: ["./www:/www:ro"]
            memory: 48m
            cpus: 0.25
            labels: {team: web}
            stop_signal: SIGTERM
            stop_grace_period: 2s
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    info = stack.engine.inspect_container(f"{stack.name}-web-1")
    host = info["HostConfig"]
    assert host["Memory"] == 48 * 1024 * 1024 and host["NanoCpus"] == 250_000_000
    assert info["Config"]["User"] == "65534:65534" and info["Config"]["WorkingDir"] == "/www"
    assert info["Config"]["Labels"]["team"] == "web" and info["Config"]["StopTimeout"] == 2
    binding = info["NetworkSettings"]["Ports"]["8080/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"
    body = _get(f"http://127.0.0.1:{binding['HostPort']}/index.html")
    assert body == "hello from the stack\n"


def _get(url: str, attempts: int = 40) -> str:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"{url} never answered")


def test_internal_attachable_network_and_tmpfs_volume_options(stack):
    stack.write("""
        name: STACK
        networks:
          private: {internal: true, attachable: true, labels: {zone: inner}}
        volumes:
          scratch:
            options: {type: tmpfs, device: tmpfs, o: size=8m}
            labels: {kind: scratch}
        containers:
          app:
            image: BASE
            command: ["sh", "-c", "df -k /scratch | tail -1 > /scratch/df && exec sleep 3600"]
            init: true
            networks: {private: {aliases: [app.internal]}}
            volumes: ["scratch:/scratch", {type: tmpfs, target: /tmp, size: 4m}]
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    net = stack.engine.inspect_network(f"{stack.name}_private")
    assert net["Internal"] is True and net["Attachable"] is True and net["Labels"]["zone"] == "inner"
    vol = stack.engine.inspect_volume(f"{stack.name}_scratch")
    assert vol["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}
    assert vol["Labels"]["kind"] == "scratch"
    info = stack.engine.inspect_container(f"{stack.name}-app-1")
    assert "app.internal" in info["NetworkSettings"]["Networks"][f"{stack.name}_private"]["Aliases"]
    tmp = [m for m in info["HostConfig"]["Mounts"] if m["Target"] == "/tmp"][0]
    assert tmp["Type"] == "tmpfs" and tmp["TmpfsOptions"]["SizeBytes"] == 4 * 1024 * 1024
    again = stack.apply("--output", "json")
    assert again.json()["changes"] == [] and again.json()["engine_calls"]["write"] == 0
