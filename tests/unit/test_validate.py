"""Validation: schema errors in words, references, cycles, paths and env files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import Problem, SpecError
from reconciler.spec.loader import load_stack
from reconciler.spec.locations import format_path
from reconciler.spec.validate import validate

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "stack.schema.json"

FULL = """\
name: demo
x-common: &common
  restart: unless-stopped
images:
  app:
    build:
      context: ./app
      dockerfile: Dockerfile
      args: {VERSION: "1.2"}
      target: runtime
    ref: demo/app:dev
    pull: if-not-present
  pg: {ref: postgres:16, pull: always}
networks:
  backend:
    name: my-backend
    driver: bridge
    options: {com.docker.network.bridge.name: br-demo}
    internal: false
    attachable: false
    ipam: {subnet: 172.30.0.0/24, gateway: 172.30.0.1, ip_range: 172.30.0.128/25}
    labels: {team: core}
volumes:
  data:
    name: my-data
    driver: local
    options: {type: tmpfs, device: tmpfs, o: size=64m}
    labels: {}
containers:
  web:
    <<: *common
    image: app
    command: ["httpd", "-f"]
    entrypoint: ["/bin/sh", "-c"]
    env:
      LOG_LEVEL: info
      WORKERS: 4
      DEBUG: false
      UNSET: null
      DB_PASSWORD: {value: "${DB_PASSWORD}", secret: true}
    env_file: [web.env]
    ports:
      - "8080:80"
      - "127.0.0.1:8443:443/tcp"
      - "9000-9001:9000-9001"
      - "53/udp"
      - 80
      - {target: 53, published: 5353, protocol: udp, host_ip: 127.0.0.1}
    networks:
      backend: {aliases: [www]}
    volumes:
      - data:/var/lib/data
      - ./conf:/etc/app:ro
      - ~/cache:/cache
      - {type: tmpfs, target: /tmp, size: 16m}
      - {type: volume, source: data, target: /data, read_only: true}
      - {type: bind, source: ./conf, target: /etc/app2, read_only: true}
    healthcheck:
      test: ["CMD-SHELL", "nc -z 127.0.0.1 80"]
      interval: 2s
      timeout: 1m30s
      retries: 3
      start_period: 500ms
    depends_on:
      db: {condition: healthy}
    labels: {tier: front}
    user: "1000:1000"
    working_dir: /srv
    stop_signal: SIGTERM
    stop_grace_period: 5
    init: true
    memory: 128m
    cpus: 0.5
    replicas: 2
    hostname: web
  db:
    image: pg
    restart: on-failure:3
    networks: [backend]
    env: ["POSTGRES_DB=app"]
    healthcheck: {test: "pg_isready"}
  tool:
    image: busybox:1.36
    restart: "no"
    depends_on: [db]
    memory: 1073741824
"""


def make_repo(tmp_path: Path) -> Path:
    """A git work tree holding a stack directory with everything FULL refers to."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    stack = repo / "stack"
    (stack / "app").mkdir(parents=True)
    (stack / "app" / "Dockerfile").write_text("FROM busybox\n")
    (stack / "conf").mkdir()
    (stack / "web.env").write_text("A=1\n")
    return stack


def load(directory: Path, text: str, name: str = "stack.yaml", environ: dict | None = None):
    (directory / name).write_text(text, encoding="utf-8")
    return load_stack([directory / name], environ=environ if environ is not None else {"DB_PASSWORD": "s3cret"})


def problems_of(directory: Path, text: str, **kwargs) -> list[Problem]:
    raw = load(directory, text)
    with pytest.raises(SpecError) as caught:
        validate(raw, **kwargs)
    return caught.value.problems


def by_path(problems: list[Problem]) -> dict[str, str]:
    return {p.path: p.message for p in problems}


def test_schema_is_valid_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://reconciler.dev/schemas/stack.schema.json"


def test_the_schema_read_is_this_checkouts_own() -> None:
    # Another checkout installed editable must not lend its schema to this one.
    from reconciler.spec.validate import schema_text

    assert schema_text() == SCHEMA.read_text(encoding="utf-8")


