"""The label text is a public contract: users and their tools filter on it (``docker ps --filter label=...``).

Every other test names labels through ``reconciler.labels``; this one pins the text they stand for.
"""
from __future__ import annotations

from reconciler.labels import owner_selector


def test_the_stack_label_users_filter_on_keeps_its_text():
    assert owner_selector("web") == "io.reconciler.stack=web"
