"""Explaining a changed container: old and new display values of each field that differs.

The planner decides *that* a container changes by comparing hashes; this says
*which fields* and how, for people (``FieldChange``), from the spec and the
values the runtime read (``LiveObject.details``). Secrets are shown only as
``REDACTED``, configs and secrets by a short content hash at most. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Iterable, Mapping

from .hashing import canonical_json
from .model import ContainerSpec, LiveObject
from .plan import REDACTED, FieldChange

__all__ = ["display", "explain_field", "short_id"]


def short_id(image_id: str) -> str:
    """An image id or digest cut to what a person compares (``sha256:`` and 12 digits)."""
    return image_id[:19] + "…" if len(image_id) > 19 else image_id or "(unknown)"


def explain_field(path: str, spec: ContainerSpec, current: LiveObject, secrets: Iterable[str]) -> FieldChange:
    """Old and new display values for one changed field, from the spec and the live details."""
    section, _, sub = path.partition(".")
    if section == "env" and sub in secrets:
        return FieldChange(path, REDACTED if sub in current.details.get("env", {}) else None,
                           REDACTED if sub in spec.env_dict() else None)
    if section in ("configs", "secrets"):
        return _explain_file(path, spec, current)
    new = display(_desired_value(spec, section, sub))
    old_source = current.details.get(section)
    if old_source is None:
        return FieldChange(path, "(was different)", new) if new is not None else FieldChange(path)
    old = display(old_source.get(sub) if sub and isinstance(old_source, Mapping) else (old_source if not sub else None))
    if old == new:  # the same networks with other aliases, say: the names alone cannot show it
        return FieldChange(path)
    return FieldChange(path, old, new)


def _explain_file(path: str, spec: ContainerSpec, current: LiveObject) -> FieldChange:
    """A config by its short content hash, a secret only as ``(secret)``: never the content.

    Whether the live container mounted it comes from its field hashes (a
    label); the old hash of a config from the driver's ``details`` when it
    could tell (``configs``: name → content hash).
    """
    section, _, name = path.partition(".")
    was = path in current.field_hashes
    new_hash = spec.file_hashes(section[:-1]).get(name)
    if section == "secrets":
        return FieldChange(path, REDACTED if was else None, REDACTED if new_hash else None)
    old_hash = str(current.details.get("configs", {}).get(name) or "")
    old = _short_content(old_hash) if old_hash else ("(was different)" if was else None)
    new = _short_content(new_hash) if new_hash else None
    if old == new:  # the same content at another target, owner or mode
        return FieldChange(path)
    return FieldChange(path, old, new)


def _short_content(digest: str) -> str:
    return digest[:12]


def _desired_value(spec: ContainerSpec, section: str, sub: str) -> object:
    if section == "env":
        return spec.env_dict().get(sub)
    if section == "labels":
        return dict(spec.labels).get(sub)
    if section == "image":
        return spec.image_ref
    if section == "networks":  # by engine name, as the live side reports them
        return tuple(name for name, _ in spec.networks)
    value = getattr(spec, section, None)
    return value


def display(value: object) -> str | None:
    """A field's value as a plan shows it: strings quoted, lists of names bracketed, records as JSON."""
    if value is None:
        return None
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if is_dataclass(value):
        return canonical_json({k: v for k, v in asdict(value).items() if v not in (None, 0, "", ())})
    if isinstance(value, tuple):
        return canonical_json([asdict(v) if is_dataclass(v) else v for v in value])
    return str(value)
