"""Golden tests: every examples/*.yaml validates and plans, from nothing, exactly as recorded.

Regenerate after an intended change with: RECONCILER_UPDATE_GOLDEN=1 python -m pytest tests/unit/test_examples.py
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.model import LiveState
from reconciler.planner import plan_changes
from reconciler.reconcile import load_desired
from reconciler.render import plan_text

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_plans_as_recorded(spec: Path):
    desired = load_desired([spec], environ={})
    text = plan_text(plan_changes(desired, LiveState())) + "\n"
    golden = GOLDEN / f"{spec.stem}.plan.txt"
    if os.environ.get("RECONCILER_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_there_are_examples():
    assert EXAMPLES
