"""Compose users' expectations of the stack spec, checked on the real engine.

Names resolve where Compose would resolve them (a container's key, on every
network it joins; the stack's default network for containers that name
none), and the container fields Compose spells reach the engine as written.
"""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.engine


def _exec(engine, container: str, *command: str) -> tuple[int, str]:
    run = engine.exec_create(container, list(command))
    out = engine.exec_start(run["Id"]).decode(errors="replace")
    return engine.exec_inspect(run["Id"])["ExitCode"], out


def _fetch(engine, container: str, url: str, attempts: int = 20) -> tuple[int, str]:
    for _ in range(attempts):
        code, out = _exec(engine, container, "wget", "-q", "-O", "-", url)
        if code == 0:
            return code, out
        time.sleep(0.25)
    return code, out


def test_containers_answer_to_their_key_on_the_default_network_and_only_where_they_join(stack):
    stack.write("""
        name: STACK
        networks:
          island: {}
        containers:
          db:
            image: BASE
            command: ["sh", "-c", "mkdir -p /w && echo db-here > /w/index.html && exec httpd -f -p 8080 -h /w"]
            init: true
          web:
            image: BASE
            command: ["sleep", "3600"]
            init: true
          loner:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            networks: [island]
          hermit:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            network_mode: none
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    default = f"{stack.name}_default"
    assert stack.networks() == {default, f"{stack.name}_island"}
    web = stack.engine.inspect_container(f"{stack.name}-web-1")
    assert list(web["NetworkSettings"]["Networks"]) == [default]
    assert "web" in web["NetworkSettings"]["Networks"][default]["Aliases"]
    assert _fetch(stack.engine, f"{stack.name}-web-1", "http://db:8080/") == (0, "db-here\n")
    assert _exec(stack.engine, f"{stack.name}-web-1", "nslookup", "db")[0] == 0
    # Not on the default network: the key does not resolve there.
    code, _ = _exec(stack.engine, f"{stack.name}-loner-1", "nslookup", "db")
    assert code != 0
    hermit = stack.engine.inspect_container(f"{stack.name}-hermit-1")
    assert list(hermit["NetworkSettings"]["Networks"]) == ["none"]
    again = stack.cli("plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def test_the_default_network_is_removed_when_no_container_uses_it(stack):
    stack.write("""
        name: STACK
        containers:
          app: {image: BASE, command: ["sleep", "3600"], init: true}
    """)
    assert stack.apply().code == 0
    assert stack.networks() == {f"{stack.name}_default"}
    stack.write("""
        name: STACK
        containers:
          app: {image: BASE, command: ["sleep", "3600"], init: true, network_mode: none}
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert stack.networks() == set()


def test_compose_container_fields_reach_the_engine(stack):
    stack.write("""
        name: STACK
        networks:
          lan: {ipam: {subnet: 172.29.213.0/24}}
        containers:
          app:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            container_name: STACK-fixed
            expose: [80, "53/udp"]
            cap_add: [NET_ADMIN]
            cap_drop: [MKNOD]
            sysctls: {net.ipv4.ip_unprivileged_port_start: 100}
            extra_hosts: ["gateway.test:10.9.8.7"]
            dns: [192.0.2.53]
            dns_search: [example.test]
            dns_opt: ["ndots:2"]
            shm_size: 8m
            ulimits: {nofile: {soft: 1000, hard: 2000}}
            devices: ["/dev/null:/dev/nothing:r"]
            security_opt: [no-new-privileges]
            ipc: shareable
            logging: {driver: json-file, options: {max-size: 1m, max-file: "2"}}
            platform: linux/amd64
            runtime: runc
            stdin_open: true
            tty: true
            read_only: true
            restart: on-failure:3
            stop_grace_period: 3s
            healthcheck: {disable: true}
            networks:
              lan: {ipv4_address: 172.29.213.10}
          peer:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            pid: host
            networks: [lan]
            healthcheck: {test: ["CMD", "true"], interval: 1s, start_period: 5s}
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert f"{stack.name}-fixed" in stack.containers() and f"{stack.name}-app-1" not in stack.containers()
    info = stack.engine.inspect_container(f"{stack.name}-fixed")
    host, config = info["HostConfig"], info["Config"]
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp"}
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["MKNOD"]
    assert host["Sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "100"}
    assert host["ExtraHosts"] == ["gateway.test:10.9.8.7"]
    assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (["192.0.2.53"], ["example.test"], ["ndots:2"])
    assert host["ShmSize"] == 8 * 1024 * 1024
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1000, "Hard": 2000}]
    assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/nothing", "CgroupPermissions": "r"}]
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["IpcMode"] == "shareable"
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert host["Runtime"] == "runc" and host["ReadonlyRootfs"] is True
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert config["OpenStdin"] is True and config["Tty"] is True and config["StopTimeout"] == 3
    assert config["Healthcheck"] == {"Test": ["NONE"]}
    endpoint = info["NetworkSettings"]["Networks"][f"{stack.name}_lan"]
    assert endpoint["IPAddress"] == "172.29.213.10" and "app" in endpoint["Aliases"]
    # Inside the container, as written.
    fixed = f"{stack.name}-fixed"
    assert _exec(stack.engine, fixed, "sh", "-c", "ulimit -n")[1].strip() == "1000"
    assert "10.9.8.7\tgateway.test" in _exec(stack.engine, fixed, "cat", "/etc/hosts")[1]
    resolv = _exec(stack.engine, fixed, "cat", "/etc/resolv.conf")[1]
    assert "search example.test" in resolv and "ndots:2" in resolv
    assert _exec(stack.engine, fixed, "touch", "/rootfs-is-read-only")[0] != 0
    peer = stack.engine.inspect_container(f"{stack.name}-peer-1")
    assert peer["HostConfig"]["PidMode"] == "host"
    assert peer["Config"]["Healthcheck"]["StartPeriod"] == 5 * 10**9
    # The peer reaches the fixed-name container by its key, on the network they share.
    assert _exec(stack.engine, f"{stack.name}-peer-1", "nslookup", "app")[0] == 0
    again = stack.cli("plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def test_an_anonymous_volume_is_handed_on_to_the_replacement_of_its_container(stack):
    spec = """
        name: STACK
        containers:
          app:
            image: BASE
            command: ["sh", "-c", "[ -f /cache/first ] || echo VERSION > /cache/first; exec sleep 3600"]
            init: true
            volumes: [/cache]
            env: {VERSION: "VERSION"}
    """
    stack.write(spec.replace("VERSION", "one"))
    assert stack.apply().code == 0
    name = f"{stack.name}-app-1"
    first = stack.engine.inspect_container(name)
    [volume] = [m["Name"] for m in first["Mounts"] if m["Destination"] == "/cache"]
    stack.write(spec.replace("VERSION", "two"))
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    second = stack.engine.inspect_container(name)
    assert second["Id"] != first["Id"]
    assert [m["Name"] for m in second["Mounts"] if m["Destination"] == "/cache"] == [volume]
    # The data written by the first container is still there: the second wrote nothing.
    try:
        assert _exec(stack.engine, name, "cat", "/cache/first")[1] == "one\n"
    finally:  # anonymous volumes carry no label: the fixture would not find it
        stack.engine.remove_container(name, force=True)
        stack.engine.remove_volume(volume)


def test_a_missing_short_syntax_bind_source_is_created_as_a_directory(stack):
    stack.write("""
        name: STACK
        containers:
          app:
            image: BASE
            command: ["sh", "-c", "echo written > /data/out && exec sleep 3600"]
            init: true
            volumes: ["./state/data:/data", "./conf:/conf:ro"]
    """)
    (stack.dir / "conf").mkdir()
    assert not (stack.dir / "state").exists()
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert (stack.dir / "state" / "data").is_dir()
    for _ in range(40):
        if (stack.dir / "state" / "data" / "out").exists():
            break
        time.sleep(0.25)
    assert (stack.dir / "state" / "data" / "out").read_text() == "written\n"
    mounts = {m["Destination"]: m for m in stack.engine.inspect_container(f"{stack.name}-app-1")["Mounts"]}
    assert mounts["/conf"]["RW"] is False and mounts["/data"]["RW"] is True
    again = stack.cli("plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def test_a_port_without_a_host_port_is_published_on_an_ephemeral_port_of_every_interface(stack):
    stack.write("""
        name: STACK
        containers:
          app:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            ports: ["8080", {target: 8081}, "127.0.0.1::8082"]
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    ports = stack.engine.inspect_container(f"{stack.name}-app-1")["NetworkSettings"]["Ports"]
    for port in ("8080/tcp", "8081/tcp"):
        ipv4 = [b for b in ports[port] if "." in b["HostIp"]]
        assert ipv4 and ipv4[0]["HostIp"] == "0.0.0.0" and int(ipv4[0]["HostPort"]) > 0
    assert [b["HostIp"] for b in ports["8082/tcp"]] == ["127.0.0.1"]


def test_a_container_with_a_static_address_is_replaced_stop_first_and_keeps_it(stack):
    spec = """
        name: STACK
        networks:
          lan: {ipam: {subnet: 172.29.214.0/24}}
        containers:
          app:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            env: {VERSION: "VERSION"}
            networks: {lan: {ipv4_address: 172.29.214.20}}
    """
    stack.write(spec.replace("VERSION", "one"))
    assert stack.apply().code == 0
    first = stack.container_ids()[f"{stack.name}-app-1"]
    stack.write(spec.replace("VERSION", "two"))
    plan = stack.cli("plan")
    assert "rollout: stop-first" in plan.out and "static address 172.29.214.20" in plan.out, plan.out
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    info = stack.engine.inspect_container(f"{stack.name}-app-1")
    assert info["Id"] != first
    assert info["NetworkSettings"]["Networks"][f"{stack.name}_lan"]["IPAddress"] == "172.29.214.20"
