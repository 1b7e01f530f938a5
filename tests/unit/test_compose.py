"""Compose files in: reading a project by Compose's rules, and translating it to a stack spec (dict → dict)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.spec import load_desired
from reconciler.spec.compose import ComposeOptions, compose_path, find_files, load_compose
from reconciler.spec.compose.convert import render_stack
from reconciler.spec.compose.project import normalize_project_name, read_project
from reconciler.spec.compose.translate import translate

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "compose"
#: Corpus projects that use only fields today's stack spec has (the rest need the spec's Compose fields).
VALID_TODAY = ("anchors", "build-targets", "deploy", "envfiles", "long-syntax", "networks", "profiles", "webapp")
ENV = {"API_TOKEN": "t0ken"}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def translated(paths, environ=None, **options) -> dict:
    stack = load_compose(find_files(paths), environ=environ or {}, options=ComposeOptions(**options))
    return stack.raw.data


def problems(paths, environ=None, **options) -> list:
    with pytest.raises(SpecError) as caught:
        load_compose(find_files(paths), environ=environ or {}, options=ComposeOptions(**options))
    return caught.value.problems


def copy_fixture(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(CORPUS / name, target)
    return target


# -- recognising Compose files --------------------------------------------------------


def test_a_compose_file_is_recognised_from_its_content_whatever_its_name(tmp_path):
    compose = write(tmp_path, "anything.yaml", "services:\n  web: {image: a:1}\n")
    stack = write(tmp_path, "stack.yaml", "containers:\n  web: {image: a:1}\n")
    mixed = write(tmp_path, "mixed.yaml", "services: {}\ncontainers: {}\n")
    assert find_files([compose]) == [compose]
    assert find_files([stack]) is None
    assert find_files([mixed]) is None  # a stack file with a stray key: the stack loader says what is wrong


def test_a_directory_is_a_project_with_its_override_file(tmp_path):
    main = write(tmp_path, "docker-compose.yml", "services:\n  web: {image: a:1}\n")
    override = write(tmp_path, "docker-compose.override.yml", "services:\n  web: {image: a:2}\n")
    assert find_files([tmp_path]) == [main, override]
    assert translated([tmp_path])["containers"]["web"]["image"] == "a:2"


def test_a_directory_of_stack_files_is_not_a_compose_project(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web: {image: a:1}\n")
    write(tmp_path, "stack.yaml", "containers:\n  web: {image: a:1}\n")
    assert find_files([tmp_path]) is None


# -- interpolation and variables ------------------------------------------------------


def test_interpolation_follows_compose(tmp_path):
    write(tmp_path, "compose.yaml", """\
services:
  web:
    image: "a:${TAG}"
    environment:
      EMPTY_DEFAULT: "${EMPTY:-d1}"
      UNSET_DEFAULT: "${UNSET-d2}"
      EMPTY_KEPT: "x${EMPTY-d3}x"
      NESTED: "${UNSET:-${TAG:-no}-n}"
      LITERAL: "$$HOME and $${TAG}"
      BARE: "$TAG/$UNSET."
