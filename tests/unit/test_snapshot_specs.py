"""A release's data in the spec: ``update.snapshot``/``restore`` and a volume's ``snapshots:`` retention."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.hashing import config_hash
from reconciler.model import RolloutPolicy, SnapshotRetention
from reconciler.spec import load_desired
from reconciler.spec.loader import load_stack
from reconciler.spec.snapshotspecs import age_seconds
from reconciler.spec.validate import validate

CATALOG = {"volumes": {"local": {"takes_snapshots": True}, "nfs": {}}, "containers": {"docker": {}},
           "networks": {"bridge": {}}, "images": {"docker": {}}}

GOOD = """\
name: shop
volumes:
  db: {snapshots: {keep: 3, max_age: 30d}}
  files: {}
containers:
  db:
    image: busybox:latest
    volumes: ["db:/data", {type: volume, source: files, target: /files}]
    update: {order: stop-first, snapshot: [db, files], restore: never}
"""


def _problems(tmp_path: Path, text: str, drivers=CATALOG) -> dict[tuple[str, int], str]:
    (tmp_path / "stack.yaml").write_text(text)
    raw = load_stack([tmp_path / "stack.yaml"], environ={})
    with pytest.raises(SpecError) as caught:
        validate(raw, drivers=drivers)
    return {(p.path, p.line): p.message for p in caught.value.problems}


def test_the_model_reads_snapshot_restore_and_retention(tmp_path):
    (tmp_path / "stack.yaml").write_text(GOOD)
    desired = load_desired([tmp_path / "stack.yaml"], environ={}, drivers=CATALOG)
    update = desired.containers["shop-db-1"].update
    assert (update.snapshot, update.restore) == (("db", "files"), "never")
    assert desired.volumes["db"].retention == SnapshotRetention(keep=3, max_age=30 * 86400.0)
    assert desired.volumes["files"].retention is None
    assert RolloutPolicy().snapshot == () and RolloutPolicy().restore == "on-failure"


def test_retention_and_rollout_are_in_no_config_hash(tmp_path):
    (tmp_path / "stack.yaml").write_text(GOOD)
    first = load_desired([tmp_path / "stack.yaml"], environ={}, drivers=CATALOG)
    (tmp_path / "stack.yaml").write_text(GOOD.replace("{snapshots: {keep: 3, max_age: 30d}}", "{}")
                                         .replace(", snapshot: [db, files], restore: never", ""))
    second = load_desired([tmp_path / "stack.yaml"], environ={}, drivers=CATALOG)
    assert first.volumes["db"].config_hash == second.volumes["db"].config_hash
    assert first.containers["shop-db-1"].config_hash == second.containers["shop-db-1"].config_hash
    assert config_hash(first.volumes["db"].config()) == first.volumes["db"].config_hash


def test_a_key_that_is_not_a_volume_of_the_stack(tmp_path):
    text = GOOD.replace("snapshot: [db, files]", "snapshot: [db, logs]")
    assert _problems(tmp_path, text) == {
        ("containers.db.update.snapshot[1]", 9): "'logs' is not a volume of this stack (volumes: db, files)"}


def test_a_volume_the_container_does_not_mount(tmp_path):
    text = GOOD.replace('volumes: ["db:/data", {type: volume, source: files, target: /files}]', 'volumes: ["db:/data"]')
    assert _problems(tmp_path, text) == {
        ("containers.db.update.snapshot[1]", 9): "db does not mount volume 'files': only what it writes is "
                                                 "snapshotted for it"}


def test_an_external_volume(tmp_path):
    text = GOOD.replace("  files: {}", "  files: {external: true}")
    assert _problems(tmp_path, text) == {
        ("containers.db.update.snapshot[1]", 9): "volume 'files' is external: the stack does not own its data, "
                                                 "so it does not snapshot it"}


def test_a_volume_whose_driver_takes_no_snapshots(tmp_path):
    text = GOOD.replace("  files: {}", "  files: {driver: nfs}")
    assert _problems(tmp_path, text) == {
        ("containers.db.update.snapshot[1]", 9): "volume 'files': its storage driver 'nfs' takes no snapshots"}


def test_without_a_driver_catalog_the_driver_is_not_judged(tmp_path):
    (tmp_path / "stack.yaml").write_text(GOOD.replace("  files: {}", "  files: {driver: nfs}"))
    validate(load_stack([tmp_path / "stack.yaml"], environ={}))


def test_snapshot_with_more_than_one_replica(tmp_path):
    text = GOOD.replace("    image: busybox:latest\n", "    image: busybox:latest\n    replicas: 2\n")
    assert _problems(tmp_path, text) == {
        ("containers.db.update.snapshot", 10): "snapshot needs one replica, and db has 2: replicas share the "
                                              "volume, so one of them cannot take its data back"}


def test_the_schema_refuses_bad_shapes(tmp_path):
    text = GOOD.replace("restore: never", "restore: always").replace("keep: 3", "keep: 0")
    found = _problems(tmp_path, text)
    assert set(found) == {("containers.db.update.restore", 9), ("volumes.db.snapshots.keep", 3)}


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400.0), ("1h30m", 5400.0), (90, 90.0)])
def test_ages(text, seconds):
    assert age_seconds(text) == seconds


COMPOSE = """\
services:
  db:
    image: busybox:latest
    volumes: [data:/data]
    deploy: {update_config: {order: stop-first}}
    x-reconcile:
      snapshot: [data]
      restore: never
volumes:
  data:
    x-reconcile: {snapshots: {keep: 2, max_age: 7d}}
"""


def test_compose_takes_snapshot_and_restore_in_x_reconcile_beside_update_config(tmp_path):
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    desired = load_desired([tmp_path / "compose.yaml"], environ={}, drivers=CATALOG)
    [container] = desired.containers.values()
    assert (container.update.order, container.update.snapshot, container.update.restore) == \
        ("stop-first", ("data",), "never")
    assert desired.volumes["data"].retention == SnapshotRetention(keep=2, max_age=7 * 86400.0)


def _compose_problems(tmp_path, text) -> set[tuple[int, str]]:
    (tmp_path / "compose.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_desired([tmp_path / "compose.yaml"], environ={}, drivers=CATALOG)
    return {(p.line, p.message) for p in caught.value.problems}


def test_compose_refusals_name_the_compose_files_lines(tmp_path):
    assert _compose_problems(tmp_path, COMPOSE.replace("snapshot: [data]", "snapshot: [logs]")) == {
        (7, "'logs' is not a volume of this stack (volumes: data)")}
    assert _compose_problems(tmp_path, COMPOSE.replace("{snapshots:", "{snapshot:")) == {
        (11, "a volume's x-reconcile takes snapshots: (keep, max_age) only")}
