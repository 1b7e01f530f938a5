"""The ``local`` driver's snapshots against the real engine, through the engine only.

The contract kit's checks, with the volume's content written and read through
the driver's own helper container; a 100 MiB volume of mixed files round trips
byte for byte (owners and modes too); a snapshot killed midway leaves nothing
listed and nothing behind once the next call runs; a corrupt archive is refused
with the volume untouched.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError
from reconciler.labels import object_labels
from reconciler.model import Kind, VolumeSpec
from reconciler.testing import StorageDriverContract, with_hash
from reconciler_docker.volumes import DockerVolumeDriver
from reconciler_docker.volumesnap import HELPER_IMAGE_ENV, HELPER_VOLUME, MOUNT

from .conftest import BASE_IMAGE, PREFIX

pytestmark = pytest.mark.engine
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def helper_image(monkeypatch, engine):
    """The tests' helper is the suite's base image (Docker Hub may be out of reach)."""
    monkeypatch.setenv(HELPER_IMAGE_ENV, BASE_IMAGE)


def write_files(driver: DockerVolumeDriver, volume: str, files: dict[str, bytes]) -> None:
    """Write ``files`` (path → bytes) into the volume, through a helper container and the archive API."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in sorted({str(parent) for path in files for parent in Path(path).parents} - {"."}):
            info = tarfile.TarInfo("volume/" + folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo("volume/" + path)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    with driver._helper(volume, read_only=False) as helper:
        driver.api.put_archive(helper, "/", buffer.getvalue())


def read_files(driver: DockerVolumeDriver, volume: str) -> dict[str, bytes]:
    """Every regular file in the volume, path → bytes."""
    with driver._helper(volume, read_only=True) as helper:
        stream, _ = driver.api.get_archive(helper, MOUNT)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return {m.name.partition("/")[2]: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}


class TestLocalSnapshots(StorageDriverContract):
    driver_name = "local"

    @pytest.fixture
    def driver(self, driver_context):
        return DockerVolumeDriver(driver_context)

    @pytest.fixture
    def write_content(self, driver):
        return lambda volume, files: write_files(driver, volume, files)

    @pytest.fixture
    def read_content(self, driver):
        return lambda volume: read_files(driver, volume)


# --- a volume of our own, on the real engine ------------------------------------------------------


@pytest.fixture
def context(tmp_path) -> DriverContext:
    return DriverContext(stack=f"{PREFIX}snap-{uuid.uuid4().hex[:8]}", engine_url=os.environ.get("DOCKER_HOST"),
                         state_dir=tmp_path / "state")


@pytest.fixture
def driver(context) -> DockerVolumeDriver:
    return DockerVolumeDriver(context)


@pytest.fixture
def volume(driver, context, engine):
    spec = with_hash(VolumeSpec(key="data", name=context.stack + "-data"))
    driver.create(spec, object_labels(context.stack, Kind.VOLUME, spec))
    yield spec.name
    engine.remove_volume(spec.name, force=True)


def run_in(engine, volume: str, script: str, *, read_only: bool = False) -> str:
    """Run ``sh -c script`` in the base image with the volume at /v; its output (it must succeed)."""
    container = engine.create_container(BASE_IMAGE, ["sh", "-c", script], host_config=engine.create_host_config(
        binds={volume: {"bind": "/v", "mode": "ro" if read_only else "rw"}}, network_mode="none"))
    try:
        engine.start(container)
        code = engine.wait(container, timeout=600)["StatusCode"]
        output = engine.logs(container).decode()
        assert code == 0, output
        return output
    finally:
        engine.remove_container(container, force=True)


#: About 100 MiB: a thousand small files (1-40 KiB), random, zero and text large ones, owners, modes, a link.
FILL = """
set -e
cd /v && mkdir -p small/a small/b big empty
i=0
while [ $i -lt 1000 ]; do
  d=a; [ $((i % 2)) -eq 0 ] || d=b
  dd if=/dev/urandom of=small/$d/f$i bs=1024 count=$((i % 40 + 1)) 2>/dev/null
  i=$((i + 1))
done
dd if=/dev/urandom of=big/random bs=1048576 count=40 2>/dev/null
dd if=/dev/zero of=big/zeros bs=1048576 count=30 2>/dev/null
yes "a line of text that compresses well, as logs and databases do" | head -c 10485760 > big/text
echo secret > .hidden && chmod 600 .hidden && chown 1000:1001 .hidden
chown -R 999:999 small/b && chmod 750 small/b
ln -s big/random link
"""
#: What "byte for byte" means here: each file's checksum, and every entry's type, size (a folder's is the
#: filesystem's own), mode, owner.
SURVEY = ("cd /v && find . -type f -exec md5sum {} + | sort && "
          "find . ! -type d -exec stat -c '%n|%F|%s|%a|%u|%g' {} + | sort && "
          "find . -type d -exec stat -c '%n|%a|%u|%g' {} + | sort")


def test_a_100_mib_volume_of_mixed_files_round_trips_byte_for_byte(engine, driver, volume, context):
    run_in(engine, volume, FILL)
    before = run_in(engine, volume, SURVEY, read_only=True)
    seen = []
    taken = driver.snapshot(volume, progress=lambda done, total: seen.append(done))
    assert taken.content > 100 * 2**20 - 2**20 and 0 < taken.size < taken.content
    assert seen and seen == sorted(seen) and seen[-1] == int(taken.details["archive"])
    assert Path(taken.details["path"]).is_file() and driver.engine_id() in taken.details["path"]
    folder = Path(taken.details["path"]).parent
    for level in (folder, folder.parent, folder.parent.parent):
        assert level.stat().st_mode & 0o777 == 0o700, level

    run_in(engine, volume, "cd /v && rm -rf small/a big/zeros && echo new > small/new && "
                           "dd if=/dev/urandom of=big/random bs=1024 count=10 conv=notrunc 2>/dev/null")
    restored = driver.restore(volume, taken)
    assert run_in(engine, volume, SURVEY, read_only=True) == before
    assert restored.discarded == 40 * 2**20 + 4  # the rewritten file whole, and the new one
    assert driver.restore(volume, taken).discarded == 0
    assert engine.containers(all=True, filters={"label": [f"{HELPER_VOLUME}={volume}"]}) == [], "helpers removed"


KILLED = """
import sys, time
from pathlib import Path
from reconciler.drivers import DriverContext
from reconciler_docker.volumes import DockerVolumeDriver

def slowly(done, total):
    print("read", done, flush=True)
    time.sleep(0.2)

driver = DockerVolumeDriver(DriverContext(stack=sys.argv[1], state_dir=Path(sys.argv[2])))
driver.snapshot(sys.argv[3], progress=slowly)
print("finished", flush=True)
"""


def test_a_snapshot_killed_midway_is_never_listed_and_leaves_nothing_after_the_next_call(engine, driver, volume,
                                                                                        context):
    run_in(engine, volume, "dd if=/dev/urandom of=/v/random bs=1048576 count=40 2>/dev/null")
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED), context.stack, str(context.state_dir),
                              volume], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [child.stdout.readline() for _ in range(3)]
        assert all(line.startswith("read ") for line in lines), lines
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.stdout.close()
    folder = next((context.state_dir / "snapshots").iterdir()) / volume
    assert list(folder.glob("*.part")), "killed midway: its partial archive is there until the next call"
    assert driver.list_snapshots(volume) == []
    assert sorted(p.name for p in folder.iterdir()) == [], "the next call removed what the killed one left"
    helpers = engine.containers(all=True, filters={"label": [f"{HELPER_VOLUME}={volume}"]})
    assert helpers == [], "the killed call's helper container is gone too"


def test_a_corrupt_snapshot_is_refused_naming_it_and_the_volume_is_untouched(driver, volume):
    write_files(driver, volume, {"a": b"one", "b/c": b"two" * 1000})
    taken = driver.snapshot(volume)
    write_files(driver, volume, {"a": b"changed", "new": b"x"})
    now = read_files(driver, volume)
    archive = Path(taken.details["path"])
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(PermanentError, match=str(archive)):
        driver.restore(volume, taken)
    assert read_files(driver, volume) == now
