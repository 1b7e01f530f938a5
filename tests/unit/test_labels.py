"""The label text is a public contract: users and their tools filter on it (``docker ps --filter label=...``);
and the ownership rule the labels carry: only labels naming the object's own kind claim a stack.

Every other test names labels through ``reconciler.labels``; this one pins the text they stand for.
"""
from __future__ import annotations

from reconciler.labels import KIND, NAME, STACK, is_owned, owner_selector, owner_selectors
from reconciler.model import Kind


def test_the_stack_label_users_filter_on_keeps_its_text():
    assert owner_selector("web") == "io.reconciler.stack=web"


def test_only_labels_naming_the_objects_own_kind_claim_the_stack():
    ours = {STACK: "web", KIND: "container"}
    assert is_owned(ours, "web", kind=Kind.CONTAINER) and is_owned(ours, "web", kind="container")
    assert not is_owned(ours, "other", kind=Kind.CONTAINER)
    inherited = {STACK: "web", KIND: "image", NAME: "web"}  # a container run from an image the stack built
    assert not is_owned(inherited, "web", kind=Kind.CONTAINER)
    assert is_owned(inherited, "web", kind=Kind.IMAGE)
    assert not is_owned({STACK: "web"}, "web", kind=Kind.CONTAINER), "no kind label: no claim"
    assert not is_owned(None, "web", kind=Kind.CONTAINER)


def test_the_engine_filter_selects_the_stack_and_the_kind():
    assert owner_selectors("web", Kind.CONTAINER) == ["io.reconciler.stack=web", "io.reconciler.kind=container"]
