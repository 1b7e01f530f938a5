"""filesystem: ignore | report | recreate — the spec setting, the planner's reading of a writable layer, the cache."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from plugins.reconciler_docker import layerdiff
from reconciler.cli.views import show_status
from reconciler.errors import SpecError
from reconciler.fsdrift import drifted_paths, filesystem_lines, filesystem_status
from reconciler.model import FilesystemPolicy, Kind
from reconciler.plan import Reason
from reconciler.planner import plan_changes
from reconciler.reconcile import StackStatus
from reconciler.render import plan_data, plan_text, status_text
from reconciler.spec import load_desired
from reconciler.status import status_rows

from .builders import actions, live, live_container, owned

SPEC = """\
name: demo
containers:
  web: {image: "base:1"FS}
"""


def desired(tmp_path: Path, fs: str = ""):
    (tmp_path / "stack.yaml").write_text(SPEC.replace("FS", fs))
    return load_desired([tmp_path / "stack.yaml"])


def layer(*paths: tuple[str, str], checked_at: float = 1000.0) -> dict:
    counts = {"added": 0, "changed": 0, "deleted": 0}
    for kind, _ in paths:
        counts[{"A": "added", "C": "changed", "D": "deleted"}[kind]] += 1
    return {**counts, "paths": [{"kind": k, "path": p} for k, p in paths], "more": 0, "checked_at": checked_at}


def live_of(state, summary: dict | None):
    details = {"filesystem": summary} if summary is not None else None
    return live(*(live_container(spec, details=details) for spec in state.containers.values()),
                networks=[owned(Kind.NETWORK, n) for n in state.networks.values()])


EDITED = layer(("C", "/etc"), ("A", "/etc/motd-edit"), ("C", "/tmp"), ("A", "/tmp/scratch"))


# -- the spec setting --------------------------------------------------------------------------------

@pytest.mark.parametrize("fs, policy", [
    ("", FilesystemPolicy()),
    (", filesystem: report", FilesystemPolicy(mode="report")),
    (", filesystem: {mode: recreate, ignore: [/var/cache/, /tmp]}",
     FilesystemPolicy(mode="recreate", ignore=("/tmp", "/var/cache"))),
])
def test_the_setting_reads_its_short_and_long_forms(tmp_path: Path, fs: str, policy: FilesystemPolicy) -> None:
    assert desired(tmp_path, fs).containers["demo-web-1"].filesystem == policy


@pytest.mark.parametrize("fs", [", filesystem: sometimes", ", filesystem: {ignore: [/tmp]}",
                                ", filesystem: {mode: report, ignore: [tmp]}"])
def test_a_wrong_setting_is_a_located_spec_error(tmp_path: Path, fs: str) -> None:
    with pytest.raises(SpecError, match=r"stack\.yaml:3:\d+: .*containers\.web\.filesystem"):
        desired(tmp_path, fs)


def test_the_setting_is_out_of_the_config_hash_whatever_its_mode(tmp_path: Path) -> None:
    plain = desired(tmp_path).containers["demo-web-1"]
    for fs in (", filesystem: ignore", ", filesystem: report", ", filesystem: {mode: recreate, ignore: [/tmp]}"):
        spec = desired(tmp_path, fs).containers["demo-web-1"]
        assert (spec.config_hash, spec.field_hashes) == (plain.config_hash, plain.field_hashes)
        assert "filesystem" not in spec.config()


# -- the planner ---------------------------------------------------------------------------------------

def test_ignore_never_looks_even_at_a_changed_layer(tmp_path: Path) -> None:
    state = desired(tmp_path)
    plan = plan_changes(state, live_of(state, EDITED))
    assert plan.empty and not plan.drifted and not plan.notes


def test_report_changes_nothing_but_notes_it_and_lists_it_as_drifted(tmp_path: Path) -> None:
    state = desired(tmp_path, ", filesystem: report")
    plan = plan_changes(state, live_of(state, EDITED))
    assert plan.empty and plan.drifted == ("demo-web-1",)
    assert "writable layer changed" in plan_text(plan) and "/etc/motd-edit added" in plan_text(plan)
    assert plan_data(plan)["drifted"] == ["demo-web-1"]
    unchanged = plan_changes(state, live_of(state, layer()))
    assert unchanged.empty and not unchanged.drifted and not unchanged.notes


def test_recreate_replaces_the_container_with_its_reason(tmp_path: Path) -> None:
    state = desired(tmp_path, ", filesystem: recreate")
    plan = plan_changes(state, live_of(state, layer(("C", "/etc"), ("C", "/etc/app.conf"))))
    assert actions(plan) == [("replace", "container:demo-web-1")]
    change = plan.changes[0]
    assert change.reason is Reason.FILESYSTEM_DRIFT and change.rollout is not None
    assert change.reasons == ("writable layer changed: /etc changed, /etc/app.conf changed",)


def test_recreate_ignores_changes_under_its_ignore_paths(tmp_path: Path) -> None:
    state = desired(tmp_path, ", filesystem: {mode: recreate, ignore: [/tmp]}")
    only_tmp = layer(("C", "/tmp"), ("A", "/tmp/scratch"))
    assert plan_changes(state, live_of(state, only_tmp)).empty
    assert actions(plan_changes(state, live_of(state, EDITED))) == [("replace", "container:demo-web-1")]


def test_a_parent_directory_counts_only_with_a_change_below_it_that_counts() -> None:
    policy = FilesystemPolicy(mode="report", ignore=("/var/cache/app",))
    assert drifted_paths(policy, layer(("C", "/var"), ("C", "/var/cache"), ("A", "/var/cache/app"))) == []
    assert drifted_paths(policy, layer(("C", "/var"), ("A", "/var/log"))) == [
        {"kind": "C", "path": "/var"}, {"kind": "A", "path": "/var/log"}]
    assert drifted_paths(policy, layer(("D", "/etc/motd"))) == [{"kind": "D", "path": "/etc/motd"}]


def test_a_read_only_container_is_never_replaced_nor_reported(tmp_path: Path) -> None:
    state = desired(tmp_path, ", read_only: true, filesystem: recreate")
    assert plan_changes(state, live_of(state, EDITED)).empty


def test_recreate_names_at_most_three_paths(tmp_path: Path) -> None:
    state = desired(tmp_path, ", filesystem: recreate")
    plan = plan_changes(state, live_of(state, layer(*[("A", f"/srv/{n}") for n in range(5)])))
    assert plan.changes[0].reasons[0].endswith("/srv/2 added, and 2 more")


# -- status ----------------------------------------------------------------------------------------------

def test_status_rows_carry_the_filesystem_entry(tmp_path: Path) -> None:
    state = desired(tmp_path, ", filesystem: {mode: report, ignore: [/tmp]}")
    current = live_of(state, EDITED)
    plan = plan_changes(state, current)
    row = next(r for r in status_rows(state, current, plan, detailed=True, sizes={"demo-web-1": 4096})
               if r["kind"] == "container")
    assert row["filesystem"] == {
        "mode": "report", "added": 2, "changed": 2, "deleted": 0, "size_rw": 4096, "drifted": True,
        "checked_at": 1000.0, "more": 0, "paths": EDITED["paths"]}
    assert filesystem_lines(row["filesystem"])[0] == "filesystem: 2 changed, 2 added (+4.0 KiB writable)"
    plain = next(r for r in status_rows(state, current, plan) if r["kind"] == "container")
    assert "paths" not in plain["filesystem"]
    unchecked = desired(tmp_path)
    assert all(r["filesystem"] is None for r in status_rows(unchecked, live_of(unchecked, None), plan))


def test_status_shows_paths_only_when_detailed(tmp_path: Path, capsys) -> None:
    state = desired(tmp_path, ", filesystem: report")
    current = live_of(state, EDITED)
    rows = tuple(status_rows(state, current, plan_changes(state, current), detailed=True))
    status = StackStatus("demo", rows, converged=True)
    show_status(argparse.Namespace(output="json", detailed=False), status)
    entry = json.loads(capsys.readouterr().out)["objects"][-1]["filesystem"]
    assert entry["drifted"] and "paths" not in entry
    show_status(argparse.Namespace(output="text", detailed=True), status)
    text = capsys.readouterr().out
    assert "filesystem: 2 changed, 2 added" in text and "A /etc/motd-edit" in text
    assert "A /etc/motd-edit" not in status_text("demo", [dict(r, filesystem=None) for r in rows], converged=True)


def test_long_path_lists_are_capped(tmp_path: Path) -> None:
    state = desired(tmp_path, ", filesystem: report")
    many = layer(*[("A", f"/srv/{n:03}") for n in range(80)])
    entry = filesystem_status(state.containers["demo-web-1"], live_of(state, many).containers["demo-web-1"],
                              detailed=True)
    assert len(entry["paths"]) == 50 and entry["more"] == 30
    assert filesystem_lines(entry)[-1] == "  and 30 more"


# -- the driver's cache --------------------------------------------------------------------------------

class _Api:
    def __init__(self) -> None:
        self.calls = 0

    def diff(self, container_id: str) -> list[dict]:
        self.calls += 1
        return [{"Path": "/etc", "Kind": 0}, {"Path": "/etc/x", "Kind": 1}, {"Path": "/old", "Kind": 2}]


def test_the_changes_are_read_once_per_interval_per_container(monkeypatch) -> None:
    layerdiff.LayerChanges.clear()
    api, now = _Api(), [1000.0]
    changes = layerdiff.LayerChanges("unix:///x", lambda: api, clock=lambda: now[0])
    first = changes.of("c1", "demo-web-1")
    assert (first["changed"], first["added"], first["deleted"]) == (1, 1, 1) and api.calls == 1
    now[0] += 59
    assert changes.of("c1", "demo-web-1") is first and api.calls == 1
    changes.of("c2", "demo-web-2")  # another container (or a replaced one: a new id) is read afresh
    assert api.calls == 2
    now[0] += 1
    assert changes.of("c1", "demo-web-1")["checked_at"] == 1060.0 and api.calls == 3
    monkeypatch.setenv(layerdiff.INTERVAL_ENV, "5")
    now[0] += 5
    changes.of("c1", "demo-web-1")
    assert api.calls == 4 and layerdiff.interval() == 5.0
    layerdiff.LayerChanges.clear()


def test_the_engines_own_mount_points_are_no_drift() -> None:
    """``init: true`` puts /sbin/docker-init in the layer (and /sbin with it); mount points are the engine's too."""
    changes = [{"Path": "/sbin", "Kind": 1}, {"Path": "/sbin/docker-init", "Kind": 1},
               {"Path": "/data", "Kind": 1}, {"Path": "/etc", "Kind": 0}, {"Path": "/etc/app.conf", "Kind": 0},
               {"Path": "/usr", "Kind": 0}, {"Path": "/usr/local", "Kind": 0}, {"Path": "/usr/local/x", "Kind": 1},
               {"Path": "/usr/local/mnt", "Kind": 1}]
    found = layerdiff.summary(changes, 1.0, {"/data", "/usr/local/mnt", layerdiff.DOCKER_INIT})
    assert [p["path"] for p in found["paths"]] == ["/etc", "/etc/app.conf", "/usr", "/usr/local", "/usr/local/x"]
    assert (found["added"], found["changed"], found["deleted"]) == (1, 4, 0)


