"""The spec half of the flow: files in, ``DesiredState`` out.

``load_desired`` is the entry point: read the YAML safely (``yamlsafe``),
merge files and interpolate variables (``loader``, ``interpolate``), check
the schema and the references (``validate``, ``semantics``), then build the
frozen desired model (``desired``). Nothing here reaches an engine; the
planning and executing side (``reconciler.plan``, ``reconciler.apply``) only
ever sees the ``DesiredState`` this package returns.

Layers inside the package, lowest first: ``locations`` (positions and field
paths) and ``names`` (the stack name rule, engine name limits), ``yamlsafe``
and ``interpolate``, ``loader``, ``semantics``, ``validate``, ``desired``. Submodules are imported when first used, so a
plugin importing one helper does not pay for the rest.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from ..model import DesiredState

__all__ = ["load_desired"]


def load_desired(
    files: Sequence[str | Path],
    *,
    stack: str | None = None,
    environ: Mapping[str, str] | None = None,
    allow_outside: bool = False,
    drivers: Mapping[str, Sequence[str]] | None = None,
    allow_empty: bool = False,
    check_options: Callable[[DesiredState], Iterable[tuple[str, str, str]]] | None = None,
) -> DesiredState:
    """Read, validate and model a spec; raise ``SpecError`` with every problem found.

    ``drivers`` (section → driver names, see ``Reconciler.driver_names``) also
    checks that every driver the spec names is provided by a loaded plugin.
    A spec naming no object raises ``EmptySpecError`` unless ``allow_empty``
    (``destroy`` only needs the stack's name): applying it would delete the stack.
    Its secret values are registered with ``reconciler.redact``.
    ``check_options`` (see ``Reconciler.option_problems``) returns
    (section, key, message) for driver options the drivers refuse; each
    becomes a problem at the entry's ``options`` in its file.
    """
    from ..errors import EmptySpecError
    from ..redact import register_secrets
    from .desired import build_desired, stack_name_for
    from .loader import load_stack
    from .validate import validate

    raw = load_stack(files, environ=environ)
    validate(raw, allow_outside=allow_outside, drivers=drivers)
    desired = build_desired(raw, stack_name_for(raw, stack))
    if drivers is not None:
        from .options import mark_in_place

        desired = mark_in_place(desired, drivers)
    register_secrets(desired.secret_values())  # from here on, no log line may show them
    if desired.is_empty() and not allow_empty:
        raise EmptySpecError(desired.stack)
    if check_options is not None:
        from ..errors import SpecError
        from .locations import problem_at

        problems = [problem_at(raw.mark((section, key, "options")), (section, key, "options"), message)
                    for section, key, message in check_options(desired)]
        if problems:
            raise SpecError(problems)
    return desired
