"""Compose's extends, include, !reset and !override, read as docker compose reads them, every value still located."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.spec import load_desired
from reconciler.spec.compose import ComposeOptions, find_files, load_compose
from reconciler.spec.loader import load_stack
from reconciler.spec.yamlsafe import compose_file


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository (``.git``) holding the project folder and the files it extends or includes."""
    (tmp_path / ".git").mkdir()
    return tmp_path


def project(paths, environ=None, **options):
    return load_compose(find_files(paths), environ=environ or {}, options=ComposeOptions(**options)).project


def services(paths, environ=None, **options) -> dict:
    return project(paths, environ, **options).data["services"]


def problems(paths, environ=None, allow_outside=False, **options) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_compose(find_files(paths), environ=environ or {}, options=ComposeOptions(**options),
                     allow_outside=allow_outside)
    return [str(p) for p in caught.value.problems]


# -- extends --------------------------------------------------------------------------


def test_extends_in_the_same_file_merges_by_composes_rules(repo):
    write(repo, "compose.yaml", """\
services:
  base:
    image: app:1
    command: [serve, --slow]
    environment: [A=1, B=1]
    ports: ["8080:80"]
  web:
    extends: base
    command: [serve]
    environment: {B: "2"}
    ports: ["8080:80", "9090:90"]
""")
    web = services([repo / "compose.yaml"])["web"]
    assert web == {"image": "app:1", "command": ["serve"], "environment": {"A": "1", "B": "2"},
                   "ports": ["8080:80", "9090:90"]}


def test_extends_from_another_file_rebases_its_relative_paths_and_keeps_its_lines(repo):
    write(repo, "common/base.yaml", """\
services:
  base:
    build: ./ctx
    env_file: base.env
    volumes: ["./data:/data", "/srv:/srv", {type: bind, source: ./conf, target: /conf}]
    depends_on: [db]
""")
    write(repo, "app/compose.yaml", """\
services:
  web:
    extends: {service: base, file: ../common/base.yaml}
    volumes: ["./mine:/mine"]
  db: {image: postgres:16}
""")
    found = project([repo / "app/compose.yaml"])
    web = found.data["services"]["web"]
    common = repo / "common"
    assert web["build"] == {"context": str(common / "ctx")}
    assert web["env_file"] == [str(common / "base.env")]
    assert web["volumes"] == [f"{common}/data:/data", "/srv:/srv",
                              {"type": "bind", "source": str(common / "conf"), "target": "/conf"}, "./mine:/mine"]
    assert web["depends_on"] == {"db": {"condition": "service_started"}}  # modern Compose inherits every key
    assert "extends" not in web
    assert found.marks[("services", "web", "build", "context")].file.endswith("base.yaml")
    assert found.marks[("services", "web", "build", "context")].line == 3
    assert found.marks[("services", "web")].file.endswith("compose.yaml")
    assert (repo / "common/base.yaml").resolve() in found.linked


def test_an_error_in_an_extended_value_names_the_extended_files_line(repo):
    write(repo, "base.yaml", "services:\n  base:\n    image: app:1\n    ports: [\"80:http\"]\n")
    compose = write(repo, "compose.yaml", "services:\n  web:\n    extends: {file: base.yaml, service: base}\n")
    with pytest.raises(SpecError) as caught:
        load_desired([compose], environ={})
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.line, problem.path) == ("base.yaml", 4, "services.web.ports[0]")


def test_a_relative_bind_that_climbs_out_of_an_extended_files_repository_stays_confined(repo):
    write(repo, "common/base.yaml", "services:\n  base:\n    image: x:1\n    volumes: [\"../../etc:/host-etc\"]\n")
    compose = write(repo, "compose.yaml", "services:\n  web:\n    extends: {file: common/base.yaml, service: base}\n")
    with pytest.raises(SpecError) as caught:
        load_desired([compose], environ={})
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.line, problem.path) == ("base.yaml", 4, "services.web.volumes[0]")
    assert "outside the repository" in problem.message


def test_chained_extends_across_files(repo):
    write(repo, "lib/base.yaml", """\
services:
  root: {image: app:1, environment: {LEVEL: root, ROOT: "1"}}
  middle:
    extends: root
    environment: {LEVEL: middle}
    volumes: [./m:/m]
""")
    write(repo, "compose.yaml", """\
services:
  web:
    extends: {file: lib/base.yaml, service: middle}
    environment: {LEVEL: web}
""")
    web = services([repo / "compose.yaml"])["web"]
    assert web["environment"] == {"LEVEL": "web", "ROOT": "1"}
    assert web["volumes"] == [f"{repo / 'lib'}/m:/m"]


def test_an_extends_cycle_is_an_error_naming_the_chain_at_its_line(repo):
    write(repo, "other.yaml", "services:\n  b:\n    extends: {file: compose.yaml, service: a}\n")
    write(repo, "compose.yaml", "services:\n  a:\n    image: x:1\n    extends: {file: other.yaml, service: b}\n")
    [problem] = problems([repo / "compose.yaml"])
    assert problem.startswith(f"{repo / 'compose.yaml'}:4:5: services.a.extends: extends cycle: ")
    assert "compose.yaml:services.a -> other.yaml:services.b -> compose.yaml:services.a" in problem