def test_the_daemon_sets_the_interval_from_its_config(tmp_path: Path, monkeypatch) -> None:
    from reconciler.daemon.config import load_config

    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\n")
    assert load_config(path).filesystem_interval is None
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\nfilesystem_interval: 300\n")
    assert load_config(path).filesystem_interval == 300.0
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\nfilesystem_interval: soon\n")
    with pytest.raises(SpecError, match=r"daemon\.yaml:4:.*filesystem_interval"):
        load_config(path)


def test_the_metrics_gauge_follows_the_drifted_containers() -> None:
    from reconciler.daemon.metrics import Metrics
    from reconciler.loop import Pass, Trigger
    from reconciler.report import ApplyReport

    metrics = Metrics()

    def gauge(container: str) -> float | None:
        return metrics.registry.get_sample_value("reconciler_filesystem_drift",
                                                 {"stack": "demo", "container": container})

    metrics.observe_pass("demo", Pass(Trigger.RESYNC, report=ApplyReport("demo", (), 0.1, drifted=("demo-web-1",))),
                         managed=1)
    assert gauge("demo-web-1") == 1.0
    metrics.observe_pass("demo", Pass(Trigger.RESYNC, error="engine down"), managed=1)
    assert gauge("demo-web-1") == 1.0  # nothing planned: what was known stays
    metrics.observe_pass("demo", Pass(Trigger.RESYNC, report=ApplyReport("demo", (), 0.1)), managed=1)
    assert gauge("demo-web-1") is None
