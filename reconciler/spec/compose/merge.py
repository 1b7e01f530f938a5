"""Compose's override rules: several ``-f`` files merged into one project, positions kept.

``docker compose -f compose.yaml -f compose.prod.yaml`` reads the files in
order and merges each into what came before by the rules of the Compose
specification's merge.md: mappings merge key by key (the later file wins for
a scalar), ``command``/``entrypoint``/``healthcheck.test`` are replaced
whole, ``ports``/``expose``/``dns``/… keep each value once, ``volumes``
merge by target path, ``secrets``/``configs`` by source, and the list forms
of ``environment``/``labels``/… are read as mappings first so a later file
can override one variable. Every value keeps the position of the file it came
from, so an error in the merged project still names that file's line.

A later file's ``!reset`` value removes the key from what came before, and
its ``!override`` value replaces it whole rather than merging with it
(``clear_tagged`` before ``merge_into``): Compose's two merge tags.

Data and positions travel as a pair: ``data`` (plain YAML values) and
``marks`` (path tuple → Mark), as the YAML reader returns them.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..locations import Mark

__all__ = ["clear_tagged", "merge_into", "normalize_service"]

Marks = dict[tuple, Mark]

#: Lists Compose reads as mappings ("K=V" items, or for extra_hosts "host:ip").
MAPPING_LISTS = {"environment": "=", "labels": "=", "annotations": "=", "sysctls": "="}
#: Lists whose later items replace earlier ones with the same key (the function gives the key).
_UNIQUE_BY_VALUE = frozenset({"ports", "expose", "dns", "dns_search", "dns_opt", "cap_add", "cap_drop",
                              "devices", "env_file", "external_links", "group_add", "links", "security_opt",
                              "tmpfs", "profiles", "extra_hosts"})
_REPLACED = frozenset({"command", "entrypoint"})
#: Keys whose one-string form means a list of that one string (so a later list merges with it).
_STRING_OR_LIST = ("env_file", "dns", "dns_search", "tmpfs", "expose")


def _volume_target(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target")
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _file_source(item: Any) -> Any:
    return item.get("source") if isinstance(item, dict) else item


_UNIQUE_BY_KEY = {"volumes": _volume_target, "secrets": _file_source, "configs": _file_source}


def normalize_service(service: dict, marks: Marks, path: tuple) -> None:
    """Rewrite the list forms that Compose merges as mappings into mappings, in place, marks moved along.

    ``environment: ["A=1", "B"]`` becomes ``{A: "1", B: None}``, ``depends_on:
    [db]`` becomes ``{db: {condition: service_started}}``, ``networks: [a]``
    becomes ``{a: None}``, and the same for ``build.args`` and ``labels``;
    ``build: ./dir`` becomes ``{context: ./dir}`` and ``dns: 1.1.1.1`` a list.
    """
    for key, separator in MAPPING_LISTS.items():
        _list_to_mapping(service, key, separator, marks, path)
    for key in _STRING_OR_LIST:
        if isinstance(service.get(key), (str, int)):
            service[key] = [service[key]]
            _move(marks, (*path, key), (*path, key, 0))
    build = service.get("build")
    if isinstance(build, str):
        service["build"] = build = {"context": build}
        _move(marks, (*path, "build"), (*path, "build", "context"))
    if isinstance(build, dict):
        for key in ("args", "labels"):
            _list_to_mapping(build, key, "=", marks, (*path, "build"))
    if isinstance(service.get("depends_on"), list):
        _names_to_mapping(service, "depends_on", {"condition": "service_started"}, marks, path)
    if isinstance(service.get("networks"), list):
        _names_to_mapping(service, "networks", None, marks, path)


def _list_to_mapping(parent: dict, key: str, separator: str, marks: Marks, path: tuple) -> None:
    items = parent.get(key)
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return  # a malformed value is left for the translator to report
    mapping: dict[str, Any] = {}
    base = (*path, key)
    moved = {}
    for index, item in enumerate(items):
        name, found, value = item.partition(separator)
        mapping[name.strip()] = value if found else None
        if (*base, index) in marks:
            moved[(*base, name.strip())] = marks[(*base, index)]
    parent[key] = mapping
    _drop(marks, base, keep_self=True)
    marks.update(moved)


def _move(marks: Marks, old: tuple, new: tuple) -> None:
    """The value at ``old`` is now at ``new`` too (one level deeper): give it the same position."""
    if old in marks:
        marks[new] = marks[old]


def _names_to_mapping(parent: dict, key: str, value: Any, marks: Marks, path: tuple) -> None:
    base = (*path, key)
    names = [str(n) for n in parent[key]]
    moved = {(*base, n): marks[(*base, i)] for i, n in enumerate(names) if (*base, i) in marks}
    parent[key] = {n: copy.deepcopy(value) for n in names}
    _drop(marks, base, keep_self=True)
    marks.update(moved)


def merge_into(base: dict, base_marks: Marks, over: dict, over_marks: Marks, path: tuple = ()) -> None:
    """Merge the mapping ``over`` (at ``path``) into ``base`` in place, by Compose's override rules."""
    for key, value in over.items():
        here = (*path, key)
        old = base.get(key)
        if key not in base or _replaced(here) or type(old) is not type(value) or not isinstance(value, (dict, list)):
            _put(base, base_marks, key, copy.deepcopy(value), over_marks, here)
        elif isinstance(value, dict):
            merge_into(old, base_marks, value, over_marks, here)
        else:
            _merge_list(old, base_marks, value, over_marks, here)


def clear_tagged(data: dict, marks: Marks, tags: Mapping[tuple, str]) -> None:
    """Remove from ``data`` each value a later file tags ``!reset`` or ``!override``, before merging that file.

    Only keys of mappings are removed; a tagged list item (Compose does not
    remove those either) only leaves the later file's own list.
    """
    for path in tags:
        parent: Any = data
        for step in path[:-1]:
            parent = parent.get(step) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent:
            del parent[path[-1]]
            _drop(marks, path)


def _replaced(path: tuple) -> bool:
    service_key = path[2] if len(path) == 3 and path[0] == "services" else None
    return service_key in _REPLACED or path[-2:] == ("healthcheck", "test")


def _merge_list(old: list, base_marks: Marks, new: list, over_marks: Marks, path: tuple) -> None:
    name = path[-1] if len(path) == 3 and path[0] == "services" else None
    key_of = _UNIQUE_BY_KEY.get(name) if name else None
    if key_of is None and name in _UNIQUE_BY_VALUE:
        key_of = _identity
    for index, item in enumerate(new):
        at = len(old)
        if key_of is not None:
            wanted = key_of(item)
            at = next((i for i, existing in enumerate(old) if key_of(existing) == wanted), len(old))
        if at == len(old):
            old.append(None)
        _drop(base_marks, (*path, at))
        old[at] = copy.deepcopy(item)
        _copy(over_marks, (*path, index), base_marks, (*path, at))


def _identity(item: Any) -> Any:
    return repr(item)


def _put(parent: dict, marks: Marks, key: str, value: Any, source_marks: Marks, path: tuple) -> None:
    parent[key] = value
    _drop(marks, path)
    _copy(source_marks, path, marks, path)


def _drop(marks: Marks, prefix: tuple, *, keep_self: bool = False) -> None:
    size = len(prefix)
    for path in [p for p in marks if p[:size] == prefix and (len(p) > size or not keep_self)]:
        del marks[path]


def _copy(source: Marks, prefix: tuple, target: Marks, to: tuple) -> None:
    size = len(prefix)
    for path, mark in source.items():
        if path[:size] == prefix:
            target[(*to, *path[size:])] = mark
