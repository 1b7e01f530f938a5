"""Trust boundaries on the real engine (issue 8): labels claim, the reconciler's record proves.

Each test makes by hand, through the engine's API, what someone else could:
a container or a volume wearing labels copied from the stack's own objects, a
hostdir volume pointing at a directory full of someone's data. None of it may
be deleted unless the user says ``--adopt``.
"""
from __future__ import annotations

import os

import pytest

from reconciler.labels import VOLUME_ID
from reconciler.state import StateStore, SyncResult

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
volumes:
  data: {}
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    volumes: ["data:/data"]
"""


def _copy_container(stack, source: str, name: str) -> str:
    """A container made by hand whose labels are copied from ``source`` (an owned container)."""
    labels = stack.engine.inspect_container(source)["Config"]["Labels"]
    created = stack.engine.create_container(BASE_IMAGE, ["sleep", "3600"], name=name, labels=labels,
                                            host_config=stack.engine.create_host_config(init=True))
    return created["Id"]


def _volume_with_data(stack, name: str, labels: dict) -> None:
    stack.engine.create_volume(name, labels=labels)
    box = stack.engine.create_container(BASE_IMAGE, ["sh", "-c", "echo precious > /v/file"],
                                        host_config=stack.engine.create_host_config(binds=[f"{name}:/v"]))
    stack.engine.start(box["Id"])
    stack.engine.wait(box["Id"], timeout=30)
    stack.engine.remove_container(box["Id"])


def test_a_container_with_copied_labels_is_reported_then_adopted_only_when_asked(stack):
    stack.write(SPEC)
    assert stack.apply().code == 0
    forged_id = _copy_container(stack, f"{stack.name}-web-1", f"{stack.name}-web-2")
    try:
        plan = stack.cli("plan", "--output", "json")
        assert plan.code == 1
        [change] = plan.json()["changes"]
        assert (change["action"], change["name"], change["reason"]) == ("delete", f"{stack.name}-web-2",
                                                                        "not-recorded")
        assert "record does not list it" in change["error"] and "--adopt" in change["error"]

        applied = stack.apply()
        assert applied.code == 1 and "--adopt" in applied.out
        destroyed = stack.cli("destroy")
        assert destroyed.code == 1
        assert set(stack.container_ids()) == {f"{stack.name}-web-2"}, "ours removed, the forged one kept"
        assert stack.container_ids()[f"{stack.name}-web-2"] == forged_id

        adopted = stack.cli("destroy", "--adopt")
        assert adopted.code == 0, adopted.out + adopted.err
        assert stack.containers() == {}
    finally:
        stack.engine.remove_container(forged_id, force=True) if stack.containers() else None


def test_a_foreign_volume_with_the_stack_label_keeps_its_data_on_destroy_prune_volumes(stack):
    stack.write(SPEC)
    assert stack.apply().code == 0
    ours = stack.engine.inspect_volume(f"{stack.name}_data")["Labels"]
    foreign = f"{stack.name}_theirs"
    _volume_with_data(stack, foreign, {k: v for k, v in ours.items() if k != VOLUME_ID})

    result = stack.cli("destroy", "--prune-volumes")
    assert result.code == 1
    assert f"volume {foreign} claims this stack by its labels" in result.out
    assert stack.volumes() == {foreign}, "ours pruned, theirs kept"

    # Copying the id label as well does not help: the record pairs it with our volume's name.
    stack.engine.remove_volume(foreign)
    _volume_with_data(stack, foreign, ours)
    assert stack.cli("destroy", "--prune-volumes").code == 1 and stack.volumes() == {foreign}

    adopted = stack.cli("destroy", "--prune-volumes", "--adopt")
    assert adopted.code == 0, adopted.out + adopted.err
    assert stack.volumes() == set()


def _hostdir_spec(path, adopt: bool = False) -> str:
    option = ', adopt: "true"' if adopt else ""
    return f"""
name: STACK
volumes:
  data: {{driver: hostdir, options: {{path: {path}{option}}}}}
