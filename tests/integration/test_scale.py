"""A hundred stacks on one daemon (issue 24, CI-sized): what must hold whatever the machine's speed.

Every stack converges (within a generous limit), the daemon's threads and descriptors stay under bounds
that do not depend on the number of stacks, one engine event stream serves them all, and a second pass
of every stack writes nothing. The timings themselves are bench/bench_scale.py's business.

``RECONCILER_SCALE_STACKS`` changes N (default 100). Each stack's default network takes a /26 of the
daemon's address pools (the engine's own hold about 31 networks).
"""
from __future__ import annotations

import os
import time

import pytest

from reconciler.testing import scale

N = int(os.environ.get("RECONCILER_SCALE_STACKS", "100"))
MAX_THREADS = 60  # a bounded pool, the API's server, one event stream, one poller per source: not per stack
MAX_FDS = 200

pytestmark = [pytest.mark.engine, pytest.mark.scale]


@pytest.fixture
def daemon(tmp_path, engine):
    setup = scale.make_stacks(tmp_path / "scale", N, sources="one")
    running = None
    try:
        running = scale.start_daemon(setup)
        yield running
    finally:
        if running is not None and running.proc.poll() is None:
            running.stop()
        scale.cleanup(setup)


def test_a_hundred_stacks_converge_with_bounded_threads_and_fds_and_a_second_pass_writes_nothing(daemon) -> None:
    cold = scale.wait_converged(daemon, N, timeout=max(600, 6 * N))
    converged, passes = scale.sample(daemon.pid), scale.passes(daemon.metrics())
    print(f"\nN={N}: converged in {cold:.1f} s, {passes} passes; threads {converged.threads}, fds {converged.fds}, "
          f"RSS {converged.rss_mib:.0f} MiB")
    assert converged.threads <= MAX_THREADS, f"{converged.threads} threads for {N} stacks"
    assert converged.fds <= MAX_FDS, f"{converged.fds} open descriptors for {N} stacks"
    streams = daemon.metrics().get("reconciler_event_streams")
    if streams is not None:  # one per engine: this daemon has one
        assert sum(s.value for s in streams.samples) == 1

    client = scale.engine()
    ids = scale.running(client, daemon.setup.names)
    before = {s["name"]: s for s in scale.stack_summaries(daemon)}
    asked = time.time()
    for name in daemon.setup.names:
        status, _, body = daemon.api(f"/api/stacks/{name}/sync", method="POST")
        assert status == 202, body
    after = _passed_again(daemon, before, timeout=max(300, 3 * N))
    assert all(s["state"] == "converged" and s["last_sync"]["changes"] == 0 for s in after.values()), \
        [s for s in after.values() if s["state"] != "converged" or s["last_sync"]["changes"]]
    assert all(after[name]["last_change"] == before[name]["last_change"] for name in after)
    assert scale.running(client, daemon.setup.names) == ids  # not one container replaced
    again = scale.sample(daemon.pid)
    assert again.threads <= MAX_THREADS and again.fds <= MAX_FDS, again
    print(f"second pass of {N} stacks: {time.time() - asked:.1f} s; threads {again.threads}, fds {again.fds}")
    assert daemon.stop() < 60


def _passed_again(daemon: scale.DaemonProcess, before: dict[str, dict], timeout: float) -> dict[str, dict]:
    """/api/stacks once every stack has a pass newer than its pass in ``before``."""
    deadline = time.monotonic() + timeout
    while True:
        now = {s["name"]: s for s in scale.stack_summaries(daemon) if s["name"] in before}
        waiting = [name for name, s in now.items() if s["last_sync"]["at"] == before[name]["last_sync"]["at"]]
        if not waiting and len(now) == len(before):
            return now
        assert time.monotonic() < deadline, f"{len(waiting)} stacks had no second pass, e.g. {waiting[:3]}"
        time.sleep(0.5)
