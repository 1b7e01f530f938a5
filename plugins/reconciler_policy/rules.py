"""Reading a policy file: what the operator allows, checked strictly before it is trusted.

A policy is a gate, so a policy that cannot be read or understood must never
quietly become "allow everything": every problem here raises
``PolicyFileError`` naming the file, and the plugin turns it into a veto. All
problems in one file are reported at once, like spec errors.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["MAX_POLICY_BYTES", "Policy", "PolicyFileError", "load_policy", "parse_policy"]

# A policy file is a handful of lines; anything this big is a mistake, not a policy.
MAX_POLICY_BYTES = 1024 * 1024

_FLAGS = ("deny_privileged", "deny_host_network", "deny_docker_socket")
_LISTS = ("allowed_host_paths", "denied_host_paths", "allowed_registries")
KNOWN_KEYS = _FLAGS + _LISTS


class PolicyFileError(Exception):
    """The policy file cannot be used; ``str()`` names the file and every problem."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        detail = problems[0] if len(problems) == 1 else "; ".join(problems)
        super().__init__(f"policy file {path} is not usable, so the plan is refused: {detail}")


@dataclass(frozen=True)
class Policy:
    """The rules of one policy file; ``None`` for an allow-list means the rule is not in force."""

    deny_privileged: bool = False
    deny_host_network: bool = False
    deny_docker_socket: bool = False
    #: Roots a bind source must be inside (None: any; empty: no bind mounts at all).
    allowed_host_paths: tuple[str, ...] | None = None
    allowed_registries: tuple[str, ...] | None = None
    #: Roots a bind source may neither be inside nor above; they win over ``allowed_host_paths``.
    denied_host_paths: tuple[str, ...] = ()


def load_policy(path: str) -> Policy:
    """Read and check the policy file at ``path``; raise PolicyFileError on any problem."""
    try:
        size = os.path.getsize(path)
        if size > MAX_POLICY_BYTES:
            raise PolicyFileError(path, [f"it is {size} bytes, more than the {MAX_POLICY_BYTES} allowed"])
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise PolicyFileError(path, [f"cannot read it: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyFileError(path, [f"it is not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyFileError(path, [f"invalid YAML: {_describe_yaml_error(exc)}"]) from exc
    return parse_policy(data, source=path)


def parse_policy(data: Any, *, source: str) -> Policy:
    """A Policy from already-parsed YAML data; ``source`` names the file in errors."""
    if data is None:
        # An empty file is more likely truncated than meant: "{}" says "no rules" explicitly.
        raise PolicyFileError(source, ["it is empty (write {} for a policy without rules)"])
    if not isinstance(data, dict):
        raise PolicyFileError(source, [f"expected a mapping of rules, found {_type_name(data)}"])
    problems: list[str] = []
    unknown = sorted(str(k) for k in data if k not in KNOWN_KEYS)
    if unknown:
        problems.append(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                        f"(known: {', '.join(KNOWN_KEYS)})")
    values: dict[str, Any] = {}
    for key in _FLAGS:
        if key in data:
            if isinstance(data[key], bool):
                values[key] = data[key]
            else:
                problems.append(f"{key} must be true or false, found {_type_name(data[key])}")
    for key in ("allowed_host_paths", "denied_host_paths"):
        if key in data:
            values[key] = _string_list(data, key, problems, absolute=True)
    if "allowed_registries" in data:
        values["allowed_registries"] = _string_list(data, "allowed_registries", problems, absolute=False)
    if problems:
        raise PolicyFileError(source, problems)
    return Policy(**values)


def _string_list(data: dict, key: str, problems: list[str], *, absolute: bool) -> tuple[str, ...]:
    value = data[key]
    if not isinstance(value, list):
        # null or a bare string is ambiguous: "allow none" and "allow any" are both spelled explicitly.
        hint = "use [] to allow none, or leave the key out to allow any" if key.startswith("allowed") \
            else "leave the key out to deny none"
        problems.append(f"{key} must be a list ({hint}), found {_type_name(value)}")
        return ()
    items: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{key}[{index}] must be a non-empty string, found {_type_name(item)}")
        elif absolute and not os.path.isabs(item):
            problems.append(f"{key}[{index}] must be an absolute path, found {item!r}")
        else:
            items.append(item.strip())
    return tuple(items)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)
