"""The CLI's engine-free paths: validate, error rendering, exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from reconciler.cli import main
from reconciler.errors import SpecError


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_validate_a_directory_of_files_as_one_stack(tmp_path, capsys):
    write(tmp_path / "a.yaml", """
        name: split
        networks: {back: {}}
    """)
    write(tmp_path / "b.yml", """
        containers:
          web: {image: "x:1", networks: [back]}
    """)
    assert main(["validate", "-f", str(tmp_path)]) == 0
    assert "valid stack 'split'" in capsys.readouterr().out


def test_stack_name_defaults_to_the_directory_and_can_be_overridden(tmp_path, capsys):
    folder = tmp_path / "My_Shop"
    folder.mkdir()
    spec = write(folder / "stack.yaml", "containers: {web: {image: 'x:1'}}\n")
    assert main(["validate", "-f", str(spec)]) == 0
    assert "valid stack 'my_shop'" in capsys.readouterr().out
    assert main(["validate", "-f", str(spec), "--stack", "other"]) == 0
    assert "valid stack 'other'" in capsys.readouterr().out


def test_invalid_spec_reports_every_problem_with_location_and_no_traceback(tmp_path, capsys):
    spec = write(tmp_path / "stack.yaml", """
        containers:
          web:
            image: nowhere
            replicas: many
            depends_on: [ghost]
    """)
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:4:" in err and "image 'nowhere' is not defined" in err
    assert f"{spec}:5:" in err and "containers.web.replicas" in err
    assert "Traceback" not in err


def test_missing_spec_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    assert "no spec given" in capsys.readouterr().err


def test_malicious_yaml_is_refused_cleanly(tmp_path, capsys):
    spec = write(tmp_path / "stack.yaml", "containers: !!python/object/apply:os.system ['echo pwned']\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "stack.yaml:1:" in err and "Traceback" not in err


def test_unreachable_engine_is_one_clear_line(tmp_path, capsys):
    spec = write(tmp_path / "stack.yaml", "containers: {web: {image: 'x:1'}}\n")
    assert main(["plan", "-f", str(spec), "--engine", f"unix://{tmp_path}/missing.sock"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Docker engine at unix://{tmp_path}/missing.sock: no such file")
    assert "Traceback" not in err


def test_plugins_list_shows_distribution_drivers_and_hooks(tmp_path, capsys, monkeypatch):
    import json

    (tmp_path / "dev_plugin.py").write_text(
        "from reconciler.hookspecs import hookimpl\n\nRECONCILER_API_VERSION = 2\n\n"
        "@hookimpl\ndef reconciler_plan_ready(plan, desired):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["plugins", "list", "--output", "json", "--plugin", "dev_plugin"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    docker = rows["docker"]
    assert docker["distribution"] == "reconciler" and docker["version"]
    assert "runtime:docker" in docker["drivers"] and "network:bridge" in docker["drivers"]
    assert docker["hooks"] == ["reconciler_register_drivers"]
    assert rows["dev_plugin"]["distribution"] is None
    assert rows["dev_plugin"]["hooks"] == ["reconciler_plan_ready"]


def test_a_driver_no_plugin_provides_is_a_located_validation_error(tmp_path, capsys):
    spec = write(tmp_path / "stack.yaml", """
        networks:
          back: {driver: weave}
        volumes:
          data: {driver: nfs-magic}
    """)
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:3:" in err and "no plugin provides the network driver 'weave' (available: bridge" in err
    assert f"{spec}:5:" in err and "volume driver 'nfs-magic' (available: " in err and "local" in err


def test_disabling_the_docker_plugin_leaves_its_drivers_unavailable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECONCILER_DISABLED_PLUGINS", "docker")
    spec = write(tmp_path / "stack.yaml", "networks: {back: {}}\n")
    assert main(["validate", "-f", str(spec)]) == 1
    assert "no plugin provides the network driver 'bridge' (available: none)" in capsys.readouterr().err


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI with a stdout whose reader has already gone (``reconcile … | head`` after head exits)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    spec = write(tmp_path / "stack.yaml", "containers: {web: {image: 'x:1'}}\n")
    result = _run_into_closed_pipe("validate", "-f", str(spec))
    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


EMPTY_MESSAGE = ("the spec of stack 'shop' is empty: applying it would delete every object the stack owns; "
                 "run 'reconcile destroy' to remove the stack")


@pytest.mark.parametrize("text", ["", "---\n", "# only a comment\n# and another\n", "name: shop\n"])
def test_an_empty_spec_is_refused_by_validate_with_the_message_apply_gives(tmp_path, capsys, text):
    folder = tmp_path / "shop"
    folder.mkdir()
    spec = write(folder / "stack.yaml", text)
    assert main(["validate", "-f", str(spec)]) == 1
    assert capsys.readouterr().err == f"error: {EMPTY_MESSAGE}\n"


def test_an_absolute_env_file_outside_the_repository_needs_the_flag(tmp_path, capsys):
    spec = write(tmp_path / "stack.yaml", "containers: {web: {image: 'x:1', env_file: /etc/os-release}}\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:1:" in err and "containers.web.env_file: '/etc/os-release' resolves to" in err
    assert "allow paths outside it with --allow-outside-paths" in err
    assert main(["validate", "-f", str(spec), "--allow-outside-paths"]) == 0


def test_validate_refuses_a_hostdir_on_a_system_path_at_its_line(tmp_path, capsys):
    spec = write(tmp_path / "stack.yaml", """
        volumes:
          fine: {driver: hostdir, options: {path: /srv/app/data}}
          config:
            driver: hostdir
            options: {path: /etc, owner: "0:0"}
          homes: {driver: hostdir, options: {path: /home/alice}}
        containers:
          web: {image: "x:1", volumes: ["config:/config"]}
    """)
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:6:" in err and "volumes.config.options: path '/etc' is a system directory" in err
    assert f"{spec}:7:" in err and "volumes.homes.options: path '/home/alice' is directly inside /home" in err
    assert "fine" not in err


def test_validate_checks_hostdir_options_without_importing_docker(tmp_path):
    import subprocess
    import sys

    spec = write(tmp_path / "stack.yaml", "volumes: {data: {driver: hostdir, options: {path: /usr/lib}}}\n")
    probe = ("import sys; from reconciler.cli import main; code = main(['validate', '-f', sys.argv[1]]); "
             "print(code, 'docker' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, str(spec)], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["1", "False"], out.stdout + out.stderr
    assert "path '/usr/lib' is a system directory" in out.stderr


def test_without_f_the_first_default_file_is_read_and_a_compose_file_with_its_override(tmp_path, capsys, monkeypatch):
    from reconciler.spec.specfiles import default_files

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "compose.yaml", "services: {web: {image: 'x:1'}}\n")
    write(tmp_path / "compose.override.yaml", "services: {web: {environment: {A: '1'}}}\n")
    assert default_files(tmp_path) == [tmp_path / "compose.yaml", tmp_path / "compose.override.yaml"]
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("compose.yaml, compose.override.yaml: valid stack")
    write(tmp_path / "stack.yml", "containers: {web: {image: 'x:1'}}\n")  # a stack spec comes first, alone
    assert default_files(tmp_path) == [tmp_path / "stack.yml"]
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("stack.yml: valid stack")


def test_one_function_chooses_the_engine_or_the_fleet(tmp_path):
    from reconciler.fleet import FleetReconciler
    from reconciler.runner import runner_for
    from reconciler.spec import load_desired
    from reconciler.testing import MemoryEngine, make_reconciler

    reconciler = make_reconciler(MemoryEngine())
    spec = write(tmp_path / "stack.yaml", """
        name: web
        targets:
          a: {engine: "unix:///a.sock"}
          b: {engine: "unix:///b.sock"}
        containers: {web: {image: "x:1"}}
    """)
    desired = load_desired([spec], environ={})
    assert runner_for(None, reconciler) is reconciler
    assert runner_for(desired, reconciler, engine="unix:///c.sock") is reconciler
    fleet = runner_for(desired, reconciler, targets=["b"])
    assert isinstance(fleet, FleetReconciler) and [t.name for t in fleet.targets] == ["b"]
    assert fleet.state is reconciler.state
    with pytest.raises(SpecError, match=r"--target: no target named c, d in the spec \(targets: a, b\)"):
        runner_for(desired, reconciler, targets=["d", "c"])
    with pytest.raises(SpecError, match="one engine only"):
        runner_for(desired, reconciler, one_engine="one engine only")


@pytest.mark.parametrize("argv", [
    ["--strict-plugins", "--log-level", "debug", "validate"],
    ["validate", "--strict-plugins", "--log-level", "debug"],
    ["--log-level", "info", "validate", "--strict-plugins", "--log-level", "debug"],
])
def test_global_flags_go_before_the_command_or_after_it(argv):
    from reconciler.cli.parser import build_parser

    args = build_parser(argv).parse_args(argv)
    assert (args.command, args.strict_plugins, args.log_level) == ("validate", True, "debug")


def test_global_flags_not_repeated_after_the_command_keep_their_defaults():
    from reconciler.cli.parser import build_parser

    args = build_parser(["history"]).parse_args(["history"])
    assert (args.strict_plugins, args.log_level) == (None, "warning")
