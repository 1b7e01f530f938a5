"""``reconcile status`` shows what drivers report about their objects (``LiveObject.info``), redacted."""
from __future__ import annotations

from reconciler.model import DesiredState


def test_status_shows_what_drivers_report_in_info_as_text_and_json(tmp_path, monkeypatch, memory_engine):
    import dataclasses
    import json

    from reconciler.hookspecs import hookimpl
    from reconciler.model import VolumeSpec
    from reconciler.redact import register_secrets
    from reconciler.render import status_json, status_text
    from reconciler.status import status_rows
    from reconciler.testing import MemoryStorageDriver, make_reconciler

    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    register_secrets(["hunter2-status-secret"])

    class Reporting(MemoryStorageDriver):
        def observe(self, stack, wanted):
            return [dataclasses.replace(live, info={"path": f"/srv/{live.name}", "token": "hunter2-status-secret"})
                    for live in super().observe(stack, wanted)]

    class Plugin:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            registry.add_storage_driver("reporting", lambda context: Reporting(memory_engine, context))

    reconciler = make_reconciler(memory_engine, plugins={"reporting": Plugin()})
    volume = VolumeSpec(key="data", name="s_data", driver="reporting")
    from reconciler.testing import with_hash

    desired = DesiredState(stack="s", volumes={"data": with_hash(volume)})
    reconciler.apply(desired)
    plan, live = reconciler.plan(desired)
    rows = status_rows(desired, live, plan)
    (row,) = [r for r in rows if r["kind"] == "volume"]
    assert row["details"]["path"] == "/srv/s_data"
    text = status_text("s", rows, converged=plan.empty)
    assert "    path: /srv/s_data" in text
    assert json.loads(status_json("s", rows, converged=True))["objects"][0]["details"]["path"] == "/srv/s_data"
    assert "hunter2-status-secret" not in text + status_json("s", rows, converged=True)
