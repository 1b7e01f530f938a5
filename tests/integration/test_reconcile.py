"""The reconcile loop against the real engine, through the real CLI."""
from __future__ import annotations

import threading
import time

import pytest

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.engine

TWO = """
name: STACK
networks:
  back: {}
volumes:
  data: {}
containers:
  db:
    image: BASE
    command: ["sh", "-c", "echo up > /data/state && exec httpd -f -p 5432 -h /data"]
    init: true
    networks: [back]
    volumes: ["data:/data"]
    healthcheck: {test: ["CMD-SHELL", "nc -w 1 127.0.0.1 5432 </dev/null"], interval: 1s, retries: 20}
    stop_grace_period: 1s
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    env: {LOG_LEVEL: info, MODE: test}
    networks: [back]
    depends_on: {db: {condition: healthy}}
    stop_grace_period: 1s
"""


def running(stack) -> set[str]:
    return {name for name, c in stack.containers().items() if c["State"] == "running"}


def test_create_from_nothing_then_noop_makes_zero_writes(stack):
    stack.write(TWO)
    first = stack.apply()
    assert first.code == 0, first.out + first.err
    assert running(stack) == {f"{stack.name}-db-1", f"{stack.name}-web-1"}
    assert stack.networks() == {f"{stack.name}_back"}
    assert stack.volumes() == {f"{stack.name}_data"}
    assert "converged" in first.out

    before = time.time()
    second = stack.apply("--output", "json")
    assert second.code == 0, second.err
    report = second.json()
    assert report["changes"] == []
    assert report["engine_calls"].get("write", 0) == 0
    assert report["engine_calls"]["read"] <= 5  # version negotiation + one list call per kind
    assert stack.events_since(before) == []

    plan = stack.cli("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert "no changes" in plan.out


def test_changing_one_env_var_replaces_only_that_container(stack):
    stack.write(TWO)
    assert stack.apply().code == 0
    ids = stack.container_ids()
    stack.write(TWO.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))

    plan = stack.cli("plan", "--detailed-exitcode")
    assert plan.code == 2
    assert f"-/+ container {stack.name}-web-1" in plan.out
    assert 'env.LOG_LEVEL: "info" → "debug"' in plan.out
    assert f"{stack.name}-db-1" not in plan.out

    assert stack.apply().code == 0
    after = stack.container_ids()
    assert after[f"{stack.name}-db-1"] == ids[f"{stack.name}-db-1"]
    assert after[f"{stack.name}-web-1"] != ids[f"{stack.name}-web-1"]
    env = stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]
    assert "LOG_LEVEL=debug" in env


def test_editing_an_env_file_rolls_the_container(stack):
    (stack.dir / "web.env").write_text("COLOR=blue\n")
    stack.write("""
        name: STACK
        containers:
          web:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            env_file: web.env
    """)
    assert stack.apply().code == 0
    first = stack.container_ids()
    (stack.dir / "web.env").write_text("COLOR=green\n")
    result = stack.apply()
    assert result.code == 0, result.err
    assert stack.container_ids() != first
    assert "COLOR=green" in stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]


