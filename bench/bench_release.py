#!/usr/bin/env python3
"""A start-first release with data: what the snapshot adds to a release, and how long the old container pauses.

    python bench/bench_release.py                    # 100 MiB and 1 GiB volumes, local (and btrfs when mounted)
    python bench/bench_release.py --sizes 100 --repeats 3

For each size (MiB) and storage driver (``local``; ``btrfs`` when ``RECONCILER_BTRFS_ROOT``
names a mounted btrfs), two stacks of one container (the base image, ``sleep``, a volume at
/v filled with the snapshot bench's mixed files, untimed), each released ``--repeats`` times
through ``reconcile apply`` (an env change replaces the container, start-first), in the same run:

  with snapshot     ``update: {order: start-first, snapshot: [data]}``: the old container is
                    paused while its volume is snapshotted, then resumed, then the new one starts;
  without           the same stack and volume without ``snapshot``: the floor, a release as it was.

It prints, per size and driver, the median seconds of each release (the ``apply`` command,
end to end), their ratio, and the median pause the release reported (``paused N s for the
snapshot``): the time requests to the old container waited. It is a benchmark, not a test:
nothing about timing is asserted; the exit code is 1 only when something failed.

Stacks are named ``brel-<random>-<size>-<driver>``; they are destroyed with their volumes, and
their snapshots deleted, at the end (also on an error or Ctrl-C).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_snapshots import BTRFS_ROOT_ENV, IMAGE, fill_script, log
from reconciler_docker.volumesnap import HELPER_IMAGE_ENV

SPEC = """name: {name}
volumes:
  data: {{driver: {driver}}}
containers:
  app:
    image: {image}
    command: ["sleep", "1d"]
    init: true
    stop_grace_period: 1s
    env: {{RELEASE: "{release}"}}
    volumes: ["data:/v"]
    update: {update}
"""
PAUSED = re.compile(r"paused (\d+(?:\.\d+)?)s for the snapshot")


class ReleaseBench:
    """One run: its stacks' files and state directory, and what to remove at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.run_id = tmp, secrets.token_hex(3)
        self.env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp / "state"), "NO_COLOR": "1"}
        self.stacks: list[Path] = []

    def reconcile(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([sys.executable, "-m", "reconciler", *args], env=self.env, capture_output=True,
                              text=True, timeout=3600)
        if check and done.returncode != 0:
            raise RuntimeError(f"reconcile {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done.stdout + done.stderr

    def write(self, path: Path, name: str, driver: str, release: int, snapshot: bool) -> None:
        update = "{order: start-first, snapshot: [data]}" if snapshot else "{order: start-first}"
        path.write_text(SPEC.format(name=name, driver=driver, image=IMAGE, release=release, update=update))

    def stack(self, mib: int, driver: str, snapshot: bool, repeats: int) -> tuple[list[float], list[float]]:
        """(release seconds, pauses) of ``repeats`` releases of a new stack whose volume holds ``mib`` MiB."""
        name = f"brel-{self.run_id}-{mib}-{driver}-{'snap' if snapshot else 'floor'}"
        path = self.tmp / f"{name}.yaml"
        self.stacks.append(path)
        self.write(path, name, driver, 0, snapshot)
        self.reconcile("apply", "-f", str(path))
        self.fill(f"{name}_data", mib)
        seconds, pauses = [], []
        for release in range(1, repeats + 1):
            self.write(path, name, driver, release, snapshot)
            started = time.monotonic()
            out = self.reconcile("apply", "-f", str(path))
            seconds.append(time.monotonic() - started)
            found = PAUSED.search(out)
            if snapshot and not found:
                raise RuntimeError(f"the release reported no pause:\n{out}")
            if found:
                pauses.append(float(found.group(1)))
        return seconds, pauses

    def fill(self, volume: str, mib: int) -> None:
        import docker

        api = docker.APIClient(version="auto", timeout=600)
        made = api.create_container(IMAGE, ["sh", "-c", fill_script(mib)], host_config=api.create_host_config(
            binds={volume: {"bind": "/v", "mode": "rw"}}, network_mode="none"))
        try:
            api.start(made)
            if api.wait(made, timeout=3600)["StatusCode"] != 0:
                raise RuntimeError(f"filling {volume} failed: {api.logs(made).decode()[-300:]}")
        finally:
            api.remove_container(made, force=True)

    def cleanup(self) -> None:
        for path in self.stacks:
            name = path.stem
            try:
                listed = json.loads(self.reconcile("snapshots", "list", name, "--output", "json", check=False) or "[]")
                ids = [item["id"] for item in listed if isinstance(item, dict) and "id" in item]
                if ids:
                    self.reconcile("snapshots", "delete", name, "data", *ids, check=False)
            except (ValueError, RuntimeError) as exc:
                log(f"cleanup of {name}'s snapshots: {exc}")
            self.reconcile("destroy", "-f", str(path), "--prune-volumes", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1024", help="volume sizes in MiB, comma-separated (default 100,1024)")
    parser.add_argument("--repeats", type=int, default=3, help="releases of each stack (default 3)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    os.environ.setdefault(HELPER_IMAGE_ENV, IMAGE)  # Docker Hub may be out of reach; the tests' image has find
    drivers = ["local"] + (["btrfs"] if os.path.ismount(os.environ.get(BTRFS_ROOT_ENV, "/nonexistent")) else [])
    rows = ["| MiB | driver | release with snapshot s | without s | ratio | pause s (p50, max) |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        bench = ReleaseBench(Path(tmp))
        try:
            for mib in sizes:
                for driver in drivers:
                    log(f"{mib} MiB {driver}: releases with a snapshot, then without")
                    snap, pauses = bench.stack(mib, driver, True, args.repeats)
                    floor, _ = bench.stack(mib, driver, False, args.repeats)
                    with_s, without_s = statistics.median(snap), statistics.median(floor)
                    rows.append(f"| {mib} | {driver} | {with_s:.2f} | {without_s:.2f} | {with_s / without_s:.2f} | "
                                f"{statistics.median(pauses):.2f}, {max(pauses):.2f} |")
        except (Exception, KeyboardInterrupt) as exc:
            log(f"failed: {type(exc).__name__}: {exc}")
            return 1
        finally:
            bench.cleanup()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
