"""Test-wide isolation: the schema cache, stack locks, config/secret files and the reconciler's record live in
this run's temp folder, and the secrets one test registers with the process-wide redactor do not blank another
test's text."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(tmp_path_factory):
    base = tmp_path_factory.mktemp("reconciler-state")
    names = ("RECONCILER_CACHE_DIR", "RECONCILER_LOCK_DIR", "RECONCILER_FILES_DIR", "RECONCILER_STATE_DIR")
    saved = {k: os.environ.get(k) for k in names}
    os.environ["RECONCILER_CACHE_DIR"] = str(base / "cache")
    os.environ["RECONCILER_LOCK_DIR"] = str(base / "locks")
    os.environ["RECONCILER_FILES_DIR"] = str(base / "files")
    os.environ["RECONCILER_STATE_DIR"] = str(base / "state")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _no_secrets_from_other_tests():
    from reconciler.redact import forget_secrets

    yield
    forget_secrets()