containers:
  web:
    image: BASE
    command: ["sh", "-c", "ls /data > /dev/null && exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    volumes: ["data:/data"]
"""


def test_a_hostdir_on_an_existing_directory_never_deletes_its_data(stack, tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "precious").write_text("keep me")
    stack.write(_hostdir_spec(existing))

    refused = stack.apply()
    assert refused.code == 1
    assert "already exists and was not made for volume" in refused.out and "adopt" in refused.out
    assert stack.volumes() == set() and (existing / "precious").read_text() == "keep me"

    stack.write(_hostdir_spec(existing, adopt=True))
    adopted = stack.apply()
    assert adopted.code == 0, adopted.out + adopted.err
    pruned = stack.cli("destroy", "--prune-volumes")
    assert pruned.code == 0, pruned.out + pruned.err
    assert stack.volumes() == set(), "the engine volume goes"
    assert (existing / "precious").read_text() == "keep me", "the adopted directory stays"


def test_a_forged_hostdir_volume_cannot_delete_a_directory(stack, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    stack.write(_hostdir_spec(tmp_path / "ours"))
    assert stack.apply().code == 0
    labels = stack.engine.inspect_volume(f"{stack.name}_data")["Labels"]
    forged = f"{stack.name}_forged"
    stack.engine.create_volume(forged, driver="local", labels=labels,
                               driver_opts={"type": "none", "o": "bind", "device": str(victim)})
    for flags in ((), ("--adopt",)):  # even adopted, the directory has no marker of that volume
        stack.cli("destroy", "--prune-volumes", *flags)
        assert (victim / "precious").read_text() == "keep me"
    assert stack.volumes() == set() and not (tmp_path / "ours").exists(), "our own directory does go"


def test_a_new_machine_rebuilds_the_record_without_deleting_anything(stack, tmp_path):
    stack.write(SPEC)
    assert stack.apply().code == 0
    ids = stack.container_ids()
    elsewhere = {"RECONCILER_STATE_DIR": str(tmp_path / "new-machine")}
    forged_id = _copy_container(stack, f"{stack.name}-web-1", f"{stack.name}-web-2")

    first = stack.apply("--output", "json", env=elsewhere)
    report = first.json()
    assert first.code == 1 and [c["name"] for c in report["changes"]] == [f"{stack.name}-web-2"]
    assert stack.container_ids() == {**ids, f"{stack.name}-web-2": forged_id}, "nothing deleted"
    with StateStore.open(tmp_path / "new-machine") as store:
        book = store.stack(stack.engine.info()["ID"], stack.name)
        assert {(r.name, r.origin) for r in book.objects()} == {(f"{stack.name}-web-1", "adopted"),
                                                                (f"{stack.name}_data", "adopted"),
                                                                (f"{stack.name}_default", "adopted")}
        assert store.syncs(stack=stack.name)[0].result is SyncResult.FAILED

    stack.engine.remove_container(forged_id, force=True)
    assert stack.apply(env=elsewhere).code == 0
    kept = stack.cli("destroy", "--prune-volumes", env=elsewhere)
    assert kept.code == 1 and "--prune-volumes --adopt" in kept.out
    assert stack.containers() == {} and stack.volumes() == {f"{stack.name}_data"}
    assert stack.cli("destroy", "--prune-volumes", "--adopt", env=elsewhere).code == 0
    assert stack.volumes() == set()


def test_every_apply_is_in_the_history_and_the_record_holds_engine_ids(stack):
    stack.write(SPEC)
    assert stack.apply().code == 0
    assert stack.apply().code == 0
    with StateStore.open(os.environ["RECONCILER_STATE_DIR"]) as store:
        rows = {r.name: r for r in store.stack(stack.engine.info()["ID"], stack.name).objects()}
        history = store.syncs(stack=stack.name)
    assert rows[f"{stack.name}-web-1"].object_id == stack.container_ids()[f"{stack.name}-web-1"]
    volume = stack.engine.inspect_volume(f"{stack.name}_data")
    assert rows[f"{stack.name}_data"].object_id == volume["Labels"][VOLUME_ID]
    assert [(s.result, s.summary) for s in history[:2]] == [(SyncResult.CONVERGED, "no changes"),
                                                           (SyncResult.CONVERGED, "create 3")]  # web, data, default network
