"""The entry points of installed plugins, remembered between runs until anything is installed on sys.path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from reconciler import entrypoints


def _install(folder, dist: str, entry: str, value: str) -> None:
    info = folder / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[reconciler]\n{entry} = {value}\n")


def _ask(folder, cache) -> list[str]:
    """The entry point names a fresh interpreter finds, and whether it had to import importlib.metadata."""
    code = textwrap.dedent("""
        import sys
        from reconciler.entrypoints import entry_points
        names = [e.name for e in entry_points("reconciler") if e.distribution.startswith("acme")]
        print(" ".join(names + ["scanned" if "importlib.metadata" in sys.modules else "remembered"]))
    """)
    env = {**os.environ, "RECONCILER_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(folder), *sys.path[1:]])}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_the_answer_is_remembered_until_a_distribution_is_installed(tmp_path):
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    _install(site, "acme_one", "one", "acme_one_plugin")
    assert _ask(site, cache) == ["one", "scanned"]
    assert _ask(site, cache) == ["one", "remembered"]
    _install(site, "acme_two", "two", "acme_two_plugin")  # pip adds a dist-info: the folder's mtime moves
    assert _ask(site, cache) == ["one", "two", "scanned"]
    assert _ask(site, cache) == ["one", "two", "remembered"]


def test_a_file_others_may_write_is_not_trusted_and_off_disables_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path))
    found = entrypoints.entry_points("reconciler")
    assert {"docker", "notify", "policy"} <= {e.name for e in found}
    remembered = tmp_path / "entry-points.json"
    data = json.loads(remembered.read_text())
    data["entry_points"] = [{"name": "evil", "value": "evil_module", "distribution": "x", "version": "1"}]
    remembered.write_text(json.dumps(data))
    os.chmod(remembered, 0o666)
    assert "evil" not in {e.name for e in entrypoints.entry_points("reconciler")}
    os.chmod(remembered, 0o600)
    remembered.write_text(json.dumps(data))
    assert [e.name for e in entrypoints.entry_points("reconciler")] == ["evil"]  # ours, and the key matches
    monkeypatch.setenv("RECONCILER_CACHE_DIR", "off")
    assert "evil" not in {e.name for e in entrypoints.entry_points("reconciler")}


def test_an_entry_point_loads_its_module_and_attribute():
    point = entrypoints.EntryPoint("x", "reconciler.hookspecs:hookimpl", "reconciler", "0")
    from reconciler.hookspecs import hookimpl

    assert point.load() is hookimpl
