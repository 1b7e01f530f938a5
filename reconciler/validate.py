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

from .cache import known_valid, remember_valid, schema_verdict_key
from .errors import Problem, SpecError
from .interpolate import InterpolationError, parse_env_file

if TYPE_CHECKING:
    from jsonschema import ValidationError

    from .loader import RawStack

__all__ = ["format_path", "validate"]

SCHEMA_FILE = "stack.schema.json"

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
    "object": "a mapping", "array": "a list", "null": "null",
}
_Finding = tuple[tuple, str]  # (path, message)


def format_path(path: tuple | list) -> str:
    """Render a path of keys and indices as ``containers.web.ports[0]``.

    Keys that would be ambiguous after a dot are quoted: ``options["com.docker.x"]``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


DEFAULT_DRIVERS = {"images": "docker", "networks": "bridge", "volumes": "local"}


def validate(
    raw: RawStack, *, allow_outside: bool = False, drivers: Mapping[str, Collection[str]] | None = None
) -> None:
    """Raise SpecError listing every schema and semantic problem in ``raw``.

    Semantic checks (references, depends_on cycles, paths, env files) skip the
    parts that failed the schema. Relative paths may not leave the repository
    holding the spec file unless ``allow_outside`` is true.
    """
    findings = _schema_findings(raw.data)
    failed = {path for path, _ in findings}
    findings += _Semantics(raw, failed, allow_outside).findings()
    if drivers is not None:
        findings += _unknown_drivers(raw.data, failed, drivers)
    problems = [_locate(raw, path, message) for path, message in findings]
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # one error may be found via two routes


def _schema_findings(data: Any) -> list[_Finding]:
    key = schema_verdict_key(_schema_text(), data)
    if known_valid(key):
        return []
    findings = [finding for error in _validator().iter_errors(data) for finding in _explain(error)]
    if not findings:
        remember_valid(key)
    return findings


def _unknown_drivers(data: dict, failed: set[tuple], drivers: Mapping[str, Collection[str]]) -> list[_Finding]:
    """Entries naming a driver no loaded plugin provides (``drivers``: section → names)."""
    out = []
    for section, default in DEFAULT_DRIVERS.items():
        entries = data.get(section)
        for key, entry in (entries.items() if isinstance(entries, dict) else ()):
            if not isinstance(entry, dict) or any(p[:2] == (section, key) for p in failed):
                continue
            name = entry.get("driver", default)
            available = sorted(drivers.get(section, ()))
            if name not in available:
                path = (section, key, "driver") if "driver" in entry else (section, key)
                out.append((path, f"no plugin provides the {section[:-1]} driver {name!r} "
                                  f"(available: {', '.join(available) or 'none'})"))
    return out


def _locate(raw: RawStack, path: tuple, message: str) -> Problem:
    mark = raw.mark(path)
    if mark is None:
        return Problem(message, path=format_path(path))
    return Problem(message, file=mark.file, line=mark.line, col=mark.col, path=format_path(path))


@functools.cache
def _validator() -> Any:
    import jsonschema  # late: importing it costs more than a converged reconcile pass

    return jsonschema.Draft202012Validator(json.loads(_schema_text()))


@functools.cache
def _schema_text() -> str:
    from importlib.resources import files

    try:
        return files("reconciler.schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        # Running from a source checkout: the folder sits beside the package.
        return (Path(__file__).resolve().parent.parent / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")


# -- schema errors, in words ------------------------------------------------------


def _explain(error: ValidationError) -> list[_Finding]:
    path = tuple(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:
        # The instance is a key; point at the entry it names.
        return [((*path, error.instance), f"invalid key {error.instance!r}: expected {_expected(error)}")]
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
    hint = ", ".join(known + [p.lstrip("^") + "*" for p in patterns])
    return [((*path, key), f"unknown field {key!r} (expected one of: {hint})") for key in extras]


def _message(error: ValidationError, path: tuple) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        return f"expected {_type_name(value)}, got {_kind(instance)}"
    if kind in ("enum", "pattern", "const"):
        return f"expected {_expected(error)}, got {_shown(instance, path)}"
    if kind == "required":
        missing = _missing(error)
        return f"missing required field{'s' if len(missing) > 1 else ''} " + ", ".join(map(repr, missing))
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"expected a number {bounds[kind]} {value}, got {instance}"
    if kind in ("minLength", "minItems"):
        return "must not be empty" if value == 1 else f"must have at least {value} items"
    if kind == "uniqueItems":
        return "must not list the same item twice"
    return error.message


def _expected(error: ValidationError) -> str:
    """What a single constraint wanted, as a phrase that reads after "expected"."""
    if error.validator == "enum":
        return "one of: " + ", ".join(map(str, error.validator_value))
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
    # Environment values may be secrets: describe them without echoing.
    if "env" in path[2:3] or not isinstance(instance, (str, int, float, type(None))):
        return _kind(instance)
    return json.dumps(instance) if not isinstance(instance, str) else repr(instance)


# -- checks beyond the schema -----------------------------------------------------


class _Semantics:
    """Cross-references, cycles and file-system checks over the parts the schema accepted."""

    def __init__(self, raw: RawStack, failed: set[tuple], allow_outside: bool) -> None:
        self.raw = raw
        self.failed = failed
        self.allow_outside = allow_outside
        self.out: list[_Finding] = []
        sections = ("images", "networks", "volumes", "containers")
        self.defined = {name: set(self._section(name)) for name in sections}
        self._roots: dict[Path, Path] = {}

    def findings(self) -> list[_Finding]:
        """Run every check and return what they found."""
        for key, image in self._accepted("images"):
            self._build(key, image)
        graph: dict[str, list[tuple[str, tuple]]] = {}
        for key, container in self._accepted("containers"):
            base = ("containers", key)
            checks = {
                "image": lambda: self._image_ref(base, container),
                "networks": lambda: self._networks(base, container.get("networks")),
                "volumes": lambda: [self._mount((*base, "volumes", i), m)
                                    for i, m in enumerate(container.get("volumes", []))],
                "env_file": lambda: self._env_files(base, container.get("env_file")),
                "depends_on": lambda: graph.__setitem__(key, self._depends_on(base, container.get("depends_on"))),
                "network_mode": lambda: self._network_mode(base, container),
            }
            # A schema error in one field must not hide reference errors in the others.
            for field, check in checks.items():
                if field in container and self._clean((*base, field)):
                    check()
        self._cycles(graph)
        return self.out

    def _section(self, name: str) -> dict:
        value = self.raw.data.get(name)
        return value if isinstance(value, dict) else {}

    def _clean(self, prefix: tuple) -> bool:
        """True when the schema raised nothing at, under or above ``prefix``."""
        return not any(p[: len(prefix)] == prefix or prefix[: len(p)] == p for p in self.failed)

    def _accepted(self, section: str) -> list[tuple[str, dict]]:
        """Entries of ``section`` the schema raised nothing about at or above them.

        Images must be clean throughout; containers are checked field by field.
        """
        def above(prefix: tuple) -> bool:
            return any(prefix[: len(p)] == p for p in self.failed)
        return [(key, value) for key, value in self._section(section).items()
                if isinstance(value, dict) and not above((section, key))
                and (section == "containers" or self._clean((section, key)))]

    def _image_ref(self, base: tuple, container: dict) -> None:
        image = container["image"]
        if not any(c in image for c in ":/@") and image not in self.defined["images"]:
            self.out.append(((*base, "image"), f"image {image!r} is not defined in images "
                                               f"(write '{image}:latest' for a registry reference)"))

    def _networks(self, base: tuple, networks: list | dict | None) -> None:
        entries = _entries(networks)
        for where, name in entries:
            if name not in self.defined["networks"]:
                self.out.append(((*base, "networks", where), f"network {name!r} is not defined in networks"))

    def _network_mode(self, base: tuple, container: dict) -> None:
        mode = container["network_mode"]
        if container.get("networks"):
            self.out.append(((*base, "network_mode"),
                             f"network_mode {mode} excludes networks: remove one of the two"))
        if mode == "host" and container.get("ports"):
            self.out.append(((*base, "ports"), "ports cannot be published with network_mode host "
                                               "(the container already uses the host's ports)"))

    def _mount(self, path: tuple, mount: str | dict) -> None:
        if isinstance(mount, str):
            source = mount.split(":", 1)[0]
            kind = "bind" if source[:1] in (".", "/", "~") else "volume"
        else:
            source, kind = mount.get("source", ""), mount["type"]
            path = (*path, "source")
        if kind == "volume" and source not in self.defined["volumes"]:
            self.out.append((path, f"volume {source!r} is not defined in volumes "
                                   "(a bind mount's source starts with '.', '/' or '~')"))
        elif kind == "bind":
            self._resolve(path, source, self._spec_dir(path))

    def _env_files(self, base: tuple, env_file: str | list | None) -> None:
        entries = [((*base, "env_file"), env_file)] if isinstance(env_file, str) else \
            [((*base, "env_file", i), name) for i, name in enumerate(env_file or [])]
        for path, name in entries:
            resolved = self._resolve(path, name, self._spec_dir(path))
            if resolved is None:
                continue
            if not resolved.is_file():
                self.out.append((path, f"env file {name!r} does not exist ({resolved})"))
                continue
            try:
                parse_env_file(resolved)
            except InterpolationError as exc:
                self.out.append((path, f"env file {name!r}: {exc}"))

    def _build(self, key: str, image: dict) -> None:
        build = image.get("build")
        if build is None:
            return
        path = ("images", key, "build", "context")
        context = self._resolve(path, build["context"], self._spec_dir(path))
        if context is None:
            return
        if not context.is_dir():
            self.out.append((path, f"build context {build['context']!r} is not a directory ({context})"))
            return
        dockerfile = build.get("dockerfile", "Dockerfile")
        where = ("images", key, "build", "dockerfile") if "dockerfile" in build else path
        resolved = self._resolve(where, dockerfile, context)
        if resolved is not None and not resolved.is_file():
            self.out.append((where, f"{dockerfile!r} not found in build context {build['context']!r}"))

    def _depends_on(self, base: tuple, depends_on: list | dict | None) -> list[tuple[str, tuple]]:
        """Checks the names; returns (dependency, path of its entry) for the cycle search."""
        entries = _entries(depends_on)
        edges = []
        for where, name in entries:
            path = (*base, "depends_on", where)
            if name == base[1]:
                self.out.append((path, f"container {name!r} cannot depend on itself"))
            elif name not in self.defined["containers"]:
                self.out.append((path, f"container {name!r} is not defined in containers"))
            else:
                edges.append((name, path))
        return edges

    def _cycles(self, graph: dict[str, list[tuple[str, tuple]]]) -> None:
        """Report each depends_on cycle once, at the entry where it starts.

        An iterative depth-first search: every edge is followed once, and an
        edge back to a container still on the trail closes exactly one cycle.
        """
        state: dict[str, str] = {}
        for start in graph:
            if start in state:
                continue
            trail, stack = [start], [iter(graph[start])]
            state[start] = "open"
            while stack:
                name, path = next(stack[-1], (None, ()))
                if name is None:
                    state[trail.pop()] = "done"
                    stack.pop()
                elif state.get(name) == "open":
                    members = trail[trail.index(name):] + [name]
                    message = "depends_on cycle: " + " -> ".join(members)
                    self.out.append((self._entry(graph, members), message))
                elif name not in state and name in graph:
                    state[name] = "open"
                    trail.append(name)
                    stack.append(iter(graph[name]))

    @staticmethod
    def _entry(graph: dict[str, list[tuple[str, tuple]]], members: list[str]) -> tuple:
        return next(path for name, path in graph[members[0]] if name == members[1])

    def _spec_dir(self, path: tuple) -> Path:
        return self.raw.origin(path).resolve().parent

    def _resolve(self, path: tuple, value: str, base: Path) -> Path | None:
        """Absolute form of a spec path, or None (and a finding) if it leaves the repository."""
        if value.startswith("~"):
            return Path(value).expanduser()
        resolved = (base / value).resolve()
        if Path(value).is_absolute() or self.allow_outside:
            return resolved
        root = self._repo_root(self._spec_dir(path))
        if not resolved.is_relative_to(root):
            self.out.append((path, f"{value!r} resolves to {resolved}, outside the repository {root} "
                                   "(outside paths must be allowed explicitly)"))
            return None
        return resolved

    def _repo_root(self, spec_dir: Path) -> Path:
        """The nearest directory holding ``.git`` (a work tree), else the spec's own directory."""
        if spec_dir not in self._roots:
            found = (d for d in (spec_dir, *spec_dir.parents) if (d / ".git").exists())
            self._roots[spec_dir] = next(found, spec_dir)
        return self._roots[spec_dir]


def _entries(value: list | dict | None) -> list[tuple[int | str, str]]:
    """(where, name) for a list of names or a mapping keyed by name (networks, depends_on)."""
    if isinstance(value, list):
        return list(enumerate(value))
    return [(name, name) for name in value or {}]