""")
    env = translated([tmp_path / "compose.yaml"], {"TAG": "7", "EMPTY": ""})["containers"]["web"]["env"]
    assert env == {"EMPTY_DEFAULT": "d1", "UNSET_DEFAULT": "d2", "EMPTY_KEPT": "xx", "NESTED": "7-n",
                   "LITERAL": "$HOME and ${TAG}", "BARE": "7/."}


def test_a_required_variable_names_the_file_line_and_message(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:1\n    user: ${RUNAS:?set RUNAS}\n")
    (problem,) = problems([tmp_path / "compose.yaml"])
    assert (problem.line, problem.path) == (4, "services.web.user")
    assert problem.file.endswith("compose.yaml") and "RUNAS" in problem.message and "set RUNAS" in problem.message


def test_an_unset_variable_without_default_is_a_warning(tmp_path, caplog):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:${TAG}${OTHER:-1}\n")
    with caplog.at_level(logging.WARNING):
        assert translated([tmp_path / "compose.yaml"])["containers"]["web"]["image"] == "a:1"
    assert "TAG variable is not set" in caplog.text and "OTHER" not in caplog.text


def test_dotenv_in_the_project_directory_under_the_environment(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:${TAG}\n    user: ${USERID}\n")
    write(tmp_path, ".env", "TAG=from-dotenv\nUSERID=1000\n")
    data = translated([tmp_path / "compose.yaml"], {"TAG": "from-env"})
    assert data["containers"]["web"]["image"] == "a:from-env"
    assert data["containers"]["web"]["user"] == "1000"


def test_env_file_option_replaces_dotenv(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:${TAG:-none}\n    user: ${USERID:-0}\n")
    write(tmp_path, ".env", "TAG=from-dotenv\n")
    first = write(tmp_path, "one.env", "TAG=one\nUSERID=1\n")
    second = write(tmp_path, "two.env", "TAG=two\n")
    data = translated([tmp_path / "compose.yaml"], env_files=(str(first), str(second)))
    assert data["containers"]["web"]["image"] == "a:two" and data["containers"]["web"]["user"] == "1"


def test_environment_without_value_comes_from_the_variables_or_is_left_out(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:1\n    environment: [SET, UNSET, 'E=']\n")
    env = translated([tmp_path / "compose.yaml"], {"SET": "yes"})["containers"]["web"]["env"]
    assert env == {"SET": "yes", "E": ""}


# -- several files: Compose's merge rules ---------------------------------------------


def test_overrides_merge_by_compose_rules():
    folder = CORPUS / "overrides"
    files = [folder / "compose.yaml", folder / "compose.override.yaml", folder / "compose.prod.yaml"]
    web = translated(files)["containers"]["web"]
    assert web["image"] == "example/web:1.1"  # scalar: the later file wins
    assert web["command"] == ["web", "--port", "80", "--reload"]  # replaced whole, not appended
    assert web["ports"] == ["8080:80", "9229:9229"]  # each port once
    assert web["env"] == {"MODE": "development", "WORKERS": "4", "DEBUG": "1"}  # list/map forms merge by name
    assert web["labels"] == {"com.example.tier": "front", "com.example.dev": "true"}
    assert web["volumes"] == ["./src:/srv/static", "logs:/var/log/web"]  # merged by target path
    assert web["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert web["restart"] == "always" and web["replicas"] == 3


def test_a_merged_value_points_at_the_file_it_came_from():
    folder = CORPUS / "overrides"
    stack = load_compose([folder / "compose.yaml", folder / "compose.override.yaml"], environ={})
    assert stack.raw.mark(("containers", "web", "env", "MODE")).file.endswith("compose.override.yaml")
    assert stack.raw.mark(("containers", "web", "env", "WORKERS")).file.endswith("/compose.yaml")
    assert stack.raw.mark(("containers", "web", "ports", 1)).line == 7


def test_relative_paths_in_an_override_elsewhere_are_relative_to_the_project(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web: {image: a:1}\n")
    write(tmp_path, "ops/extra.yaml", "services:\n  web:\n    volumes: ['./data:/data']\n    env_file: web.env\n")
    web = translated([tmp_path / "compose.yaml", tmp_path / "ops/extra.yaml"])["containers"]["web"]
    assert web["volumes"] == [f"{tmp_path}/data:/data"] and web["env_file"] == [f"{tmp_path}/web.env"]


# -- profiles and the project name ----------------------------------------------------


def test_services_of_inactive_profiles_are_left_out():
    data = translated([CORPUS / "profiles"])
    assert list(data["containers"]) == ["app"]
    assert data["containers"]["app"]["depends_on"] == {}  # migrate is not required


@pytest.mark.parametrize("profiles, environ, expected", [
    (("setup",), {}, ["app", "migrate"]),
    (("tools", "dev"), {}, ["app", "debug", "mailhog"]),
    (("*",), {}, ["app", "migrate", "debug", "mailhog"]),
    ((), {"COMPOSE_PROFILES": "debug, setup"}, ["app", "migrate", "debug"]),
])
def test_profiles_select_services(profiles, environ, expected):
    data = translated([CORPUS / "profiles"], environ, profiles=profiles)
    assert list(data["containers"]) == expected
    if "migrate" in expected:
        assert data["containers"]["app"]["depends_on"] == {"migrate": {"condition": "completed"}}


def test_a_required_dependency_in_an_inactive_profile_is_an_error(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  app:\n    image: a:1\n    depends_on: [db]\n"
                                    "  db:\n    image: d:1\n    profiles: [data]\n")
    (problem,) = problems([tmp_path / "compose.yaml"])
    assert problem.path == "services.app.depends_on.db" and problem.line == 4
    assert "profiles (data) are not active" in problem.message and "--profile" in problem.message


@pytest.mark.parametrize("directory, expected", [("My App.v2", "myappv2"), ("_web-1", "web-1"), ("Foo_Bar", "foo_bar")])
def test_project_name_from_the_directory_normalised(tmp_path, directory, expected):
    assert normalize_project_name(directory) == expected
    write(tmp_path / directory, "compose.yaml", "services:\n  web: {image: a:1}\n")
    assert translated([tmp_path / directory])["name"] == expected


def test_project_name_order(tmp_path):
    write(tmp_path, "compose.yaml", "name: from-file\nservices:\n  web: {image: a:1}\n")
    files = [tmp_path / "compose.yaml"]
    assert translated(files)["name"] == "from-file"
    assert translated(files, {"COMPOSE_PROJECT_NAME": "from-env"})["name"] == "from-env"
    assert translated(files, {"COMPOSE_PROJECT_NAME": "from-env"}, project_name="from-flag")["name"] == "from-flag"


# -- translation --------------------------------------------------------------------


def test_webapp_translates_key_for_key():
    data = translated([CORPUS / "webapp" / "compose.yaml"])
    assert data == {
        "name": "webapp",
        "volumes": {"db-data": {}},
        "containers": {
            "web": {
                "image": "nginx:1.25",
                "ports": ["127.0.0.1:8080:80"],
                "env": {"DATABASE_URL": "postgres://app:secret@db:5432/app", "CACHE_URL": "redis://cache:6379/0"},
                "depends_on": {"db": {"condition": "healthy"}, "cache": {"condition": "started"}},
                "restart": "unless-stopped",
            },
            "db": {
                "image": "postgres:16",
                "env": {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "secret", "POSTGRES_DB": "app"},
                "volumes": ["db-data:/var/lib/postgresql/data"],
                "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U app"], "interval": "5s", "timeout": "3s",
                                "retries": 10, "start_period": "10s"},
                "restart": "unless-stopped",
            },
            "cache": {"image": "redis:7-alpine", "command": 'redis-server --save "" --appendonly no',
                      "restart": "unless-stopped"},
        },
    }


def test_builds_become_images_with_the_service_name():
    data = translated([CORPUS / "build-targets"], {"COMMIT": "abc123"})
    assert data["images"] == {
        "api": {"ref": "example/api:dev", "build": {"context": "./app", "dockerfile": "Dockerfile",
                                                     "target": "runtime",
                                                     "args": {"VERSION": "1.4.2", "COMMIT": "abc123"}}},
        "worker": {"build": {"context": "./worker"}},
    }
    assert data["containers"]["api"]["image"] == "api"
    assert data["containers"]["api"]["command"] == ["sh", "-c", "echo api $VERSION; exec sleep 3600"]
    assert data["containers"]["worker"]["depends_on"] == {"api": {"condition": "started"}}


def test_bare_image_names_become_image_entries(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  db:\n    image: postgres\n  web:\n    image: nginx\n"
                                    "    pull_policy: always\n")
    data = translated([tmp_path / "compose.yaml"])
    assert data["images"] == {"db": {"ref": "postgres"}, "web": {"ref": "nginx", "pull": "always"}}
    assert data["containers"]["db"]["image"] == "db"


def test_env_files_and_labels():
    app = translated([CORPUS / "envfiles"], {"UID": "501"})["containers"]["app"]
    assert app["image"] == "registry.example.com/team/app:2.3.1"
    assert app["env_file"] == ["common.env"]  # local.env is optional and absent
    assert app["env"] == {"LOG_LEVEL": "info", "GREETING": "hello $USER", "APP_ENV": "staging", "REGION": "eu-west-1"}
    assert app["labels"] == {"com.example.release": "42"}
    assert app["user"] == "501:1000"


def test_anchors_and_merge_keys():
    data = translated([CORPUS / "anchors"], {"VERSION": "2.0"})
    orders = data["containers"]["orders"]
    assert orders["image"] == "example/svc:2.0" and orders["init"] is True and orders["restart"] == "unless-stopped"
    assert orders["env"] == {"TZ": "UTC", "LOG_FORMAT": "json", "SERVICE": "orders"}
    assert orders["healthcheck"] == {"interval": "10s", "timeout": "2s", "retries": 3,
                                     "test": ["CMD", "svc", "health", "orders"]}
    assert data["containers"]["gateway"]["depends_on"] == {"orders": {"condition": "healthy"},
                                                           "payments": {"condition": "healthy"}}
    assert "x-team" not in orders and not any(k.startswith("x-") for k in data)


def test_long_syntax_ports_volumes_tmpfs_configs_and_secrets():
    data = translated([CORPUS / "long-syntax"])
    proxy = data["containers"]["proxy"]
    assert proxy["ports"] == [{"target": 80, "published": 8081, "protocol": "tcp"},
                              {"target": 443, "host_ip": "127.0.0.1", "published": 8443},
                              {"target": 8080}]
    assert proxy["volumes"] == [
        # bind.create_host_path is carried over (issue 22): it was dropped, so a missing source was refused.
        {"type": "bind", "source": "./config", "target": "/etc/traefik", "read_only": True, "create_host_path": True},
        {"type": "volume", "source": "certs", "target": "/certs"},
        {"type": "tmpfs", "target": "/cache", "size": "16m"},
        {"type": "tmpfs", "target": "/run", "size": "8m"},
    ]
    assert proxy["configs"] == [{"source": "routes", "target": "/etc/traefik/dynamic/routes.yml", "mode": 444}]
    assert proxy["secrets"] == ["api_token"]
    assert data["volumes"] == {"certs": {"driver": "local", "options": {"type": "tmpfs", "device": "tmpfs",
                                                                       "o": "size=32m"},
                                         "labels": {"com.example.purpose": "tls"}}}
    assert data["configs"] == {"routes": {"file": "./config/routes.yml"}}
    assert data["secrets"] == {"api_token": {"environment": "API_TOKEN"}}


def test_networks_ipam_aliases_and_the_default_network():
    data = translated([CORPUS / "networks"])
    assert data["networks"] == {
        "public": {"driver": "bridge", "labels": {"com.example.zone": "dmz"}},
        "private": {"internal": True, "ipam": {"subnet": "172.28.0.0/24"}},
        "default": {},
    }
    assert data["containers"]["frontend"]["networks"] == {"public": None, "default": None}
    assert data["containers"]["api"]["networks"] == {"public": {"aliases": ["api.internal"]}, "private": None}


def test_deploy_settings():
    data = translated([CORPUS / "deploy"], {"WORKERS": "4"})
    worker, scheduler = data["containers"]["worker"], data["containers"]["scheduler"]
    assert worker["replicas"] == 4 and worker["cpus"] == 0.25 and worker["memory"] == "64m"
    assert worker["restart"] == "on-failure:3"
    assert worker["update"] == {"parallelism": 1, "delay": "5s", "order": "start-first"}
    assert scheduler["replicas"] == 1 and scheduler["healthcheck"] == {"test": ["NONE"]}


def test_compose_spellings_of_new_stack_fields_pass_through_by_name():
    data = translated([CORPUS / "wordpress"])
    assert data["containers"]["db"]["expose"] == [3306, 33060]
    assert data["volumes"] == {"db_data": {}, "wp_data": {}}
    assert data["containers"]["db"]["env"]["MYSQL_DATABASE"] == "wordpress"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir() if p.is_dir()))
def test_every_corpus_project_translates(name):
    stack = load_compose(find_files([CORPUS / name]), environ=ENV)
    assert stack.raw.data["containers"]
    assert not stack.translation.problems
    # Every field written points into a Compose file.
    for path in stack.raw.data["containers"]:
        assert stack.raw.mark(("containers", path)).file.startswith(str(CORPUS / name))


@pytest.mark.parametrize("name", VALID_TODAY)
def test_corpus_projects_load_as_desired_state(name):
    desired = load_desired([CORPUS / name], environ=ENV)
    assert desired.containers


# -- what cannot be expressed -----------------------------------------------------------


def test_an_unsupported_key_is_an_error_at_its_line_saying_what_to_do(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:1\n    links: [db]\n"
                                    "    deploy:\n      placement: {constraints: [node.role==manager]}\n")
    found = problems([tmp_path / "compose.yaml"])
    assert [(p.line, p.path) for p in found] == [(4, "services.web.links"), (6, "services.web.deploy.placement")]
    assert "name on a shared network" in found[0].message and "--ignore-unsupported" in found[0].message
    assert "Swarm" in found[1].message


def test_ignore_unsupported_drops_with_a_warning(tmp_path, caplog):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:1\n    mac_address: 02:42:ac:11:00:02\n")
    with caplog.at_level(logging.WARNING):
        data = translated([tmp_path / "compose.yaml"], ignore_unsupported=True)
    assert data["containers"]["web"] == {"image": "a:1"}
    assert "compose.yaml:4" in caplog.text and "mac_address" in caplog.text


def test_unknown_keys_are_errors_and_external_objects_are_not(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:1\n    imagee: b\n"
                                    "networks:\n  shared:\n    external: true\n")
    found = problems([tmp_path / "compose.yaml"])
    assert [(p.line, p.path) for p in found] == [(4, "services.web.imagee")]
    assert "unknown Compose service key 'imagee'" in found[0].message


def test_validation_errors_name_the_compose_file_line_and_key(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: a:1\n    environment:\n      A: {x: 1}\n"
                                    "    ports: [abc]\n    depends_on: [nope]\n")
    with pytest.raises(SpecError) as caught:
        load_desired([tmp_path / "compose.yaml"], environ={})
    found = {(p.line, p.path) for p in caught.value.problems}
    assert {(6, "services.web.ports[0]"), (7, "services.web.depends_on.nope"),
            (5, "services.web.environment.A")} <= found
    assert all(p.file.endswith("compose.yaml") for p in caught.value.problems)


def test_compose_path_rewrites_the_longest_prefix():
    paths = {"containers.web": "services.web", "containers.web.env": "services.web.environment"}
    assert compose_path("containers.web.env.A", paths) == "services.web.environment.A"
    assert compose_path("containers.web.ports[0]", paths) == "services.web.ports[0]"
    assert compose_path("containers.webx", paths) == "containers.webx"


# -- convert ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_TODAY)
def test_converted_spec_gives_the_same_containers(name, tmp_path):
    folder = copy_fixture(name, tmp_path)
    stack = load_compose(find_files([folder]), environ=ENV)
    text = render_stack(stack)
    converted = write(folder, "stack.yaml", text)
    from_compose = load_desired([folder / "compose.yaml"], environ=ENV)
    from_spec = load_desired([converted], environ=ENV)
    assert from_spec.stack == from_compose.stack
    assert {n: c.config_hash for n, c in from_spec.containers.items()} == \
           {n: c.config_hash for n, c in from_compose.containers.items()}
    assert from_spec.networks == from_compose.networks and from_spec.volumes == from_compose.volumes


def test_convert_keeps_comments_and_says_what_changed(tmp_path):
    write(tmp_path, "compose.yaml", "# the project\nservices:\n  # the database\n  db:\n    image: postgres\n"
                                    "    environment:\n      PASSWORD: 'pa$$word'\n      HOME:\n")
    text = render_stack(load_compose([tmp_path / "compose.yaml"], environ={"HOME": "/home/me"}))
    assert "  # the database\n  # converted: env.HOME: the value of $HOME when converted\n  db:\n" in text
    assert "# converted: the image 'postgres' of service db" in text
    assert "PASSWORD: pa$$word" in text  # compose read pa$word; the stack loader reads this back as pa$word


def test_read_project_keeps_x_extensions_out_of_the_translation(tmp_path):
    write(tmp_path, "compose.yaml", "version: '3.8'\nx-a: {b: 1}\nservices:\n  web: {image: a:1, x-b: 2}\n")
    project = read_project([tmp_path / "compose.yaml"], {}, ComposeOptions())
    translation = translate(project)
    assert "x-a" in project.data and "x-a" not in translation.data
    assert not translation.problems and translation.notes


# -- the command line ------------------------------------------------------------------


def test_cli_finds_compose_yaml_and_its_override_and_takes_compose_flags(tmp_path, capsys, monkeypatch):
    from reconciler.cli import main

    write(tmp_path, "compose.yaml", "services:\n  web: {image: 'a:${TAG}'}\n  dbg: {image: 'b:1', profiles: [debug]}\n")
    write(tmp_path, "compose.override.yaml", "services:\n  web: {environment: [A=1]}\n")
    write(tmp_path, "ci.env", "TAG=9\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "-p", "shop", "--env-file", "ci.env", "--profile", "debug"]) == 0
    assert "compose.yaml, compose.override.yaml: valid stack 'shop' (0 images, 1 networks, 0 volumes, " \
           "2 containers)" in capsys.readouterr().out
    assert main(["convert", "--env-file", "ci.env"]) == 0
    out = capsys.readouterr().out
    assert "image: a:9" in out and "A: '1'" in out and "dbg" not in out


def test_cli_convert_refuses_a_stack_spec_and_reports_unsupported_keys(tmp_path, capsys):
    from reconciler.cli import main

    spec = write(tmp_path, "stack.yaml", "containers: {web: {image: 'x:1'}}\n")
    assert main(["convert", "-f", str(spec)]) == 1
    assert "not a Compose project" in capsys.readouterr().err
    compose = write(tmp_path, "compose.yaml", "services:\n  web: {image: 'x:1', cpu_shares: 512}\n")
    assert main(["convert", "-f", str(compose)]) == 1
    assert "compose.yaml:2:35: services.web.cpu_shares: Compose key 'cpu_shares' is not supported" \
           in capsys.readouterr().err
    assert main(["convert", "-f", str(compose), "--ignore-unsupported"]) == 0
    captured = capsys.readouterr()
    assert "cpu_shares" not in captured.out and "web:" in captured.out


def test_env_files_given_are_inputs_a_watch_follows(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web: {image: 'a:${TAG}'}\n")
    env = write(tmp_path, "ci.env", "TAG=1\n")
    desired = load_desired([tmp_path / "compose.yaml"], environ={}, compose=ComposeOptions(env_files=(str(env),)))
    assert str(env.resolve()) in desired.inputs


def test_docs_table_names_every_compose_key_the_translator_knows():
    from reconciler.spec.compose import keys

    text = (Path(__file__).resolve().parents[2] / "docs" / "compose.md").read_text()
    known = {*keys.PASSED, *keys.RENAMED, *keys.TRANSLATED, *keys.IGNORED, *keys.UNSUPPORTED_TOP,
             *keys.UNSUPPORTED}
    missing = sorted(k for k in known if f"`{k}`" not in text)
    assert not missing, f"docs/compose.md does not mention {missing}"


def test_interpolated_values_are_cast_where_compose_casts_them(tmp_path):
    write(tmp_path, "compose.yaml", """\
