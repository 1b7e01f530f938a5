"""The four object kinds the core knows, each with its spec section and its driver role.

A kind, the section of a spec that lists its objects, and the role of the
drivers that handle them are one vocabulary: ``Kind.IMAGE`` is listed under
``images:`` and handled by a *registry* driver. It is written here once, on
the members themselves, and every other module asks ``Kind`` instead of
keeping a table of its own (a test refuses such a table outside this package).
"""
from __future__ import annotations

import enum

__all__ = ["Kind"]


class Kind(str, enum.Enum):
    """The four object kinds the core knows, in the order they are created.

    A ``str`` enum: ``Kind.IMAGE == "image"``, as labels and saved plans spell it.
    """

    #: The spec section that lists objects of this kind (``images``).
    section: str
    #: What a driver of this kind is called (``registry``: ``add_registry_driver``).
    role: str

    IMAGE = ("image", "images", "registry")
    NETWORK = ("network", "networks", "network")
    VOLUME = ("volume", "volumes", "storage")
    CONTAINER = ("container", "containers", "runtime")

    def __new__(cls, value: str, section: str, role: str) -> Kind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.section = section
        member.role = role
        return member

    @classmethod
    def from_section(cls, section: str) -> Kind:
        """The kind a spec section lists (``"volumes"`` → ``Kind.VOLUME``); ``ValueError`` for any other name."""
        for kind in cls:
            if kind.section == section:
                return kind
        raise ValueError(f"{section!r} is not the section of a kind")
