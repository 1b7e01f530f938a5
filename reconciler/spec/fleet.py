"""A stack's fleet: ``targets:`` (the engines it may run on) and ``placement:`` (which of them).

Why a module of its own: targets are not objects. No hash, plan or driver
reads them; they only say which engines the same desired state is applied to,
so their checks and their model stay apart from the object sections'.

Checks the schema cannot express, each located at its field: the certificate
files of ``tls:`` exist (they are credentials on this machine, usually
outside the repository, so the repository rule for paths does not apply to
them); ``placement`` needs targets, its labels must select at least one, and
its ``count`` can be met.

A daemon may name targets for every stack it runs (``targets:`` in
daemon.yaml): a stack naming none of its own runs on those, and its
``placement:`` chooses among them.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import Fleet, Placement, Target, TLSFiles

if TYPE_CHECKING:
    from .loader import RawStack

__all__ = ["build_fleet", "fleet_findings", "make_target", "matches", "tls_findings"]

_Finding = tuple[tuple, str]
TLS_FILES = ("ca", "cert", "key")


def matches(labels: dict | Any, selector: dict | Any) -> bool:
    """True when ``labels`` carry every key of ``selector`` with its value."""
    return all(labels.get(key) == value for key, value in selector.items())


def fleet_findings(raw: RawStack, failed: set[tuple], defaults: tuple[Target, ...] = ()) -> list[_Finding]:
    """Problems with ``targets:`` and ``placement:`` the schema let through (``failed``: paths it refused).

    ``defaults``: the daemon's targets, which a stack naming none of its own runs on.
    """
    out: list[_Finding] = []
    data = raw.data
    targets = data.get("targets")
    if not targets and defaults:
        targets = {t.name: {"engine": t.engine, "labels": dict(t.labels)} for t in defaults}
    placement = data.get("placement")
    if isinstance(targets, dict):
        for name, target in targets.items():
            tls = target.get("tls") if isinstance(target, dict) else None
            path = ("targets", name, "tls")
            if isinstance(tls, dict) and not _under(path, failed):
                out += tls_findings(path, target, _spec_dir(raw, path))
    if placement is None or _under(("placement",), failed):
        return out
    if not isinstance(targets, dict) or _under(("targets",), failed):
        if not targets:
            out.append((("placement",), "placement chooses among targets, and the stack names none (targets:)"))
        return out
    selector = placement.get("labels") or {}
    chosen = [name for name, target in targets.items() if matches(target.get("labels") or {}, selector)]
    if not chosen:
        wanted = ", ".join(f"{k}={v}" for k, v in selector.items())
        out.append((("placement", "labels"), f"no target carries {wanted}"))
    elif placement.get("count") and placement["count"] > len(chosen):
        out.append((("placement", "count"), f"{placement['count']} targets wanted, and only {len(chosen)} match "
                                            f"({', '.join(chosen)})"))
    return out


def _under(path: tuple, failed: set[tuple]) -> bool:
    return any(p[: len(path)] == path or path[: len(p)] == p for p in failed)


def tls_findings(path: tuple, target: dict, spec_dir: Path) -> list[_Finding]:
    """What is wrong with a target's ``tls:`` (at ``path``): not a tcp:// engine, or a certificate file
    missing (relative to ``spec_dir``). Checked for a stack's targets and for a daemon's alike."""
    tls = target.get("tls") or {}
    found = []
    if tls and not str(target.get("engine", "")).startswith("tcp://"):
        found.append((path, "client certificates are for tcp:// engines only"))
    for key in TLS_FILES:
        value = tls.get(key)
        if isinstance(value, str) and not _resolve(value, spec_dir).is_file():
            found.append(((*path, key), f"no such file: {_resolve(value, spec_dir)}"))
    return found


def make_target(name: str, target: dict, spec_dir: Path) -> Target:
    """One validated entry of ``targets:`` (a stack's or a daemon's), its TLS paths resolved from ``spec_dir``."""
    tls = target.get("tls")
    return Target(name=name, engine=target["engine"],
                  tls=TLSFiles(*(str(_resolve(tls[key], spec_dir)) for key in TLS_FILES)) if tls else None,
                  labels=dict(target.get("labels") or {}))


def _spec_dir(raw: RawStack, path: tuple) -> Path:
    return raw.origin(path).resolve().parent


def _resolve(value: str, spec_dir: Path) -> Path:
    return (spec_dir / Path(value).expanduser()).resolve()


def build_fleet(raw: RawStack, defaults: tuple[Target, ...] = ()) -> Fleet | None:
    """The validated ``targets:`` and ``placement:`` as a ``Fleet``; None when neither the spec nor ``defaults``
    (the daemon's targets) names any."""
    data = raw.data
    targets = data.get("targets")
    placement = data.get("placement") or {}
    if not targets:
        if not defaults:
            return None
        return Fleet(tuple(defaults), Placement(labels=dict(placement.get("labels") or {}),
                                                count=placement.get("count"), spread=placement.get("spread")))
    built = [make_target(name, target, _spec_dir(raw, ("targets", name))) for name, target in sorted(targets.items())]
    return Fleet(tuple(built), Placement(labels=dict(placement.get("labels") or {}), count=placement.get("count"),
                                         spread=placement.get("spread")))