def test_full_example_is_valid(tmp_path: Path, monkeypatch) -> None:
    stack = make_repo(tmp_path)
    monkeypatch.setenv("HOME", str(stack))  # ~/cache stays inside the repository, like every other path of FULL
    validate(load(stack, FULL))


def test_schema_errors_are_reported_all_at_once(tmp_path: Path) -> None:
    spec = """\
name: Bad Name
containers:
  web:
    image: nginx:1
    replicas: -1
    init: "yes"
    restart: sometimes
    ports: ["80:80:80", {target: 53, protocol: icmp}]
    stop_grace_period: 5 sec
    memory: 12q
  other: {}
"""
    problems = problems_of(tmp_path, spec)
    located = {(p.path, p.line, p.col): p.message for p in problems}
    assert located == {
        ("name", 1, 7): "expected stack name: lowercase letters, digits, '_' or '-', starting with a letter or digit "
                        "(default: the directory of the first spec file; --stack overrides it), got 'Bad Name'",
        ("containers.web.replicas", 5, 15): "expected a number >= 0, got -1",
        ("containers.web.init", 6, 11): "expected a boolean, got a string",
        ("containers.web.restart", 7, 14):
            "expected one of: no, always, unless-stopped, on-failure or on-failure:N, got 'sometimes'",
        ("containers.web.ports[0]", 8, 13):
            'expected "[ip:]host:container[/protocol]", "ip::container" (any free host port on ip) or '
            '"container[/protocol]", e.g. "8080:80", "127.0.0.1::80" or "53/udp", '
            "got '80:80:80'",
        ("containers.web.ports[1].protocol", 8, 48): "expected one of: tcp, udp, sctp, got 'icmp'",
        ("containers.web.stop_grace_period", 9, 24): 'expected a duration such as "10s", "1m30s" or "500ms", got \'5 sec\'',
        ("containers.web.memory", 10, 13): 'expected a size such as "512k", "128m" or "1.5g", got \'12q\'',
        ("containers.other", 11, 10): "missing required field 'image'",
    }
    assert all(p.file == str(tmp_path / "stack.yaml") for p in problems)


def test_unknown_field_lists_expected_fields(tmp_path: Path) -> None:
    spec = "services: {}\nx-ok: 1\nnetworks:\n  n: {drivr: bridge}\n"
    found = by_path(problems_of(tmp_path, spec))
    assert found["services"] == (
        "unknown field 'services' (expected one of: name, runtime, targets, placement, images, networks, volumes, "
        "containers, configs, secrets, x-*); did you mean 'containers'? ('services' is Compose's name for it)"
    )
    assert found["networks.n.drivr"] == (
        "unknown field 'drivr' (expected one of: name, driver, options, internal, attachable, ipam, labels); "
        "did you mean 'driver'?"
    )


def test_alternatives_name_what_was_expected(tmp_path: Path) -> None:
    spec = """\
images:
  neither: {pull: never}
  bad-build: {build: {dockerfile: x}}
containers:
  web:
    image: nginx:1
    command: 5
    networks: {backend: {alias: [x]}}
    env: {A: [1]}
"""
    found = by_path(problems_of(tmp_path, spec))
    assert found == {
        "images.neither": "missing required field: 'ref' or 'build'",
        "images.bad-build.build": "missing required field 'context'",
        "containers.web.command": "expected a string or a list, got an integer",
        "containers.web.networks.backend.alias": ("unknown field 'alias' (expected one of: aliases, ipv4_address, "
                                                  "ipv6_address); did you mean 'aliases'?"),
        "containers.web.env.A": "expected a string, a number, a boolean, null or a mapping, got a list",
    }


def test_invalid_keys_point_at_the_entry(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "containers:\n  web: {image: a:1}\n  'bad key': {image: a:1}\n")
    assert len(problems) == 1
    assert problems[0].path == 'containers["bad key"]'
    assert problems[0].line == 3
    assert problems[0].message.startswith("invalid key 'bad key': expected letters, digits")


