"""The storage role's contract as tests: volumes as every object driver's, plus snapshots when declared.

Why a room of its own: snapshots are the storage role's optional capability
(``StorageDriver.takes_snapshots``), and checking that a driver gives a volume's
content back needs more than the other roles' checks: a way to put files in
a volume and read them back, which only the driver's author knows (a helper
container, a host path, a dict in memory). The subclass gives it through two
fixtures, ``write_content`` and ``read_content``; without them the content
checks of a driver that takes snapshots are skipped, not failed. A driver that
takes none passes them with nothing to check (its refusal is checked), so its
author's run shows no skip for a capability it never offered.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Iterator

import pytest

from ..drivers import StorageDriver
from ..errors import PermanentError
from ..model import Kind, Restored, Snapshot, VolumeSpec
from .contract import ContractHarness, _ObjectDriverContract, assert_maps_errors

__all__ = ["StorageDriverContract"]

#: A snapshot id: UTC time, then 6 hex (``20261207T184500Z-3f2a1c``).
SNAPSHOT_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
#: What the content checks put in a volume first, and what they change it to.
BEFORE = {"a.txt": b"one", "dir/b.bin": bytes(range(256)) * 64, "dir/deeper/c": b""}
AFTER = {"a.txt": b"changed", "new.txt": b"x" * 100}
_METHODS = ("snapshot", "restore", "list_snapshots", "delete_snapshot")

Files = dict[str, bytes]


class StorageDriverContract(_ObjectDriverContract):
    """The contract of a storage (volume) driver. Subclass it as ``Test...`` and give it a ``driver``.

    A driver that declares ``takes_snapshots`` is checked for snapshots too;
    define the ``write_content`` fixture (returns ``write(volume, files)``:
    writes those files, path → bytes, over what the volume holds) and
    ``read_content`` (returns ``read(volume) -> files``: every regular file it
    holds) for the checks that need the volume's content.
    """

    kind = Kind.VOLUME
    role = StorageDriver
    spec_class = VolumeSpec
    spec_key = "data"

    # -- what a subclass provides --------------------------------------------------------------

    @pytest.fixture
    def write_content(self) -> Callable[[str, Files], None] | None:
        """``write(volume, files)``: put these files (path → bytes) in the volume. None skips content checks."""
        return None

    @pytest.fixture
    def read_content(self) -> Callable[[str], Files] | None:
        """``read(volume) -> files``: every regular file in the volume, path → bytes. None skips content checks."""
        return None

    # -- fixtures of the checks -----------------------------------------------------------------

    @pytest.fixture
    def snapshotting(self, driver: StorageDriver) -> StorageDriver | None:
        """The driver, when it declares snapshots; None when it does not: the capability is optional, so its
        checks pass with nothing to check (as the registry kit does for optional methods), not skip."""
        return driver if type(driver).takes_snapshots else None

    @pytest.fixture
    def volume(self, snapshotting: StorageDriver | None, harness: ContractHarness, desired: Any, write_content,
               read_content) -> Iterator[str | None]:
        """A new volume holding ``BEFORE``; the snapshots taken of it are deleted afterwards (None, and no volume,
        for a driver that takes no snapshots)."""
        if snapshotting is None:
            yield None
            return
        if write_content is None or read_content is None:
            pytest.skip("define the write_content and read_content fixtures to check snapshots of content")
        harness.create(desired)
        write_content(desired.name, BEFORE)
        yield desired.name
        try:  # a broken driver must not fail the clean-up: its test reports the bug
            for taken in harness.driver.list_snapshots(desired.name):
                harness.driver.delete_snapshot(taken)
        except Exception:
            pass

    # -- the contract: snapshots ---------------------------------------------------------------

    def test_snapshots_are_declared_as_implemented(self, driver: StorageDriver) -> None:
        overridden = [m for m in _METHODS if getattr(type(driver), m) is not getattr(StorageDriver, m)]
        if type(driver).takes_snapshots:
            missing = sorted(set(_METHODS) - set(overridden))
            assert not missing, f"takes_snapshots is True, but {type(driver).__name__} keeps the default {missing}"
        else:
            assert_maps_errors(lambda: driver.list_snapshots("any"), PermanentError)

    def test_a_restore_gives_the_snapshots_content_back(self, snapshotting: StorageDriver, volume: str,
                                                        write_content, read_content) -> None:
        if snapshotting is None:
            return  # takes no snapshots: the refusal is checked above
        seen: list[tuple[int, int | None]] = []
        taken = snapshotting.snapshot(volume, progress=lambda done, total: seen.append((done, total)))
        _check_snapshot(taken, volume)
        assert taken.content >= sum(map(len, BEFORE.values())), "content counts the bytes of every file"
        for done, total in seen:
            assert isinstance(done, int) and (total is None or isinstance(total, int)), \
                f"progress takes (done bytes, total bytes or None), not ({done!r}, {total!r})"
        assert [s.id for s in snapshotting.list_snapshots(volume)] == [taken.id], "list_snapshots lists it"

        write_content(volume, AFTER)
        restored = snapshotting.restore(volume, taken)
        assert isinstance(restored, Restored) and restored.snapshot.id == taken.id, "restore returns a Restored"
        assert read_content(volume) == BEFORE, "after restore the volume holds exactly the snapshot's files"
        written = sum(map(len, AFTER.values()))
        assert restored.discarded is None or restored.discarded >= written, \
            f"discarded counts the bytes written since the snapshot ({written}), not {restored.discarded}"
        assert restored.seconds >= 0

        snapshotting.delete_snapshot(taken)
        assert snapshotting.list_snapshots(volume) == [], "a deleted snapshot is not listed"
        snapshotting.delete_snapshot(taken)  # idempotent

    def test_a_restore_run_again_completes_and_changes_nothing_more(self, snapshotting: StorageDriver, volume: str,
                                                                    write_content, read_content) -> None:
        if snapshotting is None:
            return  # takes no snapshots: the refusal is checked above
        taken = snapshotting.snapshot(volume)
        # What a restore killed midway may leave: some files gone or short, some still the new ones.
        write_content(volume, {"a.txt": b"o", **AFTER})
        snapshotting.restore(volume, taken)
        assert read_content(volume) == BEFORE
        again = snapshotting.restore(volume, taken)
        assert read_content(volume) == BEFORE, "a second restore gives the same content"
        assert again.discarded in (0, None), f"nothing changed since the restore, yet {again.discarded} discarded"

    def test_snapshots_list_oldest_first_per_volume(self, snapshotting: StorageDriver, volume: str,
                                                    harness: ContractHarness, desired: Any) -> None:
        if snapshotting is None:
            return  # takes no snapshots: the refusal is checked above
        first = snapshotting.snapshot(volume)
        second = snapshotting.snapshot(volume)
        assert first.id != second.id, "snapshot ids are unique per volume"
        assert [s.id for s in snapshotting.list_snapshots(volume)] == [first.id, second.id], "oldest first"
        other = dataclasses.replace(desired, name=volume + "-other")
        harness.create(other)
        assert snapshotting.list_snapshots(other.name) == [], "a volume without snapshots lists none"


def _check_snapshot(taken: Any, volume: str) -> None:
    assert isinstance(taken, Snapshot), f"snapshot must return a Snapshot, not {type(taken).__name__}"
    assert taken.volume == volume, f"the snapshot names volume {taken.volume!r}, not {volume!r}"
    assert SNAPSHOT_ID.fullmatch(taken.id), f"snapshot id {taken.id!r} is not UTC time then 6 hex"
    assert taken.size >= 0 and taken.created > 0
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in taken.details.items()), \
        "details map str to str"
