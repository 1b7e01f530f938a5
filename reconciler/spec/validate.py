"""Check a loaded stack against the schema and against itself, reporting everything at once.

A user fixing a spec wants every mistake in one run, each pointing at a file,
line and field, in words rather than JSON Schema jargon. So schema errors are
translated (unknown fields list the known ones, ``anyOf`` failures name the
alternative the value was closest to), and the checks a schema cannot express
(references between sections, depends_on cycles, paths escaping the
repository, missing files) run on every part the schema accepted.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Mapping

from .verdicts import known_valid, remember_valid, schema_verdict_key
from ..errors import Problem, SpecError
from ..hashing import canonical_json
from ..redact import without_credentials
from .fleet import fleet_findings
from .locations import KEY, problem_at
from .options import merged_schema, option_findings, option_schemas
from .semantics import semantic_findings, unknown_drivers
from .snapshotspecs import snapshot_findings
from .spellings import key_hint, value_hint
from .updates import update_findings

if TYPE_CHECKING:
    from jsonschema import ValidationError

    from ..model import Target
    from .loader import RawStack

__all__ = ["schema_findings", "schema_text", "stack_schema", "validate"]

SCHEMA_FILE = "stack.schema.json"

_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
    "object": "a mapping", "array": "a list", "null": "null",
}
_Finding = tuple[tuple, str]  # (path, message)


def validate(
    raw: RawStack, *, allow_outside: bool = False, drivers: Mapping[str, Collection[str]] | None = None,
    profiles: Collection[str] = (), targets: tuple[Target, ...] = (), host_paths: Collection[str] | None = None,
) -> None:
    """Raise SpecError listing every schema and semantic problem in ``raw``.

    Semantic checks (references, depends_on cycles, paths, env files) skip the
    parts that failed the schema. Paths the reconciler reads (env files, build
    contexts, files, archives), relative or absolute, and relative bind sources
    may not leave the repository holding the spec file unless ``allow_outside``
    is true. An absolute or ``~`` bind source is a host path, allowed as in
    Compose; ``host_paths`` (roots; empty: none) narrows where one may point.
    ``profiles`` are the enabled profiles: an enabled container may not depend
    on one they leave out. ``targets`` are the daemon's, for a stack naming none.
    """
    findings = _schema_findings(raw.data, option_schemas(drivers))
    failed = {path for path, _ in findings}
    findings += semantic_findings(raw, failed, allow_outside=allow_outside, profiles=profiles, host_paths=host_paths)
    findings += fleet_findings(raw, failed, targets)
    findings += update_findings(raw, failed)
    findings += snapshot_findings(raw.data, failed, drivers)
    if drivers is not None:
        findings += unknown_drivers(raw.data, failed, drivers)
    problems = [_locate(raw, path, message) for path, message in findings]
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # one error may be found via two routes


def _schema_findings(data: Any, options: Mapping[str, Mapping[str, Any]]) -> list[_Finding]:
    """The stack schema's findings, then the drivers' options schemas' (see ``options.py``).

    One remembered verdict covers both: the key hashes every schema involved.
    """
    key = schema_verdict_key(schema_text() + canonical_json(options) if options else schema_text(), data)
    if known_valid(key):
        return []
    findings = schema_findings(data)
    findings += option_findings(data, {path for path, _ in findings}, options, _explain)
    if not findings:
        remember_valid(key)
    return findings


def stack_schema(drivers: Mapping[str, Collection[str]] | None = None) -> dict[str, Any]:
    """The stack schema, with the options schema of every driver in ``drivers`` merged in (``reconcile schema``)."""
    return merged_schema(json.loads(schema_text()), drivers)


def schema_findings(data: Any, schema_file: str = SCHEMA_FILE) -> list[_Finding]:
    """Every way ``data`` breaks one of the project's schemas, as (path, message in words)."""
    validator = _validator() if schema_file == SCHEMA_FILE else _compiled(schema_file)
    return [finding for error in validator.iter_errors(data) for finding in _explain(error)]


def _locate(raw: RawStack, path: tuple, message: str) -> Problem:
    # A finding about a key (unknown, invalid) points at the key's own line, not at its value.
    mark = raw.mark((*path, KEY)) if isinstance(path, _KeyPath) else raw.mark(path)
    return problem_at(mark, path, message)


class _KeyPath(tuple):
    """The path of a mapping entry whose *key* is what is wrong (see ``locations.KEY``)."""


def _validator() -> Any:
    return _compiled(SCHEMA_FILE)


@functools.cache
def _compiled(schema_file: str) -> Any:
    import jsonschema  # late: importing it costs more than a converged reconcile pass

    return jsonschema.Draft202012Validator(json.loads(schema_text(schema_file)))


