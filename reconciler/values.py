"""``@value``: ``@dataclass(frozen=True)`` whose ``__repr__``, ``__eq__`` and ``__hash__`` are shared.

``@dataclass`` writes and compiles the source of six methods for every frozen
class it makes, at every start of every command: about half a millisecond a
class, and the model, plan and report modules hold some thirty of them. Three
of those methods do the same for every class, over the class's fields, so
these classes share one copy of each: same results (the field flags
``repr``, ``compare`` and ``hash`` are honoured), a third of the cost.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

__all__ = ["compared_fields", "value"]

T = TypeVar("T")


def value(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True)``, with the shared methods below for any the class does not define itself."""
    made = dataclass(frozen=True, repr=False, eq=False)(cls)
    for name, method in _SHARED.items():
        if name not in cls.__dict__:
            setattr(made, name, method)
    return made


def _repr(self) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _names(type(self))[0])
    return f"{type(self).__qualname__}({shown})"


def _eq(self, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self) -> int:
    return hash(tuple(getattr(self, name) for name in _names(type(self))[2]))


def _compared(record: object) -> tuple:
    return tuple(getattr(record, name) for name in _names(type(record))[1])


def compared_fields(cls: type) -> tuple[str, ...]:
    """The names of the fields ``==`` compares on a ``@value`` (or any dataclass) ``cls``, read once."""
    return _names(cls)[1]


#: class → the names of its fields shown, compared and hashed (``fields()`` filters them anew at each call: a
#: daemon compares requests and plans thousands of times a minute).
_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}


def _names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    found = _NAMES.get(cls)
    if found is None:
        every = fields(cls)
        found = _NAMES[cls] = (tuple(f.name for f in every if f.repr), tuple(f.name for f in every if f.compare),
                               tuple(f.name for f in every if (f.compare if f.hash is None else f.hash)))
    return found


_SHARED = {"__repr__": _repr, "__eq__": _eq, "__hash__": _hash}