def test_a_service_extending_itself_is_a_cycle(repo):
    write(repo, "compose.yaml", "services:\n  a:\n    extends: a\n")
    [problem] = problems([repo / "compose.yaml"])
    assert "3:5: services.a.extends: extends cycle: compose.yaml:services.a -> compose.yaml:services.a" in problem


def test_a_missing_service_or_file_is_an_error_at_the_extends_line(repo):
    write(repo, "base.yaml", "services:\n  base: {image: x:1}\n")
    write(repo, "compose.yaml", """\
services:
  a:
    extends: nothere
  b:
    extends: {file: base.yaml, service: nope}
  c:
    extends: {file: missing.yaml, service: base}
""")
    found = problems([repo / "compose.yaml"])
    assert found[0].endswith("compose.yaml:3:5: services.a.extends: extends: no service 'nothere' in this file")
    assert found[1].endswith("compose.yaml:5:41: services.b.extends.service: extends: no service 'nope' in base.yaml")
    assert "compose.yaml:7:21: services.c.extends.file: extends: no such file 'missing.yaml'" in found[2]


def test_an_extended_file_outside_the_repository_needs_allow_outside(repo):
    write(repo, "base.yaml", "services:\n  base: {image: x:1}\n")
    write(repo, "inner/.git/HEAD", "")
    compose = write(repo, "inner/compose.yaml", "services:\n  a:\n    extends: {file: ../base.yaml, service: base}\n")
    [problem] = problems([compose])
    assert "services.a.extends.file: extends: '../base.yaml' resolves to" in problem
    assert "--allow-outside-paths" in problem
    stack = load_compose([compose], environ={}, allow_outside=True)
    assert stack.project.data["services"]["a"] == {"image": "x:1"}


def test_a_reset_in_the_extending_service_clears_the_inherited_value(repo):
    write(repo, "compose.yaml", """\
services:
  base: {image: x:1, ports: ["80:80"], environment: {A: "1", B: "1"}}
  web:
    extends: base
    ports: !reset []
    environment:
      A: !reset null
""")
    assert services([repo / "compose.yaml"])["web"] == {"image": "x:1", "environment": {"B": "1"}}


# -- include --------------------------------------------------------------------------


def test_include_loads_a_project_with_its_own_directory_and_env(repo):
    write(repo, "db/.env", "PG=16\nWHO=db\n")
    write(repo, "db/compose.yaml", """\
services:
  db:
    image: postgres:${PG}
    environment: {WHO: "${WHO}"}
    volumes: [./pgdata:/var/lib/postgresql/data, data:/backup]
volumes:
  data: {}
""")
    write(repo, "compose.yaml", "include:\n  - db/compose.yaml\nservices:\n  web: {image: x:1, depends_on: [db]}\n")
    found = project([repo / "compose.yaml"], environ={"WHO": "me"})
    db = found.data["services"]["db"]
    assert db["image"] == "postgres:16"
    assert db["environment"] == {"WHO": "me"}  # the including project's variables win
    assert db["volumes"] == [f"{repo / 'db'}/pgdata:/var/lib/postgresql/data", "data:/backup"]
    assert found.data["volumes"] == {"data": {}}
    assert "include" not in found.data
    assert found.marks[("services", "db", "image")].file.endswith("db/compose.yaml")
    assert {(repo / "db/compose.yaml").resolve(), (repo / "db/.env").resolve()} <= set(found.linked)


def test_include_long_syntax_takes_several_files_a_project_directory_and_env_files(repo):
    write(repo, "shared/a.env", "TAG=2\n")
    write(repo, "shared/compose.yaml", "services:\n  cache: {image: 'redis:${TAG}', build: ./ctx}\n")
    write(repo, "shared/override.yaml", "services:\n  cache: {command: [redis-server]}\n")
    write(repo, "compose.yaml", """\
include:
  - path: [shared/compose.yaml, shared/override.yaml]
    project_directory: elsewhere
    env_file: shared/a.env
services:
  web: {image: x:1}
""")
    cache = services([repo / "compose.yaml"])["cache"]
    assert cache == {"image": "redis:2", "build": {"context": str(repo / "elsewhere/ctx")},
                     "command": ["redis-server"]}


def test_a_resource_defined_by_an_include_and_the_including_file_is_an_error_naming_both(repo):
    write(repo, "db/compose.yaml", "services:\n  db: {image: postgres:16}\nnetworks:\n  back: {}\n")
    write(repo, "compose.yaml", """\
include: [db/compose.yaml]
services:
  db: {image: postgres:17}
networks:
  back: {}
""")
    [problem] = problems([repo / "compose.yaml"])
    assert problem.startswith(f"{repo / 'compose.yaml'}:3:3: services.db: services.db is defined both here and at "
                              f"{repo / 'db/compose.yaml'}:2:3 (included by include[0] at "
                              f"{repo / 'compose.yaml'}:1:11)")
    # the same definition twice (networks.back) is one definition


