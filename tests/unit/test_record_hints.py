"""Which record a command read, and where a daemon keeps its own: said wherever the record comes up empty."""
from __future__ import annotations

from dataclasses import replace

from reconciler.cli import main
from reconciler.model import Record
from reconciler.plan import Reason
from reconciler.planner import plan_changes
from reconciler.state import StateStore

from .builders import container, live, live_container, state


def test_history_without_syncs_names_the_record_it_read_and_where_a_daemons_is(tmp_path, capsys):
    assert main(["history", "web", "--state-dir", str(tmp_path / "state")]) == 0
    text = capsys.readouterr().out
    assert f"No syncs recorded in {tmp_path / 'state' / 'state.db'}" in text
    assert "a daemon keeps its own record in its state_dir" in text and "--state-dir DIR, or --server URL" in text


def test_history_reads_the_default_state_directory_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "elsewhere"))
    assert main(["history"]) == 0
    assert f"No syncs recorded in {tmp_path / 'elsewhere' / 'state.db'}" in capsys.readouterr().out


def test_the_record_says_where_it_was_read(tmp_path):
    with StateStore.open(tmp_path / "state") as store:
        record = store.stack("engine", "demo").record()
    assert record.where == str(tmp_path / "state" / "state.db")
    assert record == Record(missing=True), "where it was read is no part of what it says"


def test_an_unrecorded_object_names_the_record_read_and_where_a_daemon_keeps_its_own():
    web = container()
    ours = live_container(web)
    theirs = replace(ours, name="demo-web-2", id="daemon-made")  # a daemon's replica, in its own record
    record = Record(created=frozenset({(ours.kind, ours.name, ours.id)}),
                    where="/home/me/.local/state/reconciler/state.db")
    [change] = plan_changes(state(web), live(ours, theirs), record=record).changes
    assert change.reason is Reason.NOT_RECORDED
    assert "the record read is /home/me/.local/state/reconciler/state.db" in change.error
    assert "a daemon managing this stack keeps its own in its state_dir" in change.error
    assert "RECONCILER_STATE_DIR=" in change.error
    assert change.error.index("state_dir") < change.error.index("--adopt")
