"""A daemon's resyncs trust the engine's event stream on a real engine: after a pass that found nothing to do, the
resyncs of a stack that heard nothing look only every few times, and a container removed by hand is still repaired
by its event (issue 24: idle CPU at a thousand stacks)."""
from __future__ import annotations

import time

import pytest

from reconciler.testing import scale
from reconciler.trust import TRUSTED_IN_A_ROW

pytestmark = pytest.mark.engine

N = 4


def _settled(daemon: scale.DaemonProcess) -> dict[str, float]:
    family = daemon.metrics().get("reconciler_settled_passes")
    found = {"events": 0.0, "observed": 0.0}
    for sample in family.samples if family else ():
        if sample.name.endswith("_total"):
            found[sample.labels["how"]] += sample.value
    return found


def test_resyncs_trust_the_event_stream_and_drift_is_still_repaired(tmp_path, engine) -> None:
    setup = scale.make_stacks(tmp_path / "trust", N, sources="one", resync=1)
    daemon = None
    try:
        daemon = scale.start_daemon(setup)
        scale.wait_converged(daemon, N, timeout=120)
        deadline = time.monotonic() + 60
        while (seen := _settled(daemon))["events"] < N * TRUSTED_IN_A_ROW or seen["observed"] < N:
            assert time.monotonic() < deadline, f"resyncs that planned nothing: {seen}"
            time.sleep(0.5)
        # about TRUSTED_IN_A_ROW trusted for one that looks (a stack's pass that looked then found nothing)
        assert seen["events"] >= seen["observed"]
        client = scale.engine()
        ids = scale.running(client, setup.names)
        victim = sorted(ids)[0]
        client.remove_container(ids[victim], force=True)
        deadline = time.monotonic() + 30
        while victim not in (now := scale.running(client, setup.names)) or now[victim] == ids[victim]:
            assert time.monotonic() < deadline, f"{victim} was not repaired"
            time.sleep(0.2)
        assert {name: cid for name, cid in now.items() if name != victim} == \
            {name: cid for name, cid in ids.items() if name != victim}
    finally:
        if daemon is not None and daemon.proc.poll() is None:
            daemon.stop()
        scale.cleanup(setup)
