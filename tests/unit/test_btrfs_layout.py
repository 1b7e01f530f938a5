"""The btrfs driver's pure parts: a pool's paths, the settling of a swap a crash left, btrfs-progs' answers parsed."""
from __future__ import annotations

import subprocess

import pytest

from reconciler.errors import PermanentError, TemporaryError
from reconciler.model import VolumeSpec, snapshot_id
from reconciler_btrfs import OPTIONS, refusals
from reconciler_btrfs import progs
from reconciler_btrfs.layout import (Pool, Step, StepKind, is_snapshot_id, name_problems, pool_of,
                                     settle_steps)

POOL = Pool("/srv/pool")
DELETE, RENAME = StepKind.DELETE, StepKind.RENAME
ID1, ID2 = "20261207T184500Z-3f2a1c", "20261207T190000Z-00aa11"


def test_paths_of_a_pool():
    assert POOL.volume("db") == "/srv/pool/volumes/db"
    assert POOL.restoring("db") == "/srv/pool/volumes/db.restoring"
    assert POOL.old("db", ID1) == f"/srv/pool/volumes/db.old-{ID1}"
    assert POOL.snapshot("db", ID1) == f"/srv/pool/snapshots/db/{ID1}"
    assert POOL.metadata("db", ID1) == f"/srv/pool/snapshots/db/{ID1}.json"
    assert POOL.lock == "/srv/pool/.lock"


def test_olds_are_this_volumes_only():
    entries = ["db", f"db.old-{ID2}", f"db.old-{ID1}", f"dbx.old-{ID1}", "db.old-nonsense", "db.restoring"]
    assert POOL.olds("db", entries) == [ID1, ID2]


def test_the_pool_of_a_bound_device():
    assert pool_of("/srv/pool/volumes/db", "db") == POOL
    assert pool_of("/srv/pool/volumes/db/", "db") == POOL
    assert pool_of("/srv/pool/volumes/other", "db") is None
    assert pool_of("/srv/pool/elsewhere/db", "db") is None
    assert pool_of("volumes/db", "db") is None
    assert pool_of("", "db") is None


def test_snapshot_ids_are_known_by_their_shape():
    made = snapshot_id(1_796_000_000.0)
    assert is_snapshot_id(made) and is_snapshot_id(ID1)
    assert not is_snapshot_id("20261130T005320Z") and not is_snapshot_id("x" + made) and not is_snapshot_id(ID1 + ".json")


@pytest.mark.parametrize("name", ["db.restoring", f"db.old-{ID1}", "a.old-b"])
def test_names_a_swap_would_collide_with_are_refused(name):
    assert name_problems(name)


def test_ordinary_names_are_fine():
    assert name_problems("shop_db") == [] and name_problems("db.restore") == []


# --- settling what a crash left: every point a four-step swap can stop at ----------------------

def settle(*, volume: bool, restoring: bool, olds=()):
    return settle_steps(POOL, "db", has_volume=volume, has_restoring=restoring, olds=olds)


def test_nothing_left_over_is_nothing_to_do():
    assert settle(volume=True, restoring=False) == []
    assert settle(volume=False, restoring=False) == []


def test_killed_after_the_copy_is_undone():
    assert settle(volume=True, restoring=True) == [Step(DELETE, POOL.restoring("db"))]


def test_killed_after_the_old_was_renamed_aside_is_finished():
    assert settle(volume=False, restoring=True, olds=[ID1]) == [
        Step(RENAME, POOL.restoring("db"), POOL.volume("db")), Step(DELETE, POOL.old("db", ID1))]


def test_killed_before_the_old_was_deleted_is_finished():
    assert settle(volume=True, restoring=False, olds=[ID1]) == [Step(DELETE, POOL.old("db", ID1))]


def test_an_old_alone_becomes_the_volume_again():
    assert settle(volume=False, restoring=False, olds=[ID1, ID2]) == [
        Step(RENAME, POOL.old("db", ID2), POOL.volume("db")), Step(DELETE, POOL.old("db", ID1))]


def test_a_copy_alone_is_deleted():
    assert settle(volume=False, restoring=True) == [Step(DELETE, POOL.restoring("db"))]


def test_every_leftover_goes_when_the_volume_is_there():
    assert settle(volume=True, restoring=True, olds=[ID1]) == [
        Step(DELETE, POOL.restoring("db")), Step(DELETE, POOL.old("db", ID1))]


# --- options and checks -------------------------------------------------------------------------

def test_a_volume_without_a_pool_is_refused(monkeypatch):
    monkeypatch.delenv("RECONCILER_BTRFS_ROOT", raising=False)
    spec = VolumeSpec(key="db", name="s_db", driver="btrfs")
    assert any("options.root" in problem for problem in refusals(spec))
    assert refusals(VolumeSpec(key="db", name="s_db", driver="btrfs", options=(("root", "/srv/pool"),))) == []
    monkeypatch.setenv("RECONCILER_BTRFS_ROOT", "/srv/pool")
    assert refusals(spec) == []


def test_options_schema_takes_an_absolute_root_only():
    import jsonschema

    jsonschema.validate({"root": "/srv/pool"}, OPTIONS)
    for bad in ({"root": "pool"}, {"size": "1g"}, {"root": 3}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, OPTIONS)


def test_engine_urls_that_are_not_this_host_are_refused(monkeypatch):
    from reconciler_btrfs.driver import engine_problem

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for local in (None, "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://localhost:2376"):
        assert engine_problem(local) is None, local
    for remote in ("tcp://10.0.0.5:2376", "ssh://admin@db1"):
        assert "not this host" in engine_problem(remote)
    monkeypatch.setenv("DOCKER_HOST", "ssh://admin@db1")
    assert engine_problem(None) is not None


