"""A stack on a fleet of three real engines, each a host of its own (scripts/engines.sh).

Every check of what exists reads the engine's own API, one client per engine.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reconciler.labels import owner_selector

from ..waiting import wait_until
from .conftest import BASE_IMAGE
from .engines import fleet_engines, write_fleet_spec  # noqa: F401  (fleet_engines: a session fixture)

APP = f"""
containers:
  app:
    image: {BASE_IMAGE}
    command: [sleep, "3600"]
    init: true
    stop_grace_period: 1s
    replicas: 2
"""


@pytest.fixture
def fleet(stack, fleet_engines):
    """(stack, engines): the stack's objects are removed from every engine afterwards."""
    yield stack, fleet_engines
    fleet_engines.clean(stack.name)


def names_on(engine, stack: str) -> dict[str, str]:
    """Container name -> state, as that engine reports it."""
    found = engine.client().containers(all=True, filters={"label": [owner_selector(stack)]})
    return {c["Names"][0].lstrip("/"): c["State"] for c in found}


def by_target(result) -> dict[str, dict]:
    return {t["target"]: t for t in result.json()["targets"]}


def test_one_stack_converges_on_three_engines_and_a_second_apply_writes_nothing(fleet) -> None:
    stack, engines = fleet
    assert engines[3].tls is not None  # one target over tcp with TLS client certificates
    write_fleet_spec(stack.dir, stack.name, engines, APP)
    first = stack.apply("--output", "json")
    assert first.code == 0, first.err + first.out
    assert {t: o["state"] for t, o in by_target(first).items()} == {"one": "converged", "two": "converged",
                                                                    "three": "converged"}
    for engine in engines:
        assert names_on(engine, stack.name) == {f"{stack.name}-app-1": "running", f"{stack.name}-app-2": "running"}
    assert stack.containers() == {}  # the main engine runs nothing of it

    again = stack.apply("--output", "json")
    assert again.code == 0, again.err
    for target in by_target(again).values():
        assert target["report"]["changes"] == [] and target["report"]["engine_calls"]["write"] == 0

    status = stack.cli("status")
    assert status.code == 0, status.err
    lines = [line.split() for line in status.out.splitlines()[1:]]
    assert sorted((row[1], row[3], row[4]) for row in lines) == [
        ("one", "converged", "none"), ("three", "converged", "none"), ("two", "converged", "none")]
    assert all(row[6] == "converged" for row in lines)  # the last sync's result, after its time


def test_an_engine_stopped_mid_apply_is_reported_and_converges_when_it_returns(fleet) -> None:
    stack, engines = fleet
    # app waits for db to be healthy (about 3 s): time enough to stop engine 3 in the middle.
    write_fleet_spec(stack.dir, stack.name, engines, f"""
containers:
  db:
    image: {BASE_IMAGE}
    command: [sh, -c, "sleep 3; touch /tmp/ready; exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    healthcheck: {{test: [CMD, test, -f, /tmp/ready], interval: 1s, timeout: 1s, retries: 30}}
  app:
    image: {BASE_IMAGE}
    command: [sleep, "3600"]
    init: true
    stop_grace_period: 1s
    depends_on: {{db: {{condition: healthy}}}}
""")
    apply = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "-f", str(stack.dir / "stack.yaml"),
                              "--output", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def db_appeared() -> bool:
            if f"{stack.name}-db-1" in names_on(engines[3], stack.name):
                return True
            assert apply.poll() is None, "db never appeared on engine 3"
            return False

        wait_until(db_appeared, 60, "db on engine 3", step=0.1)
        assert f"{stack.name}-app-1" not in names_on(engines[3], stack.name)  # really in the middle
        engines.stop(3)
        out, err = apply.communicate(timeout=180)
    finally:
        if apply.poll() is None:
            apply.kill()
    try:
        assert apply.returncode == 1, err
        targets = {t["target"]: t for t in json.loads(out)["targets"]}
        assert targets["one"]["state"] == targets["two"]["state"] == "converged"
        assert targets["three"]["state"] in ("unreachable", "failed")
        assert targets["three"]["attempts"] > 1, json.dumps(targets["three"])  # retried with backoff within the apply
        assert f"target three ({engines[3].tcp_url})" in targets["three"]["error"]
        for number in (1, 2):
            assert names_on(engines[number], stack.name) == {f"{stack.name}-db-1": "running",
                                                             f"{stack.name}-app-1": "running"}
        status = stack.cli("status")
        assert status.code == 1
        row = next(line for line in status.out.splitlines() if " three " in line)
        assert "unreachable" in row
    finally:
        engines.start(3)
    again = stack.apply()
    assert again.code == 0, again.err + again.out
    assert names_on(engines[3], stack.name) == {f"{stack.name}-db-1": "running", f"{stack.name}-app-1": "running"}