def test_removed_objects_are_pruned_but_the_volume_is_kept(stack):
    stack.write(TWO)
    assert stack.apply().code == 0
    stack.write("""
        name: STACK
        containers:
          solo:
            image: BASE
            command: ["sleep", "3600"]
            init: true
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert set(stack.containers()) == {f"{stack.name}-solo-1"}
    assert stack.networks() == {f"{stack.name}_default"}  # back is pruned; solo names none: the default
    assert stack.volumes() == {f"{stack.name}_data"}
    assert "is kept" in result.out

    destroy = stack.cli("destroy")
    assert destroy.code == 0, destroy.err
    assert stack.containers() == {}
    assert stack.volumes() == {f"{stack.name}_data"}
    assert stack.cli("destroy", "--prune-volumes").code == 0
    assert stack.volumes() == set()


def test_empty_spec_does_not_delete_the_stack(stack):
    stack.write(TWO)
    assert stack.apply().code == 0
    stack.write("name: STACK\n")
    result = stack.apply()
    assert result.code == 1
    assert "is empty" in result.err and "reconcile destroy" in result.err
    assert len(stack.containers()) == 2


def test_hand_stopped_and_hand_removed_containers_are_repaired(stack):
    stack.write(TWO)
    assert stack.apply().code == 0
    stack.engine.stop(f"{stack.name}-web-1", timeout=1)
    stack.engine.remove_container(f"{stack.name}-db-1", force=True)

    status = stack.cli("status", "--output", "json")
    assert status.code == 0, status.err
    rows = {row["name"]: row for row in status.json()["objects"]}
    assert rows[f"{stack.name}-web-1"]["state"].startswith("exited")
    assert rows[f"{stack.name}-web-1"]["drift"].startswith("start")
    assert rows[f"{stack.name}-db-1"]["state"] == "missing"

    plan = stack.cli("plan")
    assert f"~ start container {stack.name}-web-1" in plan.out
    assert f"+ container {stack.name}-db-1" in plan.out
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert running(stack) == {f"{stack.name}-db-1", f"{stack.name}-web-1"}


def test_unmanaged_container_with_a_wanted_name_is_left_untouched(stack):
    stack.write(TWO)
    squatter = stack.engine.create_container(BASE_IMAGE, ["sleep", "3600"], name=f"{stack.name}-web-1",
                                             host_config=stack.engine.create_host_config(init=True))
    stack.engine.start(squatter["Id"])
    try:
        result = stack.apply()
        assert result.code == 1
        assert f"container {stack.name}-web-1 exists and is not managed by this stack" in result.out
        info = stack.engine.inspect_container(f"{stack.name}-web-1")
        assert info["Id"] == squatter["Id"] and info["State"]["Running"]
        assert f"{stack.name}-db-1" in running(stack)
    finally:
        stack.engine.remove_container(squatter["Id"], force=True)


def test_one_container_failing_to_start_lets_the_rest_converge(stack):
    stack.write(TWO + """
  broken:
    image: BASE
    command: ["/no/such/program"]
  after_broken:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    depends_on: [broken]
""")
    result = stack.apply()
    assert result.code == 1
    assert "FAILED" in result.out and "/no/such/program" in result.out
    assert "skipped" in result.out
    assert running(stack) == {f"{stack.name}-db-1", f"{stack.name}-web-1"}
    assert "NOT converged" in result.out


def test_invalid_spec_touches_nothing(stack):
    stack.write(TWO)
    assert stack.apply().code == 0
    ids = stack.container_ids()
    stack.write(TWO.replace("networks: [back]\n    depends_on", "networks: [nowhere]\n    depends_on")
                .replace("init: true\n    networks: [back]", "init: maybe\n    networks: [back]"))
    before = time.time()
    result = stack.apply()
    assert result.code == 1
    assert "stack.yaml:" in result.err
    assert "nowhere" in result.err and "init" in result.err
    assert "Traceback" not in result.err
    assert stack.container_ids() == ids
    assert stack.events_since(before) == []


def test_a_second_writer_waits_then_names_the_holder(stack):
    from reconciler.lock import stack_lock

    stack.write(TWO)
    holding = threading.Event()
    release = threading.Event()

    engine_id = stack.engine.info()["ID"]  # the lock is keyed on the engine's identity, not on its URL

    def hold():
        with stack_lock(stack.name, engine_id):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        holding.wait(5)
        result = stack.apply("--lock-timeout", "1")
        assert result.code == 1
        assert f"stack '{stack.name}' is locked by pid" in result.err
    finally:
        release.set()
        holder.join()
    assert stack.containers() == {}


def test_completed_one_shot_job_gates_its_dependent_and_is_not_rerun(stack):
    stack.write("""
        name: STACK
        volumes:
          data: {}
        containers:
          migrate:
            image: BASE
            command: ["sh", "-c", "sleep 1; echo done > /data/migrated"]
            volumes: ["data:/data"]
          app:
            image: BASE
            command: ["sh", "-c", "test -f /data/migrated && exec sleep 3600"]
            init: true
            volumes: ["data:/data"]
            depends_on: {migrate: {condition: completed}}
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert running(stack) == {f"{stack.name}-app-1"}
    before = time.time()
    again = stack.apply("--output", "json")
    assert again.json()["changes"] == []
    assert stack.events_since(before) == []


def test_saved_plan_applies_exactly_or_is_refused_when_stale(stack):
    stack.write(TWO)
    plan_file = stack.dir / "plan.json"
    made = stack.cli("plan", "--out", str(plan_file))
    assert made.code == 0, made.err
    applied = stack.cli("apply", str(plan_file), spec=False)
    assert applied.code == 0, applied.out + applied.err
    assert running(stack) == {f"{stack.name}-db-1", f"{stack.name}-web-1"}

    stack.write(TWO.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    assert stack.cli("plan", "--out", str(plan_file)).code == 0
    stack.engine.stop(f"{stack.name}-db-1", timeout=1)  # the engine moves underneath
    ids = stack.container_ids()
    before = time.time()
    stale = stack.cli("apply", str(plan_file), spec=False)
    assert stale.code == 1
    assert "stale" in stale.err and "nothing was applied" in stale.err
    assert stack.container_ids() == ids
    assert [e for e in stack.events_since(before) if e.get("Action") != "die"] == []


def test_stops_that_wait_out_their_grace_period_do_not_queue_for_workers(stack):
    # Without an init, `sleep` as PID 1 ignores SIGTERM: each stop waits its whole grace period.
    stack.write("name: STACK\ncontainers:\n" + "".join(
        f"  c{i}:\n    image: BASE\n    command: [sleep, '3600']\n    stop_grace_period: 2s\n" for i in range(6)))
    assert stack.apply("--workers", "1").code == 0
    started = time.monotonic()
    result = stack.cli("destroy", "--workers", "1")
    took = time.monotonic() - started
    assert result.code == 0, result.out + result.err
    assert stack.containers() == {}
    assert took < 3 * 2  # one stop at a time would take 6 × 2 s
