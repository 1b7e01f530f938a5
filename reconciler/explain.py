"""Explaining a changed container: old and new display values of each field that differs, and how they read.

The planner decides *that* a container changes by comparing hashes; this says
*which fields* and how, for people (``FieldChange``), from the spec and the
values the runtime read (``LiveObject.details``). Secrets are shown only as
``REDACTED``, configs and secrets by a short content hash at most. Pure: no I/O.

How a value reads lives here once (``render_field``), so ``plan``, ``status
--detailed`` and the daemon's stack JSON (``"diff"``) show the same lines and
never a raw JSON dump: ``mounts: + /srv/data:/data (ro)``,
``ports: 127.0.0.1:8080→80/tcp``. A list-valued field (mounts, ports,
networks, capabilities...) shows the items added and removed.
"""
from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Iterable, Mapping

from .hashing import canonical_json
from .model import ContainerSpec, EnvVar, HealthCheck, LiveObject, Mount, Port
from .plan import REDACTED, FieldChange

__all__ = ["LIST_FIELDS", "changed_fields", "display", "explain_field", "item_text", "list_change", "render_change", "render_field", "short_id"]

#: A container's fields whose value is a set of items: a change shows the items added and removed.
LIST_FIELDS = frozenset({"mounts", "ports", "networks", "expose", "cap_add", "cap_drop", "extra_hosts", "dns",
                         "dns_search", "dns_opt", "devices", "security_opt", "ulimits"})


def item_text(value: object) -> str:
    """One value (or one item of a list) as a plan shows it, without quotes."""
    if isinstance(value, Mount):
        return _mount(value)
    if isinstance(value, Port):
        return _port(value)
    if isinstance(value, HealthCheck):
        return _healthcheck(value)
    if isinstance(value, EnvVar):
        return f"{value.name}={REDACTED if value.secret else value.value}"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return f"{value[0]}={value[1]}"  # a label, a sysctl, a log option
    if isinstance(value, (tuple, list)):
        return " ".join(item_text(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return canonical_json({k: v for k, v in asdict(value).items() if v not in (None, 0, "", ())})
    return str(value)


def display(value: object) -> str | None:
    """A field's value as a plan shows it: strings quoted, lists of names bracketed, records readable."""
    if value is None:
        return None
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, tuple):
        return "[" + ", ".join(item_text(v) for v in value) + "]"
    return item_text(value)


def list_change(path: str, old: Iterable[object] | None, new: Iterable[object] | None) -> FieldChange:
    """A list-valued field's change: both sides whole (``display``), and the items added and removed."""
    old, new = (None if v is None else tuple(v) for v in (old, new))
    before = [item_text(v) for v in old or ()]
    after = [item_text(v) for v in new or ()]
    return FieldChange(path, display(old), display(new), added=tuple(v for v in after if v not in before),
                       removed=tuple(v for v in before if v not in after))


def render_field(change: FieldChange) -> list[str]:
    """The lines showing one changed field: ``+``/``-`` per item of a list, else ``old → new``."""
    if change.added or change.removed:
        return [*(f"{change.path}: + {item}" for item in change.added),
                *(f"{change.path}: - {item}" for item in change.removed)]
    if change.old is None and change.new is None:
        return [f"{change.path}: changed"]
    if change.old is None:
        return [f"{change.path}: + {change.new}"]
    if change.new is None:
        return [f"{change.path}: - {change.old}"]
    return [f"{change.path}: {change.old} → {change.new}"]


def render_change(fields: Iterable[FieldChange]) -> list[str]:
    """Every line of a change's fields, in order (the daemon's ``"diff"``)."""
    return [line for change in fields for line in render_field(change)]


def _mount(mount: Mount) -> str:
    if mount.type == "tmpfs":
        text = f"tmpfs:{mount.target}" + (f" (size {mount.tmpfs_size})" if mount.tmpfs_size else "")
    else:
        text = f"{mount.source or '(anonymous)'}:{mount.target}"
    return text + (" (ro)" if mount.read_only else "")


def _port(port: Port) -> str:
    inside = f"{port.target}/{port.protocol}"
    if port.published is None:
        return inside
    host = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    return f"{host + ':' if host else ''}{port.published}→{inside}"


def _healthcheck(check: HealthCheck) -> str:
    if check.test[:1] == ("NONE",):
        return "none"
    command = " ".join(check.test[1:]) if check.test[:1] in (("CMD",), ("CMD-SHELL",)) else " ".join(check.test)
    timing = [f"{label} {ns / 1e9:g}s" for label, ns in (("every", check.interval_ns), ("timeout", check.timeout_ns),
                                                         ("start", check.start_period_ns)) if ns]
    timing += [f"{check.retries} retries"] if check.retries else []
    return command + (f" ({', '.join(timing)})" if timing else "")



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
    wanted = _desired_value(spec, section, sub)
    new = display(wanted)
    old_source = current.details.get(section)
    if old_source is None:
        return FieldChange(path, "(was different)", new) if new is not None else FieldChange(path)
    was = old_source.get(sub) if sub and isinstance(old_source, Mapping) else (old_source if not sub else None)
    old = display(was)
    if old == new:  # the same networks with other aliases, say: the names alone cannot show it
        return FieldChange(path)
    if section in LIST_FIELDS and not sub:
        return list_change(path, was, wanted)
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


def changed_fields(new: Mapping[str, str], old: Mapping[str, str]) -> list[str]:
    """The field paths whose short hashes differ between two ``field_hashes`` maps (either side may lack one)."""
    return sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