def test_placement_by_label_and_by_count(fleet) -> None:
    stack, engines = fleet
    labels = {1: {"zone": "a"}, 2: {"zone": "b"}, 3: {"zone": "b"}}
    write_fleet_spec(stack.dir, stack.name, engines, APP, labels=labels, head="placement: {labels: {zone: b}}\n")
    result = stack.apply("--output", "json")
    assert result.code == 0, result.err
    assert set(by_target(result)) == {"two", "three"}
    assert names_on(engines[1], stack.name) == {}
    assert len(names_on(engines[2], stack.name)) == len(names_on(engines[3], stack.name)) == 2

    destroyed = stack.cli("destroy", "--target", "two")
    assert destroyed.code == 0 and names_on(engines[2], stack.name) == {}
    assert len(names_on(engines[3], stack.name)) == 2  # --target: only that one
    assert stack.cli("destroy").code == 0 and names_on(engines[3], stack.name) == {}

    # count: 1 of the zone-b targets; the choice is stable: a second apply picks the same one.
    write_fleet_spec(stack.dir, stack.name, engines, APP, labels=labels,
                     head="placement: {labels: {zone: b}, count: 1}\n")
    chosen = by_target(stack.apply("--output", "json"))
    assert len(chosen) == 1
    (name,) = chosen
    number = {"two": 2, "three": 3}[name]
    assert len(names_on(engines[number], stack.name)) == 2
    assert names_on(engines[5 - number], stack.name) == {} and names_on(engines[1], stack.name) == {}
    assert set(by_target(stack.apply("--output", "json"))) == {name}


def test_the_loop_reports_a_target_down_and_converges_it_on_a_later_pass(fleet) -> None:
    from reconciler.loop import StackLoop, Trigger
    from reconciler.reconcile import Reconciler
    from reconciler.spec import load_desired

    stack, engines = fleet
    spec = write_fleet_spec(stack.dir, stack.name, engines, APP)
    loop = StackLoop(Reconciler(), lambda: load_desired([spec]))
    engines.stop(2)
    try:
        first = loop.run_pass(Trigger.START)
        assert not first.ok and first.error.startswith(f"target two ({engines[2].tcp_url}): cannot reach")
        assert first.delay > 0  # the loop backs off, then retries
        assert {o.change.name for o in first.report.outcomes} == {f"{stack.name}_default", f"{stack.name}-app-1", f"{stack.name}-app-2"}
        for number in (1, 3):
            assert len(names_on(engines[number], stack.name)) == 2
    finally:
        engines.start(2)
    second = loop.run_pass(Trigger.RETRY)
    assert second.ok, second.error
    assert names_on(engines[2], stack.name) == {f"{stack.name}-app-1": "running", f"{stack.name}-app-2": "running"}
    assert {o.change.name for o in second.report.outcomes} == {f"{stack.name}_default", f"{stack.name}-app-1", f"{stack.name}-app-2"}


def test_a_daemons_targets_run_every_stack_that_names_none_where_its_placement_says(fleet, tmp_path) -> None:
    from .daemons import RunningDaemon

    stack, engines = fleet
    source = tmp_path / "stacks"
    (source / "app").mkdir(parents=True)
    (source / "app" / "stack.yaml").write_text(f"name: {stack.name}\nplacement: {{labels: {{zone: b}}}}\n" + APP)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "sources": [{"name": "local", "dir": str(source), "paths": ["app"]}],
        "targets": {"one": {"engine": engines[1].unix_url, "labels": {"zone": "a"}},
                    "two": {"engine": engines[2].tcp_url, "labels": {"zone": "b"}}},
    }))
    daemon = RunningDaemon(config)
    try:
        daemon.wait_for(lambda line: line.get("path") == "app" and line.get("ok"), timeout=90)
        assert names_on(engines[2], stack.name) == {f"{stack.name}-app-1": "running", f"{stack.name}-app-2": "running"}
        assert names_on(engines[1], stack.name) == {} and stack.containers() == {}  # placed on two only
    finally:
        assert daemon.stop() == 0
