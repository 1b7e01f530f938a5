#!/usr/bin/env python3
"""Volume snapshots: the ``local`` driver (through the engine) against ``tar | zstd`` on the host, and ``btrfs``.

    python bench/bench_snapshots.py                  # 100 MiB and 1 GiB: a few minutes on 2 cores
    python bench/bench_snapshots.py --sizes 100 --repeats 3

For each size (MiB), a volume is filled with mixed files (untimed): a thousand
small random files of 1-40 KiB, one large random file, one of zeros, one of
text, about 20/40/30/10 % of the size. Then, in the same run, on the same
volume:

  local        the ``local`` driver's ``snapshot`` (a helper container, the
               engine's archive API, zstd, sha256, fsync) and ``restore`` (the
               checksum, reading what it discards, emptying the volume,
               streaming the archive back), in this process;
  host tar     ``tar -C <the volume's host directory> -c . | zstd -q -o FILE``
               and, to restore, emptying that directory then
               ``zstd -dc FILE | tar -C DIR -x`` (the floor: no engine, no
               checksum; the bench may read the engine's host path, as it runs
               beside the engine);
  btrfs        only when ``RECONCILER_BTRFS_ROOT`` names a mounted btrfs and a
               storage driver named ``btrfs`` is installed (looked up through
               the plugin registry, as a run does): a volume of its own, filled
               the same way, snapshotted and restored.

Before each restore a tenth of the small files are removed and the random file
rewritten in part (untimed); after it, every file's checksum, size, mode and
owner must be what they were (a survey run in a container), else the run
fails. It prints seconds (median of ``--repeats``) and the archive's size of
each, and local / host tar ratios. It is a benchmark, not a test: nothing is
asserted about timing; the exit code is 1 only when something failed.

Volumes are named ``bsnap-<random>-<size>`` and labelled
``io.reconciler-bench.snapshots``; they, the helper containers and the
temporary directory (the snapshots' state directory) are removed at the end,
also on an error or Ctrl-C.
"""
from __future__ import annotations

import argparse
import difflib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import docker

from reconciler.drivers import DriverContext
from reconciler.labels import object_labels
from reconciler.model import Kind, LiveObject, VolumeSpec
from reconciler.testing import installed_driver, with_hash
from reconciler_docker.volumes import DockerVolumeDriver
from reconciler_docker.volumesnap import HELPER_IMAGE_ENV

IMAGE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")
LABEL = "io.reconciler-bench.snapshots"
BTRFS_ROOT_ENV = "RECONCILER_BTRFS_ROOT"
#: Each file's checksum, and every entry's type, size, mode and owner (a folder's size is the filesystem's, not content).
SURVEY = ("cd /v && find . -type f -exec md5sum {} + | sort && "
          "find . ! -type d -exec stat -c '%n|%F|%s|%a|%u|%g' {} + | sort && "
          "find . -type d -exec stat -c '%n|%a|%u|%g' {} + | sort")
CHANGE = ("cd /v && i=0; for f in small/*; do [ $((i % 10)) -eq 0 ] && rm -f \"$f\"; i=$((i + 1)); done; "
          "dd if=/dev/urandom of=big/random bs=1048576 count=1 conv=notrunc 2>/dev/null")


