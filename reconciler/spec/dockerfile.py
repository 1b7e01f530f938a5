"""A small, honest Dockerfile reader: the steps of a build and the digest of each step's inputs.

The build hash (``buildctx.build_hash``) says *that* an image must be rebuilt;
these per-step digests (``buildsteps.BuildStep``) let the plan say from which
step the engine's layer cache breaks, and why. The reader knows what the
digests need and no more: instructions and their continuation lines, comments
and parser directives (``# syntax=…``, ignored), ``FROM … AS name`` stages,
``ARG`` values (a build arg, else the default written), and the context files
a ``COPY``/``ADD`` copies (through ``buildctx.context_files``, so
``.dockerignore`` is honoured exactly as by the build hash). Anything it does
not understand is hashed as text: a change to it still breaks the cache there.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Mapping, Sequence

from ..model import BuildStep
from .buildctx import context_files, file_digest

__all__ = ["build_steps", "parse_dockerfile"]

_ESCAPE = re.compile(r"^#\s*escape\s*=\s*(\S)", re.I)
_FLAG = re.compile(r"^--([a-z-]+)(?:=(.*))?$")


def parse_dockerfile(text: str) -> list[str]:
    """The Dockerfile's instructions, in order, each with its continuation lines joined."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines:  # parser directives: only at the very top, before any other line
        found = _ESCAPE.match(line.strip())
        if not line.strip().startswith("#"):
            break
        if found:
            escape = found.group(1)
    out, current = [], ""
    for raw in lines:
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction is dropped, as the engine does
        if line.endswith(escape):
            current += line[:-1].rstrip() + " "
            continue
        current += line
        if current.strip():
            out.append(" ".join(current.split()))
        current = ""
    if current.strip():
        out.append(" ".join(current.split()))
    return out


def build_steps(context: Path, dockerfile: str, args: Sequence[tuple[str, str]], target: str | None,
                secret: frozenset[str] = frozenset()) -> tuple[BuildStep, ...]:
    """Every step of the build with the digest of its inputs; () when the Dockerfile cannot be read.

    The values of ``secret`` build args are left out: a 6-hex digest of a short
    secret in a label anyone can read would narrow it down. A changed secret
    still rebuilds (the build hash has it); the plan then says "inputs changed".
    """
    path = context / dockerfile
    try:
        instructions = parse_dockerfile(path.read_text())
    except (OSError, UnicodeDecodeError):
        return ()
    instructions = _up_to_target(instructions, target)
    files = {p.relative_to(context).as_posix(): p for p in context_files(context)}
    values = {k: v for k, v in args if k not in secret}
    stages = sum(1 for i in instructions if _keyword(i) == "FROM")
    stage, stage_index, stage_digest = "", -1, {}
    running = hashlib.sha256()
    steps = []
    for number, text in enumerate(instructions, 1):
        keyword = _keyword(text)
        if keyword == "FROM":
            running = hashlib.sha256()  # a stage starts from its base, not from the stage before
            stage_index += 1
            stage = _stage_name(text) or str(stage_index)
        digest, copied, arg = _inputs(text, keyword, context, files, values, stage_digest)
        running.update(digest.encode())
        if stage:
            stage_digest[stage] = stage_digest[str(stage_index)] = running.hexdigest()
        steps.append(BuildStep(number=number, total=len(instructions), text=text,
                               stage=stage if stages > 1 else "", digest=digest[:6], files=copied, arg=arg))
    return tuple(steps)


def _keyword(text: str) -> str:
    return text.split(None, 1)[0].upper()


def _stage_name(text: str) -> str:
    """The ``AS name`` of a FROM instruction ("" without one); ``--platform=…`` flags skipped."""
    words = [w for w in text.split()[1:] if not w.startswith("--")]
    return words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""


def _base(text: str) -> str:
    """The image (or stage) a FROM starts from."""
    words = [w for w in text.split()[1:] if not w.startswith("--")]
    return words[0] if words else ""


def _up_to_target(instructions: list[str], target: str | None) -> list[str]:
    if not target:
        return instructions
    for index, text in enumerate(instructions):
        if _keyword(text) == "FROM" and _stage_name(text) == target:
            end = next((j for j in range(index + 1, len(instructions)) if _keyword(instructions[j]) == "FROM"),
                       len(instructions))
            return instructions[:end]
    return instructions


def _inputs(text: str, keyword: str, context: Path, files: Mapping[str, Path], values: Mapping[str, str],
            stages: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...], str]:
    """(digest, copied files, arg name) of one instruction."""
    digest = hashlib.sha256(text.encode() + b"\0")
    copied: tuple[tuple[str, str], ...] = ()
    arg = ""
    if keyword == "FROM" and _base(text) in stages:
        digest.update(stages[_base(text)].encode())  # a stage built on another moves with it
    elif keyword == "ARG":
        name, _, default = text.split(None, 1)[1].partition("=") if len(text.split()) > 1 else ("", "", "")
        arg = name.strip()
        digest.update(f"{values.get(arg, default)}\0".encode())
    elif keyword in ("COPY", "ADD"):
        flags, sources = _copy_args(text)
        if "from" in flags:
            digest.update(stages.get(flags["from"], flags["from"]).encode())
        else:
            copied = tuple((rel, _file_digest(rel, files[rel])) for rel in _matching(sources, files))
            for rel, short in copied:
                digest.update(f"{rel}\0{short}\0".encode())
    return digest.hexdigest(), copied, arg


def _file_digest(rel: str, path: Path) -> str:
    """4 hex of the file's path and content: enough to tell which of a step's few files changed."""
    return hashlib.sha256(rel.encode() + b"\0" + file_digest(path)).hexdigest()[:4]


def _copy_args(text: str) -> tuple[dict[str, str], list[str]]:
    """The ``--flag=value`` options and the sources of a COPY/ADD (its destination dropped)."""
    rest = text.split(None, 1)[1] if len(text.split()) > 1 else ""
    flags = {}
    words = rest.split()
    while words and _FLAG.match(words[0]):
        found = _FLAG.match(words.pop(0))
        flags[found.group(1)] = found.group(2) or ""
    rest = " ".join(words)
    try:
        parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    except ValueError:
        parts = rest.split()
    return flags, [str(p) for p in parts[:-1]]


def _matching(sources: list[str], files: Mapping[str, Path]) -> list[str]:
    """The context files the sources name: a file, a folder (all below it) or a wildcard."""
    out = []
    for rel in files:
        for source in sources:
            if "://" in source:
                continue  # a URL: its content is the engine's to fetch; the text is hashed
            pattern = os.path.normpath(source.lstrip("/"))
            if pattern == "." or rel == pattern or rel.startswith(pattern.rstrip("/") + "/") or any(
                    fnmatch.fnmatchcase("/".join(rel.split("/")[:i]), pattern) for i in range(1, rel.count("/") + 2)):
                out.append(rel)
                break
    return out