@functools.cache
def schema_text(schema_file: str = SCHEMA_FILE) -> str:
    """The text of one of the project's schemas (``schemas/`` beside a source checkout, else the package data)."""
    from importlib.resources import files

    # Running from a source checkout, the folder beside the package is the one
    # that matches this code, even when another checkout is installed editable
    # (whose ``reconciler.schemas`` would otherwise win).
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "schemas" / schema_file).is_file():
        return (checkout / "schemas" / schema_file).read_text(encoding="utf-8")
    return files("reconciler.schemas").joinpath(schema_file).read_text(encoding="utf-8")




# -- schema errors, in words ------------------------------------------------------


def _explain(error: ValidationError) -> list[_Finding]:
    path = tuple(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:
        # The instance is a key; point at the entry it names.
        return [(_KeyPath((*path, error.instance)), f"invalid key {error.instance!r}: expected {_expected(error)}")]
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _explain_alternatives(error, path)
    if error.validator == "additionalProperties":
        return _unknown_fields(error, path)
    return [(path, _message(error, path))]


def _explain_alternatives(error: ValidationError, path: tuple) -> list[_Finding]:
    """Explain the alternative the value came closest to, rather than "not valid under any"."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    # A branch whose own type check failed is not what the user meant.
    fitting = [errs for errs in branches.values()
               if not any(e.validator == "type" and not e.relative_path for e in errs)]
    if not fitting:
        wanted = [name for errs in branches.values() for e in errs if e.validator == "type"
                  for name in _type_names(e.validator_value)]
        return [(path, f"expected {_either(list(dict.fromkeys(wanted)))}, got {_kind(error.instance)}")]
    deep = [errs for errs in fitting if any(e.relative_path for e in errs)]
    if deep or len(fitting) == 1:
        return [finding for e in min(deep or fitting, key=len) for finding in _explain(e)]
    if all(e.validator == "required" for errs in fitting for e in errs):
        names = [repr(name) for errs in fitting for e in errs for name in _missing(e)]
        return [(path, f"missing required field: {_either(names)}")]
    options = [_expected(e) for errs in fitting for e in errs]
    return [(path, f"expected {_either(options)}, got {_shown(error.instance, path)}")]


def _unknown_fields(error: ValidationError, path: tuple) -> list[_Finding]:
    known = list(error.schema.get("properties", {}))
    patterns = list(error.schema.get("patternProperties", {}))
    extras = [key for key in error.instance
              if key not in known and not any(re.search(pattern, key) for pattern in patterns)]
    listed = ", ".join(known + [p.lstrip("^") + "*" for p in patterns])
    return [(_KeyPath((*path, key)), f"unknown field {key!r} (expected one of: {listed}){key_hint(key, known)}")
            for key in extras]


def _message(error: ValidationError, path: tuple) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        return f"expected {_type_name(value)}, got {_kind(instance)}"
    if kind == "enum":
        return f"expected {_expected(error)}, got {_shown(instance, path)}{value_hint(instance, value)}"
    if kind in ("pattern", "const"):
        return f"expected {_expected(error)}, got {_shown(instance, path)}"
    if kind == "required":
        missing = _missing(error)
        return f"missing required field{'s' if len(missing) > 1 else ''} " + ", ".join(map(repr, missing))
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"expected a number {bounds[kind]} {value}, got {instance}"
    if kind == "maxLength":
        return f"expected at most {value} characters, got {len(instance)}"
    if kind in ("minLength", "minItems"):
        return "must not be empty" if value == 1 else f"must have at least {value} items"
    if kind == "uniqueItems":
        return "must not list the same item twice"
    return error.message


def _expected(error: ValidationError) -> str:
    """What a single constraint wanted, as a phrase that reads after "expected"."""
    if error.validator == "enum":
        shown = (value if isinstance(value, str) else json.dumps(value) for value in error.validator_value)
        return "one of: " + ", ".join(dict.fromkeys(shown))
    if error.validator == "const":
        return repr(error.validator_value)
    if error.validator == "type":
        return _type_name(error.validator_value)
    description = error.schema.get("description", "").rstrip(".")
    if description:
        return description[0].lower() + description[1:]
    if error.validator == "pattern":
        return f"a string matching {error.validator_value}"
    return _message(error, ())


def _missing(error: ValidationError) -> list[str]:
    present = error.instance if isinstance(error.instance, dict) else {}
    return [name for name in error.validator_value if name not in present]


def _type_names(value: str | list[str]) -> list[str]:
    return [_TYPE_NAMES.get(name, name) for name in ([value] if isinstance(value, str) else value)]


def _type_name(value: str | list[str]) -> str:
    return _either(_type_names(value))


def _either(options: list[str]) -> str:
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]


def _kind(instance: Any) -> str:
    for python_type, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                              (dict, "object"), (list, "array"), (type(None), "null")):
        if isinstance(instance, python_type):
            return _TYPE_NAMES[name]
    return type(instance).__name__


def _shown(instance: Any, path: tuple) -> str:
    # Environment values and secrets may be secret: describe them without echoing.
    if "env" in path[2:3] or path[:1] == ("secrets",) or not isinstance(instance, (str, int, float, type(None))):
        return _kind(instance)
    return json.dumps(instance) if not isinstance(instance, str) else repr(without_credentials(instance))
