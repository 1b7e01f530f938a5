"""Compose files in: a Compose project read as Compose reads it, then translated to a stack spec.

``docker compose`` users already have a ``compose.yaml``; this package lets
``load_desired`` take it unchanged. It is recognised from its content (a
top-level ``services:`` and no ``containers:``), read by Compose's rules
(``project``: ``.env``/``--env-file``, interpolation, ``include`` and
``extends`` followed by ``assemble``, ``-f`` overrides merged by ``merge``
with ``!reset``/``!override``, ``--profile``, the project name), and translated (``translate``)
into the data of a stack spec. From there the normal path runs: schema and
semantic validation, then the desired model. Positions are carried through,
so every error names the Compose file's line, and the Compose key rather than
the stack field it became. ``convert`` prints the translated spec as YAML.

Layers, lowest first: ``merge``, ``keys``, ``rebase``, ``files``, ``extends``, ``assemble``, ``project``,
``writer``, ``services``, ``translate``, ``convert``.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from ...errors import SpecError
from ..loader import RawStack
from ..specfiles import find_files
from .project import ComposeOptions, ComposeProject, read_project

if TYPE_CHECKING:
    from .translate import Translation

__all__ = ["ComposeOptions", "ComposeStack", "find_files", "load_compose"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ComposeStack:
    """A Compose project as a stack: the raw stack validation reads, and the translation behind it."""

    raw: RawStack
    project: ComposeProject
    translation: Translation

    def located(self, error: SpecError) -> SpecError:
        """``error`` with each field path written as the Compose key it came from."""
        return SpecError([dataclasses.replace(p, path=compose_path(p.path, self.translation.paths))
                          for p in error.problems])


def load_compose(files: Sequence[Path], *, environ: Mapping[str, str],
                 options: ComposeOptions | None = None, allow_outside: bool = False) -> ComposeStack:
    """Read the Compose ``files`` and translate them; raise SpecError for what cannot be expressed.

    ``allow_outside``: the files that ``extends`` and ``include`` name may lie outside the repository.
    """
    from .translate import translate  # a stack spec (the common case) never pays for it

    options = options or ComposeOptions()
    project = read_project([Path(f) for f in files], environ, options, allow_outside=allow_outside)
    translation = translate(project, ignore_unsupported=options.ignore_unsupported)
    for warning in translation.warnings:
        log.warning("%s", warning)
    if translation.problems:
        raise SpecError(translation.problems)
    variables = {Path(f).parent: project.variables for f in files}
    raw = RawStack(data=translation.data, marks=translation.marks, files=tuple(Path(f) for f in files),
                   environ=project.variables, variables_by_dir=variables)
    return ComposeStack(raw, project, translation)


def compose_path(path: str, paths: Mapping[str, str]) -> str:
    """The Compose spelling of a stack field's path: its longest translated prefix replaced."""
    if not path:
        return path
    best = ""
    for ours in paths:
        if len(ours) > len(best) and (path == ours or path.startswith((ours + ".", ours + "["))):
            best = ours
    return paths[best] + path[len(best):] if best else path
