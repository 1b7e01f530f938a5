"""The project's errors: one root, so callers can catch "anything we expected".

Only the CLI turns these into messages and exit codes; the library raises them
and never prints. The tree::

    ReconcilerError
    ├── SpecError            invalid input; carries every Problem found (file:line:col, path)
    ├── PlanError            a plan that must not be applied (recreate without flag, empty spec)
    │   ├── EmptySpecError   a spec with no objects: applying it would delete the whole stack
    │   └── StalePlanError   a saved plan whose live state moved underneath
    ├── LockError            another writer holds the stack
    ├── SourceError          a stack's files could not be had (a git fetch failed): not the spec's fault
    ├── StateError           the state directory or its database is unusable
    ├── PluginError          a plugin is missing, broken or conflicting
    └── DriverError          a backend call failed
        ├── TemporaryError   worth retrying (connection refused, 5xx, timeouts)
        │   └── EngineUnreachable
        │       └── EngineTimeout   no connection or answer within its timeout: not retried at once
        └── PermanentError   retrying will not help (4xx, invalid config)
            ├── ConflictError   a wanted name is taken by an object this stack does not own
            └── RecreateRequired  the backend can no longer use an object (e.g. after an engine crash)
"""
from __future__ import annotations

from .values import value

__all__ = [
    "ConflictError",
    "DriverError",
    "EmptySpecError",
    "EngineTimeout",
    "EngineUnreachable",
    "LockError",
    "PermanentError",
    "PlanError",
    "PluginError",
    "Problem",
    "ReconcilerError",
    "RolledBack",
    "RecreateRequired",
    "SourceError",
    "SpecError",
    "StalePlanError",
    "StateError",
    "TemporaryError",
]


class ReconcilerError(Exception):
    """Root of every error the reconciler raises on purpose."""


@value
class Problem:
    """One thing wrong with the spec, located as precisely as we can."""

    message: str
    file: str = ""
    line: int = 0
    col: int = 0
    path: str = ""

    def __str__(self) -> str:
        field = f"{self.path}: " if self.path else ""
        if not self.file:  # a command-line argument, not a place in a file
            return f"{field}{self.message}"
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {field}{self.message}"


class SpecError(ReconcilerError):
    """The spec is invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = Problem(problems)
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.path))
        super().__init__("\n".join(str(p) for p in self.problems))


class PlanError(ReconcilerError):
    """The plan cannot be applied as asked (the message says what flag would allow it)."""


class EmptySpecError(PlanError):
    """The spec names no object at all: applying it would delete everything the stack owns.

    ``validate``, ``plan`` and ``apply`` refuse it with this one message;
    removing a stack takes ``reconcile destroy``.
    """

    def __init__(self, stack: str) -> None:
        super().__init__(f"the spec of stack {stack!r} is empty: applying it would delete every object the "
                         f"stack owns; run 'reconcile destroy' to remove the stack")
        self.stack = stack


class StalePlanError(PlanError):
    """A saved plan no longer matches the live state it was computed from."""


class LockError(ReconcilerError):
    """Another process holds the stack's lock."""


class SourceError(ReconcilerError):
    """A stack's source could not be fetched or read (unreachable, refused, a ref that does not exist).

    Nothing is wrong with the spec, which may be fine at the source: a loop
    reports it apart from an invalid spec and tries again with backoff. One
    that is ``invalid`` was fetched, and what it holds is at fault (a link out
    of the repository): reported as an invalid spec, and not retried, since
    only the next commit can mend it.
    """

    #: The source was reached and its revision cannot be used: the revision's fault, not the fetch's.
    invalid: bool = False


class StateError(ReconcilerError):
    """The state directory or database (``reconciler.state``) cannot be used."""


class PluginError(ReconcilerError):
    """A plugin could not be loaded, conflicts with another, or failed inside a hook."""


class DriverError(ReconcilerError):
    """A driver's backend call failed."""


class TemporaryError(DriverError):
    """A failure worth retrying; ``delay`` is a hint in seconds, if the backend gave one.

    ``retry_now`` false: worth another pass later (the loop's), but not a retry
    within this call (``retry.call_with_retries``): the failure already waited
    out its limit, and retrying at once would only multiply the wait.
    """

    retry_now: bool = True

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class EngineUnreachable(TemporaryError):
    """The engine did not answer at all (socket missing, connection refused, timeout)."""


class EngineTimeout(EngineUnreachable):
    """The engine took no connection, or gave no answer, within its timeout (a black-holed address).

    Not retried within the call (``retry_now``): the wait is bounded by the
    timeout, not by the timeout times the retries.
    """

    retry_now = False


class PermanentError(DriverError):
    """A failure that retrying will not fix: fail this change, skip its dependents."""


class RolledBack(PermanentError):
    """A replacement failed and the old object was put back as it was."""


class ConflictError(PermanentError):
    """A wanted name is taken by an object this stack does not own."""


class RecreateRequired(PermanentError):
    """The backend cannot use this object any more, though it is unchanged: remove it and make it again.

    A runtime driver raises it from ``start`` when the engine refuses to start
    a container for a reason only a new container fixes (after an engine crash,
    a task that outlived it: ``task …: already exists``, ``id already in use``).
    The core then removes the container and creates it again from the spec,
    which it does only for a container the stack owns and whose config is
    unchanged; anywhere else it is an ordinary ``PermanentError``.
    """
