"""An image's ``update:`` in the spec: its checks, and where the text of its ``ref`` stands.

The policy's own rules (one of semver, pattern or digest; a range and a regex
that parse; a group that exists) are ``reconciler.imagepolicy``'s; this module
reports them at the field's line, and adds what only the spec can tell: a
policy moves the tag of a pulled image, so the image needs a ``ref`` with a tag,
written out in the file as it is, because write-back edits that text in place
(DESIGN.md: "Write-back edits text, not trees"). ``ref_position`` says where
that text starts, for ``ImageSpec.ref_at``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .loader import RawStack

__all__ = ["ref_position", "update_findings"]

_Finding = tuple[tuple, str]  # (path, message)
_QUOTES = ("'", '"')


def update_findings(raw: RawStack, failed: set[tuple]) -> list[_Finding]:
    """Every problem with the ``update:`` of the images the schema accepted, at its field."""
    images = raw.data.get("images")
    if not isinstance(images, dict) or not any(isinstance(i, dict) and "update" in i for i in images.values()):
        return []  # the policy rules are not even imported for a spec without one
    from ..imagepolicy import PolicyError, parse_policy

    out: list[_Finding] = []
    lines: dict[str, list[str] | None] = {}
    for key, image in (images.items() if isinstance(images, dict) else ()):
        base = ("images", key, "update")
        if not isinstance(image, dict) or "update" not in image or any(p[:2] == base[:2] for p in failed):
            continue
        try:
            policy = parse_policy(image["update"])
        except PolicyError as exc:
            out.append(((*base, exc.field) if exc.field else base, exc.reason))
            continue
        out += _image_findings(raw, key, image, policy.kind.value, lines)
    return out


def _image_findings(raw: RawStack, key: str, image: dict, kind: str,
                    lines: dict[str, list[str] | None]) -> list[_Finding]:
    path = ("images", key, "update")
    if image.get("build") or image.get("archive"):
        source = "build" if image.get("build") else "archive"
        return [(path, f"update moves the tag of a pulled image; this one comes from {source}: remove one of the two")]
    from ..imagepolicy import current_tag

    ref = str(image.get("ref") or "")
    if not current_tag(ref):
        return [(("images", key, "ref"), f"update needs a ref with a tag to move (name:tag, or name:tag@sha256:… "
                                          f"with pin: digest); {ref!r} has none")]
    if ref_position(raw, ("images", key, "ref"), ref, lines) is None:
        return [(("images", key, "ref"), "update needs ref written out as it is on one line (not made from "
                                          "${VAR}): the automation edits that text in place")]
    return []


def ref_position(raw: RawStack, path: tuple, ref: str,
                 lines: dict[str, list[str] | None] | None = None) -> tuple[str, int, int] | None:
    """(absolute file, line, col) where the scalar holding ``ref`` (the value at ``path``) starts, 1-based.

    The loader's mark: at an opening quote, if any, as ``textedit.replace_value`` takes it. None when the
    file does not hold ``ref`` there as it is (made from ``${VAR}``, escaped, split over lines) or its
    position is unknown. ``lines`` caches each file's lines across calls.
    """
    mark = raw.marks.get(tuple(path))
    if mark is None or not ref:
        return None
    file = str(Path(mark.file).resolve())
    cache = {} if lines is None else lines
    if file not in cache:
        try:
            cache[file] = Path(file).read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            cache[file] = None
    text = cache[file]
    if text is None or not 0 < mark.line <= len(text):
        return None
    line, col = text[mark.line - 1], mark.col
    if line[col - 1:col] in _QUOTES:
        col += 1  # the text itself starts past the quote
    if line[col - 1:col - 1 + len(ref)] != ref:
        return None
    return file, mark.line, mark.col
