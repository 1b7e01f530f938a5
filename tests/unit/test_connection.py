"""The engine connection's timeouts: connecting is always bounded, reading keeps its own limit."""
from __future__ import annotations

import pytest

from reconciler.cli import main
from reconciler.errors import PermanentError
from reconciler_docker.connection import DEFAULT_CONNECT_TIMEOUT, _bounded, connect_timeout


@pytest.mark.parametrize("given, expected", [
    (None, (5.0, None)),  # builds and pulls: no read limit, but a bounded connect
    (120, (5.0, 120)),  # ordinary calls: the SDK's one number is the read limit
    (2, (2, 2)),
    ((None, 30), (5.0, 30)),
    ((1, 30), (1, 30)),
])
def test_every_request_connects_within_the_connect_timeout(given, expected):
    assert _bounded(given, 5.0) == expected


def test_the_connect_timeout_is_a_few_seconds_unless_configured():
    assert connect_timeout({}) == DEFAULT_CONNECT_TIMEOUT <= 10
    assert connect_timeout({"RECONCILER_CONNECT_TIMEOUT": "0.5"}) == 0.5


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_a_connect_timeout_that_is_no_duration_is_refused(value):
    with pytest.raises(PermanentError, match=f"RECONCILER_CONNECT_TIMEOUT must be a positive number of seconds, "
                                             f"got '{value}'"):
        connect_timeout({"RECONCILER_CONNECT_TIMEOUT": value})


def test_a_bad_connect_timeout_is_one_line_from_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECONCILER_CONNECT_TIMEOUT", "soon")
    spec = tmp_path / "stack.yaml"
    spec.write_text("name: shop\ncontainers: {web: {image: 'x:1'}}\n")
    assert main(["plan", "-f", str(spec), "--engine", f"unix://{tmp_path}/engine.sock"]) == 1
    assert capsys.readouterr().err == (
        "error: RECONCILER_CONNECT_TIMEOUT must be a positive number of seconds, got 'soon'\n")