services:
  web:
    image: a:1
    init: ${INIT:-true}
    cpus: ${CPUS:-0.5}
    scale: ${N:-2}
    ports: [{target: "${PORT:-80}", published: "8000-8001"}]
    volumes: [{type: bind, source: ., target: /x, read_only: "${RO:-false}"}]
    healthcheck: {test: [CMD, x], retries: "${RETRIES:-3}"}
    labels: {count: "${N:-2}"}
""")
    web = translated([tmp_path / "compose.yaml"])["containers"]["web"]
    assert (web["init"], web["cpus"], web["replicas"]) == (True, 0.5, 2)
    assert web["ports"] == [{"target": 80, "published": "8000-8001"}]
    assert web["volumes"][0]["read_only"] is False and web["healthcheck"]["retries"] == 3
    assert web["labels"] == {"count": "2"}  # labels stay text


def test_one_string_forms_merge_with_lists(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    build: ./app\n    dns: 1.1.1.1\n    env_file: a.env\n")
    write(tmp_path, "more.yaml", "services:\n  web:\n    build: {target: prod}\n    dns: [8.8.8.8]\n"
                                 "    env_file: [b.env]\n")
    data = translated([tmp_path / "compose.yaml", tmp_path / "more.yaml"])
    assert data["images"]["web"]["build"] == {"context": "./app", "target": "prod"}
    assert data["containers"]["web"]["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert data["containers"]["web"]["env_file"] == ["a.env", "b.env"]


def test_compose_options_on_a_stack_spec_are_an_error(tmp_path):
    spec = write(tmp_path, "stack.yaml", "containers: {web: {image: 'x:1'}}\n")
    assert load_desired([spec], environ={}, compose=ComposeOptions()).containers
    with pytest.raises(SpecError, match="apply to Compose files only"):
        load_desired([spec], environ={}, compose=ComposeOptions(env_files=(str(spec),)))
    # --profile is not Compose-only: stack specs have profiles: too.
    assert load_desired([spec], environ={}, compose=ComposeOptions(profiles=("debug",)), profiles=("debug",)).containers