# --- btrfs-progs' answers -------------------------------------------------------------------------

SHOW = """s1
\tName: \t\t\ts1
\tUUID: \t\t\t7be44f1d-f912-b042-bb46-42b64bac9819
\tParent UUID: \t\t33a89477-ab5e-d04e-a760-c1b61bc83233
\tCreation time: \t\t2026-12-07 18:54:12 +0000
\tGeneration: \t\t9
\tGen at creation: \t9
\tFlags: \t\t\treadonly
\tSnapshot(s):
"""

FIND_NEW = """inode 258 file offset 0 len 53248 disk start 298844160 offset 0 gen 10 flags NONE big
inode 259 file offset 0 len 5 disk start 0 offset 0 gen 10 flags INLINE a dir/with spaces.txt
inode 260 file offset 4096 len 8192 disk start 300000000 offset 0 gen 11 flags PREALLOC|COMPRESS big2
transid marker was 11
"""


def test_parse_show():
    shown = progs.parse_show(SHOW)
    assert shown["Gen at creation"] == "9" and shown["Flags"] == "readonly"
    assert shown["Parent UUID"] == "33a89477-ab5e-d04e-a760-c1b61bc83233"
    assert shown["Creation time"] == "2026-12-07 18:54:12 +0000"


def test_parse_find_new_keeps_paths_with_spaces():
    assert progs.parse_find_new(FIND_NEW) == [
        progs.Extent("big", 53248, 10), progs.Extent("a dir/with spaces.txt", 5, 10), progs.Extent("big2", 8192, 11)]
    assert progs.parse_find_new("transid marker was 11\n") == []


def test_the_runner_maps_btrfs_errors(monkeypatch):
    def answer(code, stderr):
        return lambda argv, **kw: subprocess.CompletedProcess(argv, code, "", stderr)

    monkeypatch.setattr(progs.subprocess, "run", answer(1, "ERROR: Could not destroy subvolume/snapshot: "
                                                          "Device or resource busy\n"))
    with pytest.raises(TemporaryError, match="resource busy"):
        progs.run(["subvolume", "delete", "/x"], action="delete subvolume /x")
    monkeypatch.setattr(progs.subprocess, "run", answer(1, "ERROR: not a btrfs filesystem: /x\n"))
    with pytest.raises(PermanentError, match="create subvolume /x: ERROR: not a btrfs filesystem"):
        progs.run(["subvolume", "create", "/x"], action="create subvolume /x")


def test_a_missing_btrfs_command_says_what_to_install(monkeypatch):
    monkeypatch.setattr(progs, "BTRFS", "/nonexistent/btrfs")
    with pytest.raises(PermanentError, match="btrfs-progs"):
        progs.run(["subvolume", "show", "/"], action="read subvolume /")


def test_the_runner_passes_arguments_never_a_shell(monkeypatch):
    seen = {}

    def fake(argv, **kwargs):
        seen.update(argv=argv, **kwargs)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(progs.subprocess, "run", fake)
    progs.snapshot_subvolume("/p/volumes/a; rm -rf /", "/p/snapshots/a/x", readonly=True)
    assert seen["argv"] == [progs.BTRFS, "subvolume", "snapshot", "-r", "/p/volumes/a; rm -rf /", "/p/snapshots/a/x"]
    assert not seen.get("shell")


# --- the driver around the local one, without an engine -----------------------------------------------

class _Local:
    """What the btrfs driver asks of the local driver it wraps: observe and create, recorded."""

    claims = frozenset({"local", ""})

    def __init__(self, found=()):
        self.found, self.created = list(found), []

    def observe(self, stack, wanted):
        return self.found

    def create(self, spec, labels):
        self.created.append(spec)
        return "id-1"


def _driver(local, engine_url=None):
    from reconciler.drivers import DriverContext
    from reconciler_btrfs.driver import BtrfsVolumeDriver

    return BtrfsVolumeDriver(DriverContext(stack="s", engine_url=engine_url), local)


def test_the_wrapped_local_driver_claims_btrfs_volumes():
    local = _Local()
    _driver(local)
    assert local.claims == frozenset({"btrfs"})


def test_a_remote_engine_is_refused_before_anything_is_made(tmp_path):
    local = _Local()
    spec = VolumeSpec(key="db", name="s_db", driver="btrfs", options=(("root", str(tmp_path)),))
    with pytest.raises(PermanentError, match="not this host"):
        _driver(local, "tcp://10.0.0.5:2376").create(spec, {})
    assert local.created == [] and list(tmp_path.iterdir()) == []


def test_observe_leaves_out_a_wanted_volume_whose_subvolume_is_gone(tmp_path):
    from reconciler.model import Kind, LiveObject

    (tmp_path / "volumes" / "s_here").mkdir(parents=True)
    found = [LiveObject(kind=Kind.VOLUME, name=name, id=name, owned=True) for name in ("s_here", "s_gone", "s_other")]
    wanted = {name: VolumeSpec(key=name, name=name, driver="btrfs", options=(("root", str(tmp_path)),))
              for name in ("s_here", "s_gone")}
    seen = {live.name: live for live in _driver(_Local(found)).observe("s", wanted)}
    assert sorted(seen) == ["s_here", "s_other"]  # s_other is not wanted: reported as the engine has it
    assert seen["s_here"].info == {"path": str(tmp_path / "volumes" / "s_here")}
