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
from typing import TYPE_CHECKING, Callable, Collection, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from ..model import DesiredState, Target
    from .compose import ComposeOptions

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
    compose: ComposeOptions | None = None,
    profiles: Collection[str] = (),
    targets: tuple[Target, ...] = (),
    host_paths: Collection[str] | None = None,
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
    ``profiles`` enables the containers that list one of them in their
    ``profiles`` (the others with ``profiles`` are left out, as Compose does).
    ``targets`` (a daemon's ``targets:``) are the fleet of a stack that names
    none of its own; its ``placement:`` chooses among them.
    ``host_paths`` (a daemon source's ``allow_host_paths``) are the roots an
    absolute or ``~`` bind source outside the repository may be inside; None
    allows any host path, as Compose does, and ``~`` is the home of the user
    running the reconciler.

    Compose files (a top-level ``services:``, see ``reconciler.spec.compose``)
    are recognised from their content and translated first, with ``compose``'s
    options (``--env-file``, ``--profile``, ``-p``); their problems name the
    Compose file's lines and keys.
    """
    import dataclasses

    from ..errors import EmptySpecError, SpecError
    from ..redact import register_secrets
    from .specfiles import find_files
    from .desired import build_desired, stack_name_for
    from .loader import load_stack
    from .validate import validate

    compose_files = find_files(files)
    scheduling = _scheduling_runtimes(drivers)
    if compose_files is None and compose is not None and dataclasses.replace(compose, profiles=()) != type(compose)():
        raise SpecError(f"{', '.join(map(str, files))}: not a Compose project, and --env-file, "
                        "-p and --ignore-unsupported apply to Compose files only (--stack names a stack)")
    if compose_files is None:
        raw = load_stack(files, environ=environ)
        validate(raw, allow_outside=allow_outside, drivers=drivers, profiles=profiles, targets=targets,
                 host_paths=host_paths)
        desired = build_desired(raw, stack_name_for(raw, stack), profiles=profiles, scheduling=scheduling,
                                targets=targets)
    else:
        import os

        from .compose import load_compose

        translated = load_compose(compose_files, environ=os.environ if environ is None else environ, options=compose,
                                  allow_outside=allow_outside)
        raw = translated.raw
        try:
            validate(raw, allow_outside=allow_outside, drivers=drivers, profiles=profiles, targets=targets,
                     host_paths=host_paths)
            desired = build_desired(raw, stack_name_for(raw, stack), profiles=profiles, scheduling=scheduling,
                                    targets=targets)
        except SpecError as exc:
            raise translated.located(exc) from None
        # watch follows --env-file, and the files extends and include read, too
        env_files = {str(f.resolve()) for f in (*translated.project.env_files, *translated.project.linked)}
        desired = dataclasses.replace(desired, inputs=tuple(sorted({*desired.inputs, *env_files})))
    if drivers is not None:
        from .options import mark_in_place

        desired = mark_in_place(desired, drivers)
    register_secrets(desired.secret_values())  # from here on, no log line may show them
    if desired.is_empty() and not allow_empty:
        raise EmptySpecError(desired.stack)
    if check_options is not None:
        from .locations import problem_at

        # Driver options are checked at their ``options``; a runtime's refusals of a container at the container.
        problems = [problem_at(raw.mark(path), path, message)
                    for section, key, message in check_options(desired)
                    for path in [(section, key) if section == "containers" else (section, key, "options")]]
        if problems:
            raise SpecError(problems)
    return desired


def _scheduling_runtimes(drivers: Mapping[str, object] | None) -> frozenset[str] | None:
    """The runtimes that schedule replicas themselves, from a driver catalog (None: not known).

    ``Reconciler.driver_catalog`` marks them ``schedules_replicas``; a plain list of
    names (``driver_names``) says none does.
    """
    if drivers is None:
        return None
    runtimes = drivers.get("containers") or ()
    return frozenset(name for name in runtimes
                     if isinstance(runtimes, Mapping) and isinstance(runtimes[name], Mapping)
                     and runtimes[name].get("schedules_replicas"))
