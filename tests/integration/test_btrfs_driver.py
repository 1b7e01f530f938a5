"""The btrfs storage driver on a real btrfs (scripts/btrfs.sh up: a loop device) and the real engine.

Skipped, saying why, when ``RECONCILER_BTRFS_ROOT`` names no mounted btrfs. The storage contract kit with
snapshots (content written and read through the subvolume's host path), a container that sees a restored
volume at its next start, the time a 1 GiB restore takes (printed, not asserted), a swap interrupted
after each of its steps, settled by the next call with the volume whole, and a failed release through the
CLI that puts a btrfs volume back as it was.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
import uuid

import docker
import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError
from reconciler.labels import STACK as STACK_LABEL
from reconciler.model import Kind, VolumeSpec
from reconciler.testing import STACK_PREFIX, StorageDriverContract, installed_driver
from reconciler_btrfs.layout import Pool

ROOT = os.environ.get("RECONCILER_BTRFS_ROOT", "")
BASE_IMAGE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")
NOT_BTRFS = "/dev/shm/reconciler-btrfs-contract"  # a tmpfs: a pool there is refused


def _btrfs_root() -> str | None:
    """Why the btrfs tests cannot run here, or None."""
    if not ROOT:
        return "RECONCILER_BTRFS_ROOT is not set (scripts/btrfs.sh up makes and mounts one)"
    found = subprocess.run(["stat", "-f", "-c", "%T", ROOT], capture_output=True, text=True)
    if found.returncode != 0 or found.stdout.strip() != "btrfs":
        return f"RECONCILER_BTRFS_ROOT={ROOT} is not on a mounted btrfs (scripts/btrfs.sh up)"
    if shutil.which("btrfs") is None:
        return "btrfs-progs is not installed (scripts/btrfs.sh up installs it)"
    return None


pytestmark = [pytest.mark.engine, pytest.mark.skipif(_btrfs_root() is not None, reason=str(_btrfs_root()))]
POOL = Pool(ROOT or "/nonexistent")


def _remove_contract_volumes() -> None:
    """Remove the contract stacks' engine volumes, subvolumes and snapshots."""
    api = docker.from_env(version="auto").api
    for vol in api.volumes(filters={"label": [STACK_LABEL]}).get("Volumes") or []:
        if vol["Name"].startswith(STACK_PREFIX) and (vol.get("Options") or {}).get("device", "").startswith(ROOT):
            api.remove_volume(vol["Name"], force=True)
    for folder in (POOL.volumes, POOL.snapshots):
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            inner = os.path.join(folder, name)
            if name.startswith(STACK_PREFIX) and os.path.isdir(inner):
                for sub in (os.listdir(inner) if folder == POOL.snapshots else []):
                    subprocess.run(["btrfs", "subvolume", "delete", os.path.join(inner, sub)], capture_output=True)
                subprocess.run(["btrfs", "subvolume", "delete", inner], capture_output=True)
                shutil.rmtree(inner, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _no_leftovers():
    """What a crashed earlier run left goes first; what the kit's checks of objects that are not the stack's leave
    (the driver removes the engine volume of another stack or of nobody, and rightly keeps its data) goes last."""
    _remove_contract_volumes()
    yield
    _remove_contract_volumes()
    shutil.rmtree(NOT_BTRFS, ignore_errors=True)


def write_files(path: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        target = os.path.join(path, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            out.write(data)


def read_files(path: str) -> dict[str, bytes]:
    out = {}
    for folder, _, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as file:
                    out[os.path.relpath(full, path)] = file.read()
    return out


class TestBtrfsVolumeDriver(StorageDriverContract):
    driver_name = "btrfs"

    @pytest.fixture
    def driver(self, driver_context):
        return installed_driver(Kind.VOLUME, "btrfs", driver_context)

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return installed_driver(Kind.VOLUME, "btrfs", unreachable_context)

    @pytest.fixture
    def spec(self, unique_name):
        return VolumeSpec(key="data", name=unique_name, driver="btrfs", options=(("root", ROOT),))

    def invalid(self, spec):
        return dataclasses.replace(spec, options=(("root", NOT_BTRFS),))

    @pytest.fixture
    def write_content(self):
        return lambda volume, files: write_files(POOL.volume(volume), files)

    @pytest.fixture
    def read_content(self):
        return lambda volume: read_files(POOL.volume(volume))


# --- beyond the contract ------------------------------------------------------------------------------

@pytest.fixture
def btrfs(driver_context):
    return installed_driver(Kind.VOLUME, "btrfs", driver_context)


@pytest.fixture
def made(btrfs, unique_name):
    """A btrfs volume of a contract stack, with its snapshots and engine volume removed afterwards."""
    from reconciler.testing import ContractHarness

    harness = ContractHarness(btrfs, btrfs.context, Kind.VOLUME)
    spec = VolumeSpec(key="data", name=unique_name, driver="btrfs", options=(("root", ROOT),))
    harness.create(spec)
    yield spec.name
    for taken in btrfs.list_snapshots(spec.name):
        btrfs.delete_snapshot(taken)
    harness.cleanup()


def test_the_volume_is_a_subvolume_bound_to_an_engine_volume(btrfs, made):
    info = docker.from_env(version="auto").api.inspect_volume(made)
    assert info["Driver"] == "local"
    assert info["Options"] == {"type": "none", "o": "bind", "device": POOL.volume(made)}
    assert os.lstat(POOL.volume(made)).st_ino == 256, "a subvolume's root directory is inode 256"
    live = {obj.name: obj for obj in btrfs.observe(btrfs.context.stack, {})}[made]
    assert live.owned and live.labels["io.reconciler.driver"] == "btrfs"


def test_a_stopped_container_reads_the_restored_content_at_its_next_start(btrfs, made):
    client = docker.from_env(version="auto")
    container = client.containers.run(BASE_IMAGE, ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
                                      detach=True, volumes={made: {"bind": "/data", "mode": "rw"}},
                                      labels={STACK_LABEL + ".test": btrfs.context.stack})
    try:
        assert container.exec_run(["sh", "-c", "echo one > /data/state"]).exit_code == 0
        container.stop(timeout=5)
        taken = btrfs.snapshot(made)
        container.start()
        assert container.exec_run(["sh", "-c", "echo two > /data/state; echo more > /data/later"]).exit_code == 0
        container.stop(timeout=5)
        restored = btrfs.restore(made, taken)
        container.start()
        assert container.exec_run(["cat", "/data/state"]).output == b"one\n"
        assert container.exec_run(["ls", "/data"]).output.split() == [b"state"]
        assert restored.discarded == len(b"two\n") + len(b"more\n")
    finally:
        container.remove(force=True)


def test_a_1_gib_restore_is_a_swap_of_subvolumes(btrfs, made, capsys):
    path = POOL.volume(made)
    block = os.urandom(1 << 20)
    with open(os.path.join(path, "big"), "wb") as out:
        for _ in range(1024):
            out.write(block)
    os.sync()
    started = time.monotonic()
    taken = btrfs.snapshot(made)
    took = time.monotonic() - started
    with open(os.path.join(path, "big"), "r+b") as out:
        out.write(b"\0" * (64 << 20))  # 64 MiB rewritten after the snapshot
    restored = btrfs.restore(made, taken)  # counting what it discards flushes the 64 MiB first
    again = btrfs.restore(made, taken)  # nothing written since: the swap alone
    with capsys.disabled():
        print(f"\nbtrfs 1 GiB volume: snapshot {took:.3f} s; restore {restored.seconds:.3f} s with 64 MiB "
              f"written since (discarded {restored.discarded} bytes), {again.seconds:.3f} s with nothing written; "
              f"snapshot content {taken.content}, size {taken.size}")
    assert taken.content == 1 << 30
    assert restored.discarded == 64 << 20 and again.discarded == 0
    with open(os.path.join(path, "big"), "rb") as file:
        assert file.read(1 << 20) == block


# --- a swap a crash left halfway ------------------------------------------------------------------------

def _half_restore(taken, volume: str, steps: int) -> None:
    """The first ``steps`` of the four a restore takes, by hand, as a process killed after them leaves them."""
    source = POOL.snapshot(volume, taken.id)
    subprocess.run(["btrfs", "subvolume", "snapshot", source, POOL.restoring(volume)], check=True,
                   capture_output=True)
    if steps >= 2:
        os.rename(POOL.volume(volume), POOL.old(volume, taken.id))
    if steps >= 3:
        os.rename(POOL.restoring(volume), POOL.volume(volume))


@pytest.mark.parametrize("steps, whole", [(1, "old"), (2, "new"), (3, "new")])
def test_a_swap_killed_after_each_step_is_settled_by_the_next_call(btrfs, made, steps, whole):
    path = POOL.volume(made)
    write_files(path, {"state": b"snapshot", "kept": b"k" * 5000})
    taken = btrfs.snapshot(made)
    write_files(path, {"state": b"written since", "later": b"l" * 7000})
    _half_restore(taken, made, steps)

    assert [s.id for s in btrfs.list_snapshots(made)] == [taken.id]  # any call settles first
    left = sorted(os.listdir(POOL.volumes))
    assert made in left and f"{made}.restoring" not in left and not [n for n in left if n.startswith(made + ".old-")]
    expected = ({"state": b"snapshot", "kept": b"k" * 5000} if whole == "new"
                else {"state": b"written since", "kept": b"k" * 5000, "later": b"l" * 7000})
    assert read_files(path) == expected

    btrfs.restore(made, taken)  # the core runs the restore again: it completes
    assert read_files(path) == {"state": b"snapshot", "kept": b"k" * 5000}


def test_a_snapshot_killed_before_its_metadata_is_never_listed_and_is_cleaned_up(btrfs, made):
    orphan = "20261207T000000Z-abcdef"
    os.makedirs(POOL.snapshot_dir(made), exist_ok=True)
    subprocess.run(["btrfs", "subvolume", "snapshot", "-r", POOL.volume(made), POOL.snapshot(made, orphan)],
                   check=True, capture_output=True)
    with open(POOL.metadata(made, orphan) + ".part", "w") as part:
        part.write("{")
    assert btrfs.list_snapshots(made) == []
    assert os.listdir(POOL.snapshot_dir(made)) == []


def test_a_remote_engine_is_refused(driver_context, unique_name):
    remote = installed_driver(Kind.VOLUME, "btrfs", dataclasses.replace(driver_context, engine_url="ssh://ops@db1"))
    spec = VolumeSpec(key="data", name=unique_name, driver="btrfs", options=(("root", ROOT),))
    with pytest.raises(PermanentError, match="engine must run there"):
        remote.create(spec, {})
    assert not os.path.exists(POOL.volume(unique_name))


def test_a_volume_name_of_the_swap_is_refused(btrfs, driver_context):
    spec = VolumeSpec(key="data", name=f"{driver_context.stack}-{uuid.uuid4().hex[:4]}.restoring", driver="btrfs",
                      options=(("root", ROOT),))
    with pytest.raises(PermanentError, match="restore in progress"):
        btrfs.create(spec, {})


# --- a release with data, through the CLI ------------------------------------------------------------------

RELEASE = """
name: STACK
volumes:
  data: {driver: btrfs, options: {root: "@ROOT@"}}
containers:
  db:
    image: BASE
    command: ["sh", "-c", "@SCRIPT@"]
    init: true
    stop_grace_period: 1s
    env: {VERSION: "@V@"}
    volumes: ["data:/data"]
    healthcheck: {test: ["CMD-SHELL", "@HEALTH@"], interval: 500ms, retries: 1}
    update: {order: stop-first, snapshot: [data], timeout: 10s}
"""
V1 = "[ -f /data/schema ] || { echo schema=1 > /data/schema; echo row1 > /data/rows; }; exec sleep 3600"
V2 = "echo schema=2 > /data/schema; echo migrated >> /data/rows; exec sleep 3600"


def test_a_failed_release_puts_the_btrfs_volume_back_as_it_was(stack):
    def write(version: str) -> None:
        script, health = (V1, "grep -q schema=1 /data/schema") if version == "1" else (V2, "false")
        stack.write(RELEASE.replace("@ROOT@", ROOT).replace("@SCRIPT@", script).replace("@HEALTH@", health)
                    .replace("@V@", version))

    volume, db = f"{stack.name}_data", f"{stack.name}-db-1"
    driver = installed_driver(Kind.VOLUME, "btrfs", DriverContext(stack=stack.name))
    try:
        write("1")
        assert stack.apply().code == 0
        write("2")
        failed = stack.apply()
        assert failed.code != 0 and f"data restored: {volume} from snapshot" in failed.out + failed.err, failed.out
        assert stack.exec(db, "cat", "/data/schema").strip() == "schema=1"
        assert stack.exec(db, "cat", "/data/rows").split() == ["row1"]
        taken = driver.list_snapshots(volume)
        assert len(taken) == 1 and os.lstat(POOL.snapshot(volume, taken[0].id)).st_ino == 256
    finally:
        stack.cli("destroy", "--prune-volumes")
        for snapshot in driver.list_snapshots(volume):
            driver.delete_snapshot(snapshot)
    assert not os.path.exists(POOL.volume(volume)) and not os.path.exists(POOL.snapshot_dir(volume))


def test_a_volume_not_bound_to_a_pool_takes_no_btrfs_snapshot(btrfs, unique_name):
    api = docker.from_env(version="auto").api
    api.create_volume(unique_name, driver="local")
    try:
        with pytest.raises(PermanentError, match="not a btrfs volume"):
            btrfs.snapshot(unique_name)
    finally:
        api.remove_volume(unique_name, force=True)
