"""Sizes and ages as people read them, the same in the CLI's tables, ``status`` and the status page.

Two of each grew in separate rooms (a snapshot's size, a writable layer's size; a snapshot's age, a
page cell's age); one spelling each keeps them from drifting apart.
"""
from __future__ import annotations

__all__ = ["age_text", "size_text"]


def size_text(size: int | None) -> str:
    """``1536`` as ``1.5 KiB`` (binary units, as ``du -h``), ``512 B`` below a KiB; "?" when unknown."""
    if size is None:
        return "?"
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(size)} B" if unit == "B" else f"{value:.1f} {unit}"


def age_text(seconds: float) -> str:
    """How long ago, from seconds: ``40 s ago``, ``3 min ago``, ``5 h ago``, ``2 d ago`` (never negative)."""
    whole = max(0, round(seconds))
    if whole < 120:
        return f"{whole} s ago"
    if whole < 7200:
        return f"{whole // 60} min ago"
    if whole < 172800:
        return f"{whole // 3600} h ago"
    return f"{whole // 86400} d ago"