def test_env_values_are_not_echoed(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "containers:\n  web:\n    image: a:1\n    env: ['=hunter2']\n")
    assert "hunter2" not in str(problems)


def test_undefined_references(tmp_path: Path) -> None:
    spec = """\
networks: {front: {}}
volumes: {data: {}}
containers:
  web:
    image: app
    networks: [front, back]
    volumes: [data:/a, cache:/b, ./local:/c, {type: volume, source: nope, target: /d}]
    depends_on: [db, web, ghost]
  db:
    image: postgres:16
    networks: {front: null, other: {aliases: [x]}}
    depends_on: {ghost2: {condition: healthy}}
"""
    found = by_path(problems_of(tmp_path, spec))
    assert found == {
        "containers.web.image": "image 'app' is not defined in images (write 'app:latest' for a registry reference)",
        "containers.web.networks[1]": "network 'back' is not defined in networks",
        "containers.web.volumes[1]":
            "volume 'cache' is not defined in volumes (a bind mount's source starts with '.', '/' or '~')",
        "containers.web.volumes[3].source":
            "volume 'nope' is not defined in volumes (a bind mount's source starts with '.', '/' or '~')",
        "containers.web.depends_on[1]": "container 'web' cannot depend on itself",
        "containers.web.depends_on[2]": "container 'ghost' is not defined in containers",
        "containers.db.networks.other": "network 'other' is not defined in networks",
        "containers.db.depends_on.ghost2": "container 'ghost2' is not defined in containers",
    }


def test_semantic_checks_skip_only_the_fields_that_failed_the_schema(tmp_path: Path) -> None:
    spec = "containers:\n  web:\n    image: undefined-image\n    networks: 5\n    depends_on: [ghost]\n"
    assert sorted(by_path(problems_of(tmp_path, spec))) == [
        "containers.web.depends_on[0]", "containers.web.image", "containers.web.networks"]


def test_semantic_checks_skip_a_container_broken_as_a_whole(tmp_path: Path) -> None:
    spec = "containers:\n  web:\n    networks: [nowhere]\n"
    assert list(by_path(problems_of(tmp_path, spec))) == ["containers.web"]


def test_depends_on_cycles_are_named_once(tmp_path: Path) -> None:
    spec = """\
containers:
  a: {image: x:1, depends_on: [b]}
  b: {image: x:1, depends_on: {c: {condition: healthy}}}
  c: {image: x:1, depends_on: [a, d]}
  d: {image: x:1, depends_on: [c]}
  e: {image: x:1, depends_on: [a]}
"""
    problems = problems_of(tmp_path, spec)
    assert [(p.path, p.line, p.message) for p in problems] == [
        ("containers.a.depends_on[0]", 2, "depends_on cycle: a -> b -> c -> a"),
        ("containers.c.depends_on[1]", 4, "depends_on cycle: c -> d -> c"),
    ]


def test_paths_may_not_escape_the_repository(tmp_path: Path) -> None:
    stack = make_repo(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "outside.env").write_text("A=1\n")
    spec = """\
images:
  app: {build: {context: ../../outside}}
containers:
  web:
    image: app
    env_file: ../../outside.env
    volumes: [../../outside:/a, {type: bind, source: ../../outside, target: /b}, /etc:/etc-host:ro]
"""
    problems = problems_of(stack, spec)
    assert sorted(p.path for p in problems) == [
        "containers.web.env_file", "containers.web.volumes[0]", "containers.web.volumes[1].source",
        "images.app.build.context",  # /etc:/etc-host is a host bind mount, allowed as in Compose (issue 22)
    ]
    assert all("outside the repository" in p.message and str(tmp_path / "repo") in p.message for p in problems)
    validate(load(stack, spec), allow_outside=True)


