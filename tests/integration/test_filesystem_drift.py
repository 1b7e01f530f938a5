"""filesystem: report | recreate against the real engine: a hand edit inside a container, seen and undone."""
from __future__ import annotations

import pytest

from reconciler.waiting import poll_until

from .daemons import Api, conforms, stack_spec

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
FS
"""


def write(stack, fs: str = "") -> None:
    stack.write(SPEC.replace("FS", f"    filesystem: {fs}" if fs else ""))


def test_report_shows_a_hand_edit_in_status_and_plan_and_replaces_nothing(stack):
    write(stack, "report")
    assert stack.apply().code == 0
    name = f"{stack.name}-web-1"
    ids = stack.container_ids()
    clean = stack.cli("plan", "--detailed-exitcode")
    assert clean.code == 0, clean.out + clean.err
    stack.exec(name, "sh", "-c", "echo edited > /etc/motd-edit && head -c 4096 /dev/zero > /etc/blob")
    # A new process: the cache is this process's, and the first look at a container reads its layer.
    status = stack.cli("status", "--output", "json", "--detailed")
    assert status.code == 0, status.err
    row = next(o for o in status.json()["objects"] if o["name"] == name)
    entry = row["filesystem"]
    assert entry["mode"] == "report" and entry["drifted"] is True
    assert (entry["added"], entry["changed"], entry["deleted"]) == (2, 1, 0)
    assert {"kind": "A", "path": "/etc/motd-edit"} in entry["paths"] and {"kind": "C", "path": "/etc"} in entry["paths"]
    assert entry["size_rw"] >= 4096 and entry["checked_at"] > 0
    brief = stack.cli("status", "--output", "json")
    assert "paths" not in next(o for o in brief.json()["objects"] if o["name"] == name)["filesystem"]
    text = stack.cli("status")
    assert "filesystem: 1 changed, 2 added (+" in text.out, text.out
    planned = stack.cli("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.out + planned.err
    assert "writable layer changed" in planned.out and "/etc/motd-edit added" in planned.out
    assert stack.apply().code == 0
    assert stack.container_ids() == ids


def test_recreate_replaces_only_for_changes_outside_its_ignore_paths(stack):
    write(stack, "{mode: recreate, ignore: [/tmp]}")
    assert stack.apply().code == 0
    name = f"{stack.name}-web-1"
    ids = stack.container_ids()
    stack.exec(name, "sh", "-c", "echo scratch > /tmp/scratch")
    quiet = stack.cli("plan", "--detailed-exitcode")
    assert quiet.code == 0, quiet.out + quiet.err
    assert stack.apply().code == 0 and stack.container_ids() == ids
    stack.exec(name, "sh", "-c", "echo edited > /etc/app.conf")
    planned = stack.cli("plan")
    assert "writable layer changed: /etc changed, /etc/app.conf added" in planned.out, planned.out
    applied = stack.apply("--output", "json")
    assert applied.code == 0, applied.out + applied.err
    change = applied.json()["changes"][0]
    assert change["action"] == "replace" and change["reason"] == "filesystem-drift"
    assert stack.container_ids()[name] != ids[name]
    again = stack.cli("plan", "--detailed-exitcode")  # the new container's layer is clean
    assert again.code == 0, again.out + again.err


def test_the_default_makes_no_extra_request_and_report_one_per_interval(stack):
    write(stack)
    assert stack.apply().code == 0
    plain = stack.apply("--output", "json").json()["engine_calls"]
    write(stack, "report")  # out of the config hash: nothing is replaced
    ids = stack.container_ids()
    watched = stack.apply("--output", "json").json()
    assert watched["changes"] == [] and stack.container_ids() == ids
    assert watched["engine_calls"]["read"] == plain["read"] + 1  # one changes call (a new process: cache empty)
    assert watched["engine_calls"].get("write", 0) == 0
    write(stack)
    assert stack.apply("--output", "json").json()["engine_calls"] == plain


def test_the_daemon_shows_a_hand_edit_in_its_api_and_metrics(stack, repo, tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_FILESYSTEM_INTERVAL", "0")  # every pass reads the layer again
    repo.commit({"app/stack.yaml": stack_spec(stack.name, "1") + "    filesystem: report\n"})
    api = Api(tmp_path, repo)
    try:
        api.wait(lambda s: s["state"] == "converged")
        name = f"{stack.name}-web-1"
        detail = api.stack(stack.name)
        conforms("/api/stacks/{name}", "get", 200, detail)
        entry = next(o for o in detail["objects"] if o["name"] == name)["filesystem"]
        assert entry["mode"] == "report" and entry["drifted"] is False and "paths" not in entry
        stack.exec(name, "sh", "-c", "echo edited > /etc/motd-edit")
        assert api.call("POST", f"/api/stacks/{stack.name}/sync", token=api.write_token)[0] == 202

        def gauge():
            family = api.metrics().get("reconciler_filesystem_drift")
            return [s.value for s in family.samples if s.labels.get("container") == name] if family else []

        assert poll_until(gauge, timeout=30, interval=0.3) == [1.0]
        status, detailed = api.get(f"/api/stacks/{stack.name}?detailed=1")
        assert status == 200
        conforms("/api/stacks/{name}", "get", 200, detailed)
        entry = next(o for o in detailed["objects"] if o["name"] == name)["filesystem"]
        assert entry["drifted"] is True and {"kind": "A", "path": "/etc/motd-edit"} in entry["paths"]
        assert detailed["plan"]["drifted"] == [name]
    finally:
        assert api.daemon.stop() == 0