def fill_script(mib: int) -> str:
    """Mixed files for about ``mib`` MiB: 20 % small random files, 40 % random, 30 % zeros, 10 % text."""
    small_kib = mib * 1024 // 5
    count = max(small_kib // 20, 1)  # 1-40 KiB each, 20.5 KiB on average
    return f"""
set -e
cd /v && mkdir -p small big
i=0
while [ $i -lt {count} ]; do
  dd if=/dev/urandom of=small/f$i bs=1024 count=$((i % 40 + 1)) 2>/dev/null
  i=$((i + 1))
done
dd if=/dev/urandom of=big/random bs=1048576 count={mib * 4 // 10} 2>/dev/null
dd if=/dev/zero of=big/zeros bs=1048576 count={mib * 3 // 10} 2>/dev/null
yes "a line of text that compresses well, as logs and databases do" | head -c {mib * 1048576 // 10} > big/text
chown -R 1000:1000 small
"""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class SnapshotBench:
    """One run: its volumes, its engine client, its state directory."""

    def __init__(self, api: docker.APIClient, tmp: Path, repeats: int) -> None:
        self.api, self.tmp, self.repeats = api, tmp, repeats
        self.run_id = secrets.token_hex(4)
        self.context = DriverContext(stack=f"bsnap-{self.run_id}", state_dir=tmp / "state")
        self.local = DockerVolumeDriver(self.context)
        self.volumes: list[tuple[object, str]] = []  # (driver, volume name)

    def run_in(self, volume: str, script: str, *, read_only: bool = False) -> str:
        """``sh -c script`` in the base image with ``volume`` at /v; its output (it must succeed)."""
        made = self.api.create_container(IMAGE, ["sh", "-c", script], labels={LABEL: self.run_id},
                                         host_config=self.api.create_host_config(
                                             binds={volume: {"bind": "/v", "mode": "ro" if read_only else "rw"}},
                                             network_mode="none"))
        try:
            self.api.start(made)
            code = self.api.wait(made, timeout=3600)["StatusCode"]
            output = self.api.logs(made).decode()
            if code != 0:
                raise RuntimeError(f"{script[:60]!r} exited {code}: {output[-500:]}")
            return output
        finally:
            self.api.remove_container(made, force=True)

    def volume(self, driver, name: str, spec_driver: str, options: tuple = ()) -> str:
        """A new volume made by ``driver`` with the core's labels (a driver deletes only its stack's), kept for clean-up."""
        spec = with_hash(VolumeSpec(key="data", name=name, driver=spec_driver, options=options))
        driver.create(spec, {**object_labels(self.context.stack, Kind.VOLUME, spec), LABEL: self.run_id})
        self.volumes.append((driver, name))
        return name

    def driver_rows(self, label: str, driver, volume: str, mib: int) -> dict[str, float]:
        """Snapshot and restore of ``volume`` through ``driver``, ``repeats`` times; checked byte for byte."""
        self.run_in(volume, fill_script(mib))
        before = self.run_in(volume, SURVEY, read_only=True)
        snaps, restores, size = [], [], 0
        for _ in range(self.repeats):
            started = time.monotonic()
            taken = driver.snapshot(volume)
            snaps.append(time.monotonic() - started)
            size = taken.size
            self.run_in(volume, CHANGE)
            started = time.monotonic()
            driver.restore(volume, taken)
            restores.append(time.monotonic() - started)
            differs(before, self.run_in(volume, SURVEY, read_only=True), label)
            driver.delete_snapshot(taken)
        log(f"{label} {mib} MiB: snapshot {snaps}, restore {restores}")
        return {"snapshot": statistics.median(snaps), "restore": statistics.median(restores), "size": size}

    def host_rows(self, volume: str, mib: int) -> dict[str, float]:
        """``tar | zstd`` of the volume's host directory, and back, ``repeats`` times; checked byte for byte."""
        folder = self.api.inspect_volume(volume)["Mountpoint"]
        before = self.run_in(volume, SURVEY, read_only=True)
        archive = self.tmp / f"host-{mib}.tar.zst"
        snaps, restores = [], []
        for _ in range(self.repeats):
            snaps.append(shell(f"tar -C {folder} -c . | zstd -q -f -o {archive}"))
            self.run_in(volume, CHANGE)
            restores.append(shell(f"find {folder} -mindepth 1 -delete && zstd -dc {archive} | tar -C {folder} -x"))
            differs(before, self.run_in(volume, SURVEY, read_only=True), "host tar")
        log(f"host tar {mib} MiB: snapshot {snaps}, restore {restores}")
        return {"snapshot": statistics.median(snaps), "restore": statistics.median(restores),
                "size": archive.stat().st_size}

    def btrfs_driver(self):
        """The installed ``btrfs`` storage driver, when ``RECONCILER_BTRFS_ROOT`` is a mounted btrfs; else None."""
        root = os.environ.get(BTRFS_ROOT_ENV)
        if not root or shell_output(["stat", "-f", "-c", "%T", root]) != "btrfs":
            log(f"no btrfs row: {BTRFS_ROOT_ENV} names no mounted btrfs")
            return None
        try:
            return installed_driver(Kind.VOLUME, "btrfs", self.context)
        except Exception as exc:  # no plugin provides it (a PluginError), or it refuses to start
            log(f"no btrfs row: {exc}")
            return None

    def cleanup(self) -> None:
        for container in self.api.containers(all=True, filters={"label": f"{LABEL}={self.run_id}"}):
            self.api.remove_container(container["Id"], force=True)
        for driver, volume in self.volumes:
            for container in self.api.containers(all=True, filters={"volume": volume}):
                self.api.remove_container(container["Id"], force=True)  # a helper left by an error
            for taken in driver.list_snapshots(volume):
                driver.delete_snapshot(taken)
            driver.delete(LiveObject(Kind.VOLUME, volume, volume))  # btrfs: its subvolume too


def differs(before: str, after: str, label: str) -> None:
    """Fail, showing the first differences, when a restored volume's survey is not what it was."""
    if after != before:
        diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))[2:12]
        raise RuntimeError(f"{label}: the restored volume differs:\n" + "\n".join(diff))


