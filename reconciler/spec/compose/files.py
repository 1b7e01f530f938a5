"""One Compose file read: safe YAML with its merge tags, variables substituted, and the files a project reads.

A project is more than its ``-f`` files once ``extends`` and ``include``
name others, so what every read shares lives here, below the modules that
follow those links (``extends``, ``assemble``): the size limit, the safe
reader (``!reset``/``!override`` accepted, as in Compose files only),
interpolation with the variables of the project the file belongs to, the
``.env`` files, and the rule that a file the reconciler reads itself must
lie in the repository of the file that names it (as for env files and build
contexts). ``Reading`` also keeps the list of every file read besides the
``-f`` files, so ``reconcile watch`` follows them, and bounds their number.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import Problem, SpecError
from ...paths import inside, repo_root
from ..interpolate import InterpolationError, interpolate, parse_env_file
from ..locations import Mark, problem_at
from ..semantics import ALLOW_OUTSIDE_FLAG
from ..specfiles import MAX_FILE_BYTES
from ..yamlsafe import compose_file
from .merge import Marks

__all__ = ["Loaded", "MAX_LINKED_FILES", "Reading", "Variables"]

#: Files one project may read through ``extends`` and ``include`` (a bound, as on nesting and aliases).
MAX_LINKED_FILES = 100


@dataclass
class Loaded:
    """One file's interpolated data, the position of every value, and its ``!reset``/``!override`` paths."""

    file: Path
    data: dict
    marks: Marks
    tags: dict[tuple, str]


class Variables(Mapping[str, str]):
    """A project's variables, remembering the names used without a value and without a default."""

    # ``$$`` first so an escaped dollar is skipped; a braced name with an operator has a default or a message.
    _PLAIN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

    def __init__(self, variables: Mapping[str, str], unset: set[str]) -> None:
        self.variables = variables
        self.unset = unset

    def note(self, text: str) -> None:
        """Remember the variables ``text`` uses plainly that have no value."""
        for match in self._PLAIN.finditer(text):
            name = match.group(1) or match.group(2)
            if name and name not in self.variables:
                self.unset.add(name)

    def __getitem__(self, name: str) -> str:
        return self.variables[name]

    def __iter__(self):
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)


@dataclass
class Reading:
    """What the reads of one project share: its problems, the files read besides ``-f``, the bounds."""

    problems: list[Problem]
    #: ``--allow-outside-paths``: an extended or included file may lie outside the repository.
    allow_outside: bool = False
    #: Every file read through ``extends`` or ``include``, and their ``.env`` files (for ``watch``).
    linked: list[Path] = field(default_factory=list)
    #: Variables used without a value and without a default, in any file.
    unset: set[str] = field(default_factory=set)

    def variables(self, values: Mapping[str, str]) -> Variables:
        """``values`` as the variables of a project, their unset names noted in ``unset``."""
        return Variables(values, self.unset)

    def read(self, file: Path, variables: Mapping[str, str]) -> Loaded | None:
        """``file`` read and interpolated, or None (its problems noted)."""
        try:
            size = file.stat().st_size
            if size > MAX_FILE_BYTES:
                raise SpecError(Problem(f"file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB)",
                                        file=str(file)))
            text = file.read_bytes().decode("utf-8-sig")
            document = compose_file(text, str(file), remember=True, merge_tags=True)
        except OSError as exc:
            self.problems.append(Problem(f"cannot read file: {exc.strerror or exc}", file=str(file)))
            return None
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(f"file is not valid UTF-8 (byte {exc.start})", file=str(file)))
            return None
        except SpecError as exc:
            self.problems.extend(exc.problems)
            return None
        self.problems.extend(document.problems)
        data = document.data if document.data is not None else {}
        if not isinstance(data, dict):
            self.problems.append(problem_at(document.marks.get(()), (), "a Compose file's top level must be a mapping"))
            return None
        marks = dict(document.marks) or {(): Mark(str(file), 1, 1)}
        return Loaded(file, self._interpolated(data, marks, (), variables), marks, dict(document.tags))

    def link(self, given: str, directory: Path, mark: Mark | None, path: tuple, *, what: str) -> Path | None:
        """The file ``given`` (relative to ``directory``) that an ``extends``/``include`` at ``path`` names.

        None, with a problem at ``mark``, when it does not exist, lies outside
        the repository of the file naming it (unless ``allow_outside``), or one
        file too many has been linked.
        """
        file = (directory / Path(given).expanduser())
        resolved = file.resolve()
        if len(self.linked) >= MAX_LINKED_FILES:
            self.problems.append(problem_at(mark, path, f"more than {MAX_LINKED_FILES} files extended or included"))
            return None
        if not resolved.is_file():
            self.problems.append(problem_at(mark, path, f"{what}: no such file {given!r} ({resolved})"))
            return None
        if not self.allow_outside and mark is not None:
            root = repo_root(Path(mark.file).resolve())
            if not inside(resolved, root):
                self.problems.append(problem_at(mark, path, (
                    f"{what}: {given!r} resolves to {resolved}, outside the repository {root} (allow paths "
                    f"outside it with {ALLOW_OUTSIDE_FLAG})")))
                return None
        self.linked.append(resolved)
        return file

    def env_files(self, files: Iterable[Path]) -> dict[str, str]:
        """The variables of ``files`` (``KEY=value`` lines; later files win); problems noted."""
        values: dict[str, str] = {}
        for file in files:
            try:
                values.update(parse_env_file(file))
            except InterpolationError as exc:
                self.problems.append(Problem(exc.reason, file=exc.file, line=exc.line, col=1 if exc.line else 0))
        return values

    def _interpolated(self, value: Any, marks: Marks, path: tuple, variables: Mapping[str, str]) -> Any:
        """Compose interpolates every value, never a key; ``x-`` extensions included."""
        if isinstance(value, str):
            if "$" in value and isinstance(variables, Variables):
                variables.note(value)
            try:
                return interpolate(value, variables)
            except InterpolationError as exc:
                self.problems.append(problem_at(marks.get(path), path, str(exc)))
                return value
        if isinstance(value, dict):
            return {k: self._interpolated(v, marks, (*path, k), variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self._interpolated(v, marks, (*path, i), variables) for i, v in enumerate(value)]
        return value
