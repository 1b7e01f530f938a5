"""``reconcile images outdated|update|release``: image automation by hand, for people who open pull requests.

``outdated`` shows each image with an update policy as ``npm outdated``
does: the version the spec names, the newest its policy allows, the newest
published, and why the newer ones were not taken. ``update`` writes the
allowed versions into the spec files of the work tree, editing only the
text of each reference (nothing is committed). ``release`` lets a version
the daemon quarantined be proposed again. The asking is
``reconciler.imageupdates``'s, the editing ``reconciler.spec.textedit``'s.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from ..errors import ReconcilerError
from ..imageupdates import ImageCheck, check_images, describe_policy
from ..spec.textedit import replace_value
from .local import desired_of, reconciler_of
from .output import out

__all__ = ["cmd_images"]


def cmd_images(args: argparse.Namespace) -> int:
    """``images outdated|update|release``."""
    if args.images_command == "release":
        return _release(args)
    reconciler = reconciler_of(args)
    desired = desired_of(args, reconciler)
    only = set(args.image) or None
    unknown = sorted((only or set()) - set(desired.images))
    if unknown:
        raise ReconcilerError(f"no image {', '.join(unknown)} in stack {desired.stack} "
                              f"(its images: {', '.join(sorted(desired.images)) or 'none'})")
    quarantined = _quarantined(args, desired.stack)
    checks = check_images(desired, reconciler.drivers(desired.stack), quarantined=quarantined, only=only)
    if args.images_command == "update":
        written = _write(desired, [c for c in checks if c.outdated])
        out(json.dumps([_json(c) for c in checks if c.outdated], indent=2) if args.output == "json"
            else _updated_text(checks, written))
    else:
        out(json.dumps([_json(c) for c in checks], indent=2) if args.output == "json" else _outdated_text(checks))
    if any(c.error for c in checks):
        return 1
    return 2 if getattr(args, "detailed_exitcode", False) and any(c.outdated for c in checks) else 0


def _quarantined(args: argparse.Namespace, stack: str) -> dict[str, dict]:
    from ..state import StateStore, default_state_dir

    directory = Path(args.state_dir) if args.state_dir else default_state_dir()
    if not directory.is_dir():  # no record here: nothing is quarantined, and a read makes none
        return {}
    with StateStore.open(directory) as store:
        return store.quarantined(stack)  # image key → its quarantined versions (each with when and why)


def _write(desired, checks: list[ImageCheck]) -> dict[str, list[str]]:
    """Each outdated reference replaced in its file, every file's edits from its end back; file → image keys."""
    edits: dict[Path, list[tuple[int, int, ImageCheck]]] = defaultdict(list)
    for check in checks:
        at = desired.images[check.key].ref_at
        if at is None:
            raise ReconcilerError(f"image {check.key}: its reference is not written in a file (a build's default)")
        edits[Path(at[0])].append((at[1], at[2], check))
    texts = {}
    for file, wanted in edits.items():  # every file edited in memory first: a refusal writes nothing
        with open(file, encoding="utf-8", newline="") as handle:
            text = handle.read()
        for line, col, check in sorted(wanted, key=lambda e: (e[0], e[1]), reverse=True):
            text = replace_value(text, line, col, check.ref, check.new_ref, filename=str(file))
        texts[file] = text
    for file, text in texts.items():
        with open(file, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return {str(file): [check.key for _, _, check in wanted] for file, wanted in edits.items()}


def _release(args: argparse.Namespace) -> int:
    from ..state import StateStore

    with StateStore.open(Path(args.state_dir) if args.state_dir else None) as store:
        released = store.release_quarantine(args.stack, args.image, args.version)
        known = store.quarantined(args.stack).get(args.image, {})
    if not released:
        others = f" (quarantined: {', '.join(sorted(known))})" if known else ""
        raise ReconcilerError(f"version {args.version} of image {args.image} is not quarantined for stack "
                              f"{args.stack}{others}")
    out(f"image {args.image} of stack {args.stack}: version {args.version} released; its policy may propose it again")
    _tell_released(args)
    return 0


def _tell_released(args: argparse.Namespace) -> None:
    """Plugins hear of it (``reconciler_image_event``); one that fails is named, and the release stands."""
    from ..model import ImageEvent, ImageEventKind
    from ..plugins import PluginError, call_hook, make_plugin_manager

    event = ImageEvent(ImageEventKind.RELEASED, args.stack, args.image, before="", version=args.version)
    try:
        call_hook(make_plugin_manager(strict=args.strict_plugins), "reconciler_image_event", event=event)
    except PluginError as exc:
        raise ReconcilerError(f"released, but {exc}") from None


def _json(check: ImageCheck) -> dict:
    verdict = check.verdict
    return {
        "stack": check.stack, "image": check.key, "ref": check.ref,
        "current": verdict.current if verdict else None, "wanted": verdict.chosen if verdict else None,
        "latest": verdict.newest if verdict else None, "new_ref": check.new_ref or None,
        "digest": check.digest or None, "policy": describe_policy(check.policy),
        "skipped": [{"tag": tag, "reason": why.value} for tag, why in (verdict.skipped if verdict else ())],
        "quarantined": list(check.quarantined), "error": check.error or None,
    }


def _outdated_text(checks: list[ImageCheck]) -> str:
    if not checks:
        return "No image has an update policy (images.<key>.update)."
    rows = [["IMAGE", "CURRENT", "WANTED", "LATEST", "POLICY", "NOT TAKEN"]]
    for check in checks:
        verdict = check.verdict
        if verdict is None:
            rows.append([check.key, check.ref.rpartition(":")[2] or "-", "?", "?", describe_policy(check.policy),
                         check.error])
            continue
        why = ", ".join(f"{tag} ({reason.value})" for tag, reason in verdict.skipped)
        rows.append([check.key, verdict.current or "-", verdict.chosen or "-", verdict.newest or "-",
                     describe_policy(check.policy), why or "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def _updated_text(checks: list[ImageCheck], written: dict[str, list[str]]) -> str:
    lines = [f"~ {c.key}: {c.ref} → {c.new_ref}" for c in checks if c.outdated]
    lines += [f"! {c.key}: {c.error}" for c in checks if c.error]
    if not written:
        return "\n".join(lines + ["Every image is at the newest version its policy allows."])
    return "\n".join(lines + [f"wrote {file}" for file in sorted(written)])
