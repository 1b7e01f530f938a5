"""``@value`` classes behave as ``@dataclass(frozen=True)`` ones: repr, equality, hashing and field flags."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from reconciler.values import value


def _pair(body: dict):
    """The same class made both ways."""
    made = []
    for decorate in (dataclass(frozen=True), value):
        namespace = {"__annotations__": {"a": "int", "b": "str", "hidden": "str", "loose": "float", "hashed": "int"},
                     "b": "x", "hidden": field(default="h", repr=False), "loose": field(default=0.5, compare=False),
                     "hashed": field(default=1, hash=False), **body}
        made.append(decorate(type("Sample", (), dict(namespace))))
    return made


def test_repr_equality_and_hash_match_a_frozen_dataclass():
    plain, shared = _pair({})
    for args in [(1,), (1, "y"), (2, "x", "secret", 9.0, 7)]:
        p, s = plain(*args), shared(*args)
        assert repr(p) == repr(s) and "secret" not in repr(s)
        assert hash(p) == hash(s)
    assert shared(1, loose=1.0) == shared(1, loose=2.0)  # compare=False is not compared
    assert shared(1, hashed=1) != shared(1, hashed=2) and hash(shared(1, hashed=1)) == hash(shared(1, hashed=2))
    assert shared(1) != plain(1) and shared(1).__eq__(plain(1)) is NotImplemented
    nan = float("nan")
    assert shared(nan) == shared(nan) and plain(nan) == plain(nan)


def test_it_stays_frozen_and_replaceable_and_keeps_methods_it_defines():
    _, shared = _pair({"__repr__": lambda self: "mine"})
    item = shared(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.a = 2
    assert dataclasses.replace(item, a=2) == shared(2)
    assert repr(item) == "mine"