def test_includes_nest_and_a_cycle_is_an_error(repo):
    write(repo, "a/compose.yaml", "include: [../b/compose.yaml]\nservices:\n  a: {image: a:1, volumes: [./x:/x]}\n")
    write(repo, "b/compose.yaml", "services:\n  b: {image: b:1, volumes: [./y:/y]}\n")
    write(repo, "compose.yaml", "include: [a/compose.yaml]\nservices:\n  web: {image: x:1}\n")
    found = services([repo / "compose.yaml"])
    assert sorted(found) == ["a", "b", "web"]
    assert found["b"]["volumes"] == [f"{repo / 'b'}/y:/y"]
    write(repo, "b/compose.yaml", "include: [../compose.yaml]\nservices:\n  b: {image: b:1}\n")
    [problem] = problems([repo / "compose.yaml"])
    cycle = "include cycle: compose.yaml -> a/compose.yaml -> b/compose.yaml -> compose.yaml"
    assert f"b/compose.yaml:1:11: include[0]: {cycle}" in problem


def test_an_error_in_an_included_file_names_that_files_line(repo):
    write(repo, "db/compose.yaml", "services:\n  db:\n    image: postgres:16\n    restart: sometimes\n")
    compose = write(repo, "compose.yaml", "include: [db/compose.yaml]\nservices:\n  web: {image: x:1}\n")
    with pytest.raises(SpecError) as caught:
        load_desired([compose], environ={})
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (str(repo / "db/compose.yaml"), 4, "services.db.restart")


def test_extended_and_included_files_are_inputs_a_watch_follows(repo):
    write(repo, "base.yaml", "services:\n  base: {image: x:1}\n")
    write(repo, "db/compose.yaml", "services:\n  db: {image: postgres:16}\n")
    compose = write(repo, "compose.yaml", """\
include: [db/compose.yaml]
services:
  web: {extends: {file: base.yaml, service: base}}
""")
    inputs = load_desired([compose], environ={}).inputs
    assert {str((repo / n).resolve()) for n in ("base.yaml", "db/compose.yaml", "db/.env")} <= set(inputs)


# -- !reset and !override -------------------------------------------------------------


def test_reset_and_override_across_two_files(repo):
    main = write(repo, "compose.yaml", """\
services:
  web:
    image: x:1
    build: {context: ., dockerfile: Dockerfile.dev}
    ports: ["8080:80", "8443:443"]
    environment: {A: "1", B: "1"}
    labels: {one: "1"}
    dns: [1.1.1.1]
""")
    override = write(repo, "prod.yaml", """\
services:
  web:
    build: !reset null
    ports: !override ["80:80"]
    environment:
      B: !reset
    labels: !override {two: "2"}
    dns: !reset []
""")
    found = project([main, override])
    assert found.data["services"]["web"] == {"image": "x:1", "ports": ["80:80"], "environment": {"A": "1"},
                                             "labels": {"two": "2"}}
    assert found.marks[("services", "web", "ports", 0)].file == str(override)


def test_the_merge_tags_are_refused_in_a_stack_spec(tmp_path):
    stack = write(tmp_path, "stack.yaml", "containers:\n  web:\n    image: x:1\n    ports: !reset []\n")
    with pytest.raises(SpecError) as caught:
        load_stack([stack], environ={})
    assert "stack.yaml:4:12: containers.web.ports: tag '!reset' is not allowed" in str(caught.value)


def test_other_tags_stay_refused_in_a_compose_file(repo):
    write(repo, "compose.yaml", "services:\n  web:\n    image: !!python/object x\n    ports: !merge []\n")
    found = problems([repo / "compose.yaml"])
    assert any("tag '!!python/object' is not allowed" in p for p in found)
    assert any("tag '!merge' is not allowed" in p for p in found)


def test_merge_tags_survive_the_yaml_cache():
    text = "services:\n  web:\n    ports: !reset []\n    image: !override 'a:1'\n"
    first = compose_file(text, "compose.yaml", remember=True, merge_tags=True)
    second = compose_file(text, "compose.yaml", remember=True, merge_tags=True)
    tags = {("services", "web", "ports"): "reset", ("services", "web", "image"): "override"}
    assert second.tags == first.tags == tags
    assert second.data == first.data == {"services": {"web": {"image": "a:1"}}}
    plain = compose_file(text, "compose.yaml", remember=True)
    assert plain.problems and not plain.tags  # the same text read as a stack spec is not the Compose reading


def test_convert_writes_the_merged_result(repo, capsys):
    from reconciler.cli import main

    write(repo, "base.yaml", "services:\n  base: {image: 'x:1', environment: {A: '1'}}\n")
    compose = write(repo, "compose.yaml", """\
services:
  web:
    extends: {file: base.yaml, service: base}
    environment: {B: '2'}
""")
    assert main(["convert", "-f", str(compose)]) == 0
    out = capsys.readouterr().out
    assert "extends" not in out and "A: '1'" in out and "B: '2'" in out
