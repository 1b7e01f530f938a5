"""A build's steps, the label that keeps their digests, and where a rebuild's layer cache breaks.

``build: inputs changed`` tells a user that an image will be rebuilt, not what
the rebuild costs. The engine's layer cache reuses every step up to the first
one whose inputs differ; naming that step (``cache breaks at step 4/7 (COPY
app/ /app): app/main.py changed``) says both why and how much.

The steps and the digest of each one's inputs are computed with the spec
(``reconciler.spec.dockerfile``); the built image keeps the digests in one
label (``labels.BUILD_STEPS``, at most ``LABEL_LIMIT`` bytes: an image's labels
ride along on every list call), and the next plan compares (``cache_break``).
Pure: no I/O.

The label's text: one entry per step, separated by spaces; an entry is the
step's digest (6 hex), then, for a COPY/ADD of a few files, ``:`` and a
4-hex digest per file (its path and content), separated by ``.``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..values import value

__all__ = ["BuildStep", "FILES_LIMIT", "LABEL_LIMIT", "cache_break", "decode_steps", "encode_steps"]

#: The most bytes the steps label may take (an image's labels ride along on every list call).
LABEL_LIMIT = 400
#: A COPY/ADD of more files than this keeps no per-file digests in the label.
FILES_LIMIT = 12


@value
class BuildStep:
    """One instruction of a Dockerfile with the digest of what it reads."""

    #: 1-based, counted as the engine counts its ``Step N/M`` lines (every stage up to the target).
    number: int
    #: How many steps the build has (the ``M`` of ``Step N/M``).
    total: int
    #: The instruction as written, continuations joined (``COPY app/ /app``).
    text: str
    #: The stage's name (``AS build``) or its index, for a multi-stage Dockerfile; "" otherwise.
    stage: str
    #: Short digest of the step's inputs: its text, the files it copies, the build arg it declares.
    digest: str
    #: For a COPY/ADD from the context: (path, short digest) of each file it copies.
    files: tuple[tuple[str, str], ...] = ()
    #: For an ARG: the build arg's name.
    arg: str = ""


def encode_steps(steps: tuple[BuildStep, ...] | list[BuildStep], limit: int = LABEL_LIMIT) -> str:
    """The label text for ``steps``, at most ``limit`` bytes.

    Per-file digests go first when the text is too long (the largest lists
    first); then trailing steps (a plan past the last recorded step says
    "inputs changed", as without the label).
    """
    files = {s.number: [d for _, d in s.files] if 0 < len(s.files) <= FILES_LIMIT else [] for s in steps}

    def text() -> str:
        return " ".join(s.digest + (":" + ".".join(files[s.number]) if files[s.number] else "") for s in steps)

    out = text()
    for number in sorted(files, key=lambda n: -len(files[n])):
        if len(out) <= limit:
            break
        files[number] = []
        out = text()
    return out[:limit].rsplit(" ", 1)[0] if len(out) > limit else out


#: Files a reason names before it says "and N more".
NAMED_FILES = 3


@dataclass(frozen=True)
class _Recorded:
    digest: str
    files: frozenset[str] | None  # None: the label kept no per-file digests for the step


def decode_steps(label: str) -> list[_Recorded]:
    """The recorded steps of a label written by ``encode_steps`` (empty for no label)."""
    out = []
    for entry in label.split():
        digest, sep, files = entry.partition(":")
        out.append(_Recorded(digest, frozenset(files.split(".")) if sep else None))
    return out


def cache_break(steps: tuple[BuildStep, ...], label: str) -> str | None:
    """``cache breaks at step N/M (INSTRUCTION): why``, comparing ``steps`` with the built image's label.

    None when the label is missing or says nothing about the difference (the
    plan then says "inputs changed", as for an image built before the label).
    """
    recorded = decode_steps(label)
    if not recorded or not steps:
        return None
    for step, old in zip(steps, recorded):
        if step.digest != old.digest:
            return f"cache breaks at {_where(step)}: {_why(step, old)}"
    # Past the label's last step nothing is known (a long label loses its trailing steps).
    return None


def _where(step: BuildStep) -> str:
    text = step.text if len(step.text) <= 60 else step.text[:57] + "..."
    stage = f" in stage {step.stage}" if step.stage else ""
    return f"step {step.number}/{step.total} ({text}{stage})"


def _why(step: BuildStep, old: _Recorded) -> str:
    keyword = step.text.split(None, 1)[0].upper() if step.text else ""
    if keyword == "FROM":
        return "the base image changed"
    if keyword == "ARG" and step.arg:
        return f"build arg {step.arg} changed"
    if keyword in ("COPY", "ADD") and step.files and old.files is not None:
        changed = [path for path, digest in step.files if digest not in old.files]
        gone = max(0, len(old.files) - len(step.files))  # changed and added files look alike: count only
        if changed:
            shown = ", ".join(changed[:NAMED_FILES])
            more = f" and {len(changed) - NAMED_FILES} more" if len(changed) > NAMED_FILES else ""
            return f"{shown}{more} changed" + (f", {gone} removed" if gone else "")
        if gone:
            return f"{gone} file{'s' if gone > 1 else ''} removed"
        return "the instruction changed"
    if keyword in ("COPY", "ADD") and step.files:
        return "copied files changed"
    return "the instruction changed"