def shell(command: str) -> float:
    """Seconds ``bash -o pipefail -c command`` takes; it must succeed."""
    started = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.monotonic() - started


def shell_output(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def table(rows: dict[str, dict[str, float]], mib: int) -> list[str]:
    lines = [f"{mib} MiB of mixed files", f"  {'':10} {'snapshot s':>11} {'restore s':>10} {'size MiB':>9}"]
    for label, row in rows.items():
        lines.append(f"  {label:10} {row['snapshot']:11.2f} {row['restore']:10.2f} {row['size'] / 2**20:9.1f}")
    local, host = rows["local"], rows["host tar"]
    lines.append(f"  local / host tar: snapshot {local['snapshot'] / host['snapshot']:.2f}x, "
                 f"restore {local['restore'] / host['restore']:.2f}x, size {local['size'] / host['size']:.2f}x")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1024", help="volume sizes in MiB, comma-separated (default 100,1024)")
    parser.add_argument("--repeats", type=int, default=1, help="snapshots and restores of each (default 1)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    if not sizes or min(sizes) < 10 or args.repeats < 1:
        parser.error("sizes are at least 10 MiB, repeats at least 1")
    os.environ.setdefault(HELPER_IMAGE_ENV, IMAGE)  # Docker Hub may be out of reach; the tests' image has find
    api = docker.APIClient(version="auto", timeout=600)
    with tempfile.TemporaryDirectory(prefix="bench-snapshots-") as tmp:
        bench = SnapshotBench(api, Path(tmp), args.repeats)
        out: list[str] = []
        try:
            btrfs = bench.btrfs_driver()
            for mib in sizes:
                volume = bench.volume(bench.local, f"bsnap-{bench.run_id}-{mib}", "local")
                rows = {"local": bench.driver_rows("local", bench.local, volume, mib),
                        "host tar": bench.host_rows(volume, mib)}
                if btrfs is not None:
                    name = bench.volume(btrfs, f"bsnap-{bench.run_id}-{mib}-btrfs", "btrfs")
                    rows["btrfs"] = bench.driver_rows("btrfs", btrfs, name, mib)
                out += table(rows, mib)
        except (Exception, KeyboardInterrupt) as exc:
            log(f"failed: {type(exc).__name__}: {exc}")
            return 1
        finally:
            bench.cleanup()
        print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
