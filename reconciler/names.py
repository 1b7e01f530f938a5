"""The one rule for a stack's name, and the length every engine name must keep.

A stack name reaches the engine inside every name the reconciler derives
(containers ``<stack>-<key>-<n>``, networks and volumes ``<stack>_<key>``,
built images ``<stack>-<key>:latest``) and the file system as the lock file's
name, so it comes from ``name:``, the spec's directory or ``--stack`` under the
same rule: the schema's pattern and at most 63 characters (a DNS label, which
also leaves room for the keys). Every engine name is then held to 255
characters: a volume becomes a directory of that name (``NAME_MAX``) and an
image repository may not be longer (the reference grammar).

``schemas/stack.schema.json`` repeats the pattern and the length for editors;
a unit test keeps the two in step.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .errors import Problem, SpecError

__all__ = ["MAX_ENGINE_NAME", "MAX_STACK_NAME", "STACK_NAME_PATTERN", "engine_name_problem", "require_stack_name",
           "stack_name_problem"]

STACK_NAME_PATTERN = "^[a-z0-9][a-z0-9_-]*$"
MAX_STACK_NAME = 63
MAX_ENGINE_NAME = 255
_STACK_NAME = re.compile(STACK_NAME_PATTERN)


def stack_name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a stack name, or None when it is a valid one."""
    if not name:
        return "it is empty"
    if not _STACK_NAME.match(name):
        return ("expected lowercase letters, digits, '_' or '-', starting with a letter or digit "
                f"(pattern {STACK_NAME_PATTERN})")
    if len(name) > MAX_STACK_NAME:
        return f"it is {len(name)} characters long; a stack name has at most {MAX_STACK_NAME}"
    return None


def require_stack_name(name: str, where: Problem | None = None, *, hint: str = "") -> str:
    """``name`` if it is a valid stack name, else a SpecError at ``where`` (default: the ``--stack`` flag)."""
    problem = stack_name_problem(name)
    if problem:
        shown = repr(name) if len(name) <= 64 else repr(name[:64]) + "…"
        where = where or Problem("", file="--stack")  # the flag is where the name came from
        raise SpecError(replace(where, message=f"invalid stack name {shown}: {problem}{hint}"))
    return name


def engine_name_problem(what: str, name: str, *, given: bool = False) -> str | None:
    """Why the engine would refuse ``name`` for ``what`` (``"container"``, …) as too long, or None.

    ``given``: the user wrote the name itself (``name:``) rather than the reconciler deriving it from the keys.
    """
    if len(name) <= MAX_ENGINE_NAME:
        return None
    if given:
        return (f"the {what} name {name[:40]}… is {len(name)} characters long; "
                f"the engine allows at most {MAX_ENGINE_NAME}")
    return (f"the {what} name {name[:40]}… would be {len(name)} characters long; "
            f"the engine allows at most {MAX_ENGINE_NAME} (shorten the key or the stack name)")
