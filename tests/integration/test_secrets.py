"""Secret env values and secret files never appear in output, JSON reports, labels, plan files or state."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reconciler.labels import SECRET_ENV

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    env:
      PLAIN: visible
      TOKEN: {value: "${TOKEN}", secret: true}
"""


def test_secrets_are_redacted_everywhere(stack):
    stack.write(SPEC)
    first, second = "tok-FIRST-8c1f", "tok-SECOND-77aa"
    outputs = []
    for args in (("plan",), ("plan", "--output", "json"), ("apply",)):
        result = stack.cli(*args, env={"TOKEN": first})
        assert result.code == 0, result.err
        outputs.append(result.out + result.err)
    change = stack.cli("plan", env={"TOKEN": second})
    assert "env.TOKEN: (secret) → (secret)" in change.out
    outputs.append(change.out + change.err)
    for args in (("apply", "--output", "json"), ("status",), ("status", "--output", "json")):
        result = stack.cli(*args, env={"TOKEN": second})
        assert result.code == 0, result.err
        outputs.append(result.out + result.err)
    for text in outputs:
        assert first not in text and second not in text
    info = stack.engine.inspect_container(f"{stack.name}-web-1")
    labels = json.dumps(info["Config"]["Labels"])
    assert first not in labels and second not in labels
    assert info["Config"]["Labels"][SECRET_ENV] == "TOKEN"
    assert f"TOKEN={second}" in info["Config"]["Env"]  # the container itself does get it


SECRET_SPEC = """
name: STACK
secrets:
  db: {file: ./db.age, encrypted: age}
containers:
  app:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    secrets: [db, {source: db, target: /home/app/db, uid: 1000, mode: "0400"}]
"""


_SEARCH = """
import os, sys
needle = bytes.fromhex(sys.argv[1])
for root in sys.argv[2:]:
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as stream:
                    if needle in stream.read():
                        print(path)
            except OSError:
                continue
"""


def _files_containing(roots, needle: bytes) -> set[str]:
    """Every file under ``roots`` holding ``needle``, searched by another process: this one may hold a
    connection to the state database, and closing a descriptor of its own on that file would drop the
    connection's locks (SQLite's POSIX locks are per process), letting another process delete its WAL."""
    done = subprocess.run([sys.executable, "-c", _SEARCH, needle.hex(), *map(str, roots)], capture_output=True,
                          text=True, check=True)
    return set(done.stdout.splitlines())


def test_an_age_secret_is_mounted_and_its_plaintext_is_found_nowhere_else(stack):
    import pyrage

    plaintext = "db-pw-" + stack.name[-8:] + "-Zq7"
    identity = pyrage.x25519.Identity.generate()
    (stack.dir / "db.age").write_bytes(pyrage.encrypt(plaintext.encode(), [identity.to_public()]))
    stack.write(SECRET_SPEC)
    env = {"RECONCILER_AGE_IDENTITY": str(identity)}
    outputs = []
    for args in (("validate",), ("plan",), ("plan", "--output", "json", "--out", "plan.json"), ("apply", "plan.json"),
                 ("apply", "--output", "json"), ("status", "--output", "json"), ("--log-level", "debug", "plan")):
        result = stack.cli(*args, env=env)
        assert result.code == 0, result.out + result.err
        outputs.append(result.out + result.err)
    container = f"{stack.name}-app-1"
    assert stack.exec(container, "cat", "/run/secrets/db") == plaintext
    assert stack.exec(container, "stat", "-c", "%a %u %g", "/run/secrets/db", "/home/app/db").split("\n")[:2] \
        == ["400 0 0", "400 1000 0"]
    for text in outputs:
        assert plaintext not in text
    info = stack.engine.inspect_container(container)
    assert plaintext not in json.dumps(info)  # labels, env, mounts: only a path and hashes
    sources = {m["Source"] for m in info["Mounts"] if m["Type"] == "bind"}
    stack_files = os.path.dirname(os.path.dirname(next(iter(sources))))
    roots = [stack.dir, stack_files] + [os.environ[k] for k in ("RECONCILER_CACHE_DIR", "RECONCILER_LOCK_DIR",
                                                                 "RECONCILER_STATE_DIR") if os.environ.get(k)]
    assert _files_containing(roots, plaintext.encode()) == sources  # the materialized secret itself, nothing else
    assert all(oct(os.stat(s).st_mode)[-3:] == "400" for s in sources)

    missing = stack.cli("plan", env={"RECONCILER_AGE_IDENTITY": ""})
    assert missing.code == 1 and "secrets.db.file" in missing.err and "RECONCILER_AGE_IDENTITY" in missing.err
    assert f"{stack.dir / 'stack.yaml'}:4:" in missing.err

    result = stack.cli("destroy", env=env)
    assert result.code == 0, result.out + result.err
    assert not any(os.path.exists(s) for s in sources) and not os.path.exists(stack_files)