def test_repository_root_is_the_spec_directory_without_git(tmp_path: Path) -> None:
    (tmp_path / "shared.env").write_text("A=1\n")
    stack = tmp_path / "stack"
    stack.mkdir()
    spec = "containers:\n  web: {image: a:1, env_file: ../shared.env}\n"
    assert "outside the repository" in problems_of(stack, spec)[0].message


def test_missing_and_malformed_env_files(tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_text("OK=1\nnot a pair\n")
    spec = "containers:\n  web: {image: a:1, env_file: [missing.env, bad.env]}\n"
    found = by_path(problems_of(tmp_path, spec))
    assert found["containers.web.env_file[0]"].startswith("env file 'missing.env' does not exist")
    assert found["containers.web.env_file[1]"] == f"env file 'bad.env': {tmp_path / 'bad.env'}:2: expected KEY=VALUE"


def test_build_context_and_dockerfile_must_exist(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    spec = """\
images:
  nocontext: {build: {context: ./missing}}
  nodefault: {build: {context: ./app}}
  nofile: {build: {context: ./app, dockerfile: Containerfile}}
"""
    found = by_path(problems_of(tmp_path, spec))
    assert found["images.nocontext.build.context"].startswith("build context './missing' is not a directory")
    assert found["images.nodefault.build.context"] == "'Dockerfile' not found in build context './app'"
    assert found["images.nofile.build.dockerfile"] == "'Containerfile' not found in build context './app'"


def test_paths_resolve_relative_to_the_file_that_wrote_them(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "web.env").write_text("A=1\n")
    (tmp_path / "stack.yaml").write_text("name: demo\n")
    (tmp_path / "sub" / "web.yaml").write_text("containers:\n  web: {image: a:1, env_file: web.env}\n")
    validate(load_stack([tmp_path / "stack.yaml", tmp_path / "sub" / "web.yaml"], environ={}))


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("containers", "web", "ports", 0), "containers.web.ports[0]"),
        (("networks", "n", "options", "com.docker.network.bridge.name"), 'networks.n.options["com.docker.network.bridge.name"]'),
        (("containers", "my app"), 'containers["my app"]'),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_path(path: tuple, text: str) -> None:
    assert format_path(path) == text


@pytest.mark.parametrize("port", ["80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", "53/udp", "9000-9001:80-81"])
def test_port_forms_docker_accepts_are_valid(tmp_path: Path, port: str) -> None:
    spec = f'containers:\n  web:\n    image: "x:1"\n    ports: ["{port}"]\n'
    validate(load(tmp_path, spec))


@pytest.mark.parametrize("port", ["http", "80:", ":80", "1.2.3.4:80", "80/icmp"])
def test_port_forms_docker_refuses_are_invalid(tmp_path: Path, port: str) -> None:
    spec = f'containers:\n  web:\n    image: "x:1"\n    ports: ["{port}"]\n'
    assert [p.path for p in problems_of(tmp_path, spec)] == ["containers.web.ports[0]"]


def test_network_mode_excludes_networks_and_host_excludes_ports(tmp_path: Path) -> None:
    spec = """\
networks: {back: {}}
containers:
  a: {image: "x:1", network_mode: host, ports: ["80:80"]}
  b: {image: "x:1", network_mode: none, networks: [back]}
"""
    assert sorted(by_path(problems_of(tmp_path, spec))) == ["containers.a.ports", "containers.b.network_mode"]


def test_privileged_and_network_mode_are_accepted(tmp_path: Path) -> None:
    validate(load(tmp_path, 'containers:\n  a: {image: "x:1", network_mode: none, privileged: true}\n'))


def test_an_image_archive_may_not_leave_the_repository(tmp_path: Path) -> None:
    stack = make_repo(tmp_path)
    (tmp_path / "outside.tar").write_bytes(b"")
    spec = 'images:\n  app: {ref: "app:1", archive: ../../outside.tar}\n'
    problems = by_path(problems_of(stack, spec))
    assert "outside the repository" in problems["images.app.archive"]


@pytest.mark.parametrize("entry, field", [
    ("env_file: /etc/os-release", "containers.web.env_file"),
    ("env_file: [/etc/os-release]", "containers.web.env_file[0]"),
])
def test_absolute_and_home_paths_outside_the_repository_need_the_flag(tmp_path: Path, entry, field) -> None:
    stack = make_repo(tmp_path)
    spec = f"containers:\n  web:\n    image: a:1\n    {entry}\n"
    problems = problems_of(stack, spec)
    assert [p.path for p in problems] == [field]
    assert "outside the repository" in problems[0].message and "--allow-outside-paths" in problems[0].message
    validate(load(stack, spec), allow_outside=True)


def test_absolute_build_context_and_archive_outside_the_repository_need_the_flag(tmp_path: Path) -> None:
    stack = make_repo(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("FROM scratch\n")
    spec = (f"images:\n  app: {{build: {{context: {tmp_path / 'outside'}}}}}\n"
            f"  saved: {{ref: 'saved:1', archive: {tmp_path / 'outside' / 'img.tar'}}}\n")
    assert sorted(p.path for p in problems_of(stack, spec)) == ["images.app.build.context", "images.saved.archive"]
    validate(load(stack, spec), allow_outside=True)


def test_an_absolute_path_inside_the_repository_is_fine(tmp_path: Path) -> None:
    stack = make_repo(tmp_path)
    (stack / "web.env").write_text("A=1\n")
    validate(load(stack, f"containers:\n  web: {{image: a:1, env_file: {stack / 'web.env'}}}\n"))


def test_compose_field_errors_are_located(tmp_path: Path) -> None:
    spec = """\
networks:
  plain: {}
containers:
  a:
    image: x:1
    replicas: 2
    container_name: fixed
    networks: {plain: {ipv4_address: 10.1.2.3}}
    ulimits: {nofile: {soft: 10}}
    pid: sideways
    expose: ["80/icmp"]
    devices: ["dev/null"]
  b:
    image: x:1
    container_name: fixed
    healthcheck: {disable: yes}
"""
    found = by_path(problems_of(tmp_path, spec))
    assert found["containers.a.container_name"].startswith("container_name 'fixed' is one engine name")
    assert found["containers.b.container_name"] == "container_name 'fixed' is already taken by containers.a"
    assert "needs a network with an ipam subnet" in found["containers.a.networks.plain.ipv4_address"]
    assert found["containers.a.ulimits.nofile"] == "missing required field 'hard'"
    assert found["containers.a.pid"].startswith("expected the PID namespace")
    assert "containers.a.expose[0]" in found and "containers.a.devices[0]" in found
    assert "containers.b.healthcheck.disable" in found
    lines = {p.path: p.line for p in problems_of(tmp_path, spec)}
    assert lines["containers.a.container_name"] == 7 and lines["containers.a.pid"] == 10


def test_an_enabled_container_may_not_depend_on_one_its_profiles_leave_out(tmp_path: Path) -> None:
    spec = ("containers:\n  web: {image: 'x:1', depends_on: [db]}\n  db: {image: 'x:1', profiles: [data]}\n"
            "  tool: {image: 'x:1', profiles: [ops], depends_on: [db]}\n")
    found = by_path(problems_of(tmp_path, spec))
    assert found == {"containers.web.depends_on[0]": "container 'db' is only enabled with profile data (--profile data)"}
    validate(load(tmp_path, spec), profiles=["data"])  # enabled: nothing to say


def test_a_null_network_or_volume_is_valid_and_a_bad_one_is_still_explained(tmp_path: Path) -> None:
    validate(load(tmp_path, "networks: {back: null}\nvolumes: {data: null}\n"
                            "containers:\n  a: {image: 'x:1', networks: [back], volumes: ['data:/d']}\n"))
    found = by_path(problems_of(tmp_path, "networks: {back: {drivr: x}}\nvolumes: {data: 5}\n"))
    assert found["networks.back.drivr"].startswith("unknown field 'drivr'")
    assert found["volumes.data"] == "expected null or a mapping, got an integer"


def test_a_missing_bind_source_is_refused_in_the_long_syntax_only(tmp_path: Path) -> None:
    spec = ("containers:\n  a:\n    image: x:1\n    volumes:\n      - ./made-at-apply:/a\n"
            "      - {type: bind, source: ./missing, target: /b}\n")
    found = by_path(problems_of(tmp_path, spec))
    assert list(found) == ["containers.a.volumes[1].source"]
    assert found["containers.a.volumes[1].source"].startswith("bind source './missing' does not exist (")
    assert found["containers.a.volumes[1].source"].endswith('write the mount as "./missing:/b" to have it created')
    (tmp_path / "missing").mkdir()
    validate(load(tmp_path, spec))


def test_unknown_keys_point_at_the_key_and_compose_spellings_get_a_hint(tmp_path: Path) -> None:
    spec = """\
containers:
  web:
    image: x:1
    environment:
      A: 1
    deploy:
      replicas: 2
    depends_on:
      db: {condition: service_healthy}
  db: {image: 'x:1', mem_limit: 1g}
"""
    problems = {p.path: p for p in problems_of(tmp_path, spec)}
    env = problems["containers.web.environment"]
    assert (env.line, env.col) == (4, 5)  # the key's line, not its value's (5)
    assert env.message.endswith("; did you mean 'env'? ('environment' is Compose's name for it)")
    assert problems["containers.web.deploy"].line == 6
    assert problems["containers.web.deploy"].message.endswith(
        "; in Compose that is 'deploy': here, write replicas, memory, cpus and update (a container takes them directly)")
    assert problems["containers.db.mem_limit"].message.endswith("; did you mean 'memory'? "
                                                                "('mem_limit' is Compose's name for it)")
    condition = problems["containers.web.depends_on.db.condition"]
    assert condition.message == ("expected one of: started, healthy, completed, got 'service_healthy'; "
                                 "did you mean 'healthy'? ('service_healthy' is Compose's name for it)")
    assert condition.line == 9


def test_an_invalid_key_points_at_the_key(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "containers:\n  'bad key':\n    image: a:1\n")
    assert [(p.path, p.line) for p in problems] == [('containers["bad key"]', 2)]


def test_a_network_address_the_engine_cannot_read_fails_validate_at_its_line(tmp_path: Path) -> None:
    spec = """\
networks:
  front:
    ipam: {subnet: zzz}
  back:
    ipam:
      subnet: 172.30.0.0/24
      gateway: 10.0.0.1
      ip_range: 172.30.1.0/25
  side:
    ipam: {gateway: 10.0.0.1, ip_range: 10.0.0.0/33}
  six:
    ipam: {subnet: "fd00:30::/64", gateway: "fd00:30::1", ip_range: 172.30.0.0/25}
  fine:
    ipam: {subnet: 172.31.0.0/24, gateway: 172.31.0.1, ip_range: 172.31.0.128/25}
containers:
  a: {image: 'x:1', networks: [front, back, side, six, fine]}
"""
    problems = problems_of(tmp_path, spec)
    found = by_path(problems)
    assert found == {
        "networks.front.ipam.subnet": "expected a subnet in CIDR notation, such as 172.30.0.0/24 or fd00:30::/64, "
                                      "got 'zzz'",
        "networks.back.ipam.gateway": "gateway 10.0.0.1 is not inside the subnet 172.30.0.0/24",
        "networks.back.ipam.ip_range": "ip_range 172.30.1.0/25 is not inside the subnet 172.30.0.0/24",
        "networks.side.ipam.gateway": "gateway needs a subnet: set networks.side.ipam.subnet too",
        "networks.side.ipam.ip_range": "expected a range in CIDR notation, such as 172.30.0.128/25, got '10.0.0.0/33'",
        "networks.six.ipam.ip_range": "ip_range 172.30.0.0/25 is not inside the subnet fd00:30::/64",
    }
    lines = {p.path: p.line for p in problems}
    assert lines["networks.front.ipam.subnet"] == 3 and lines["networks.back.ipam.gateway"] == 7
