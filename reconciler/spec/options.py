"""Driver options against each driver's own JSON Schema, and the stack schema with them merged in.

The stack schema says only that ``options:`` maps names to scalars: which names
and values a driver takes is the driver's to declare (``ObjectDriver.options_schema``),
and plugins come and go. So validation checks each entry's options against
the schema of the driver that entry uses (its ``driver:``, else the default
from ``reconciler.defaults``), and ``reconcile schema`` prints the stack schema
with every loaded driver's options schema merged in, for editors.

``drivers`` here is what ``Reconciler.driver_catalog`` returns: section →
driver name → facts, of which ``"options"`` is the schema (absent: any options).
What a schema cannot say, a driver checks with the one ``check`` it registers
(``reconciler.drivers.Check``), run on the built spec (``Reconciler.option_problems``).
"""
from __future__ import annotations

import copy
import functools
import json
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping

from ..defaults import ARCHIVE_DRIVER, DEFAULT_DRIVERS, driver_for
from ..hashing import canonical_json
from ..model import Kind

if TYPE_CHECKING:
    from ..model import DesiredState

__all__ = ["IN_PLACE", "OPTION_SECTIONS", "in_place_options", "mark_in_place", "merged_schema", "option_findings",
           "option_schemas"]

#: The mark on an options schema's property that lets it change without recreating the object.
IN_PLACE = ("x-reconciler-change", "in-place")

#: The sections whose entries take driver options (containers' runtime takes none).
OPTION_SECTIONS = tuple(kind.section for kind in Kind if kind is not Kind.CONTAINER)
_Finding = tuple[tuple, str]


def option_schemas(drivers: Mapping[str, Collection[str]] | None) -> dict[str, dict[str, Any]]:
    """section → driver → options schema, for the drivers that declare one."""
    out: dict[str, dict[str, Any]] = {}
    for section in OPTION_SECTIONS:
        names = (drivers or {}).get(section)
        if isinstance(names, Mapping):
            declared = {name: facts["options"] for name, facts in names.items()
                        if isinstance(facts, Mapping) and facts.get("options") is not None}
            if declared:
                out[section] = declared
    return out


def option_findings(data: Any, failed: set[tuple], schemas: Mapping[str, Mapping[str, Any]],
                    explain: Callable[[Any], list[_Finding]]) -> list[_Finding]:
    """Every option an entry's driver refuses, at ``(section, key, "options", ...)``.

    Entries that already failed the stack schema are skipped. ``explain``
    turns one jsonschema error into findings in words (``validate._explain``).
    """
    out: list[_Finding] = []
    for section, by_driver in schemas.items():
        entries = data.get(section) if isinstance(data, dict) else None
        for key, entry in (entries.items() if isinstance(entries, dict) else ()):
            if not isinstance(entry, dict) or any(p[:2] == (section, key) for p in failed):
                continue
            name = driver_for(section, entry)
            if name not in by_driver:
                continue
            where = (section, key, "options")
            out += [((*where, *path), message)
                    for path, message in _findings(by_driver[name], entry.get("options") or {}, explain,
                                                   f"the {Kind.from_section(section).role} driver {name!r}")]
    return out


def _findings(schema: Any, options: dict, explain: Callable[[Any], list[_Finding]], driver: str) -> list[_Finding]:
    try:
        validator = _validator(canonical_json(schema))
    except Exception as exc:  # the plugin's schema is broken, not the user's spec
        return [((), f"{driver} declares an invalid options schema ({getattr(exc, 'message', exc)}); "
                     "report it to the plugin's author")]
    out = []
    for error in validator.iter_errors(options):
        if error.schema.get("writeOnly") if isinstance(error.schema, dict) else False:
            out.append((tuple(error.absolute_path), "invalid value (not shown: the option is write-only)"))
            continue
        for path, message in explain(error):
            if message.startswith("unknown field "):
                message = f"{driver} has no option " + message.removeprefix("unknown field ")
                message = message.replace("(expected one of: )", "(it takes none)")
            out.append((path, message))
    return out


@functools.lru_cache(maxsize=64)
def _validator(schema_text: str) -> Any:
    import jsonschema  # late: only a spec not already known valid pays for it

    schema = json.loads(schema_text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def merged_schema(base: Mapping[str, Any], drivers: Mapping[str, Collection[str]] | None) -> dict[str, Any]:
    """The stack schema ``base`` with each driver's options schema applied where that driver is used."""
    schema = copy.deepcopy(dict(base))
    for section, by_driver in option_schemas(drivers).items():
        definition = schema["$defs"][Kind.from_section(section).value]  # the stack schema names them by kind
        rules = [{"if": _uses(section, name), "then": {"properties": {"options": options}}}
                 for name, options in sorted(by_driver.items())]
        definition["allOf"] = [*definition.get("allOf", []), *rules]
    return schema


def _uses(section: str, name: str) -> dict[str, Any]:
    """A schema matching the entries of ``section`` that driver ``name`` handles (see ``driver_for``)."""
    named = {"required": ["driver"], "properties": {"driver": {"const": name}}}
    implicit: list[dict[str, Any]] = []
    if section == "images" and name == ARCHIVE_DRIVER:
        implicit.append({"required": ["archive"], "not": {"required": ["driver"]}})
    if name == DEFAULT_DRIVERS[section]:
        unnamed: dict[str, Any] = {"not": {"required": ["driver"]}}
        if section == "images":
            unnamed = {"not": {"anyOf": [{"required": ["driver"]}, {"required": ["archive"]}]}}
        implicit.append(unnamed)
    return {"anyOf": [named, *implicit]} if implicit else named


def in_place_options(schema: Mapping[str, Any] | None) -> frozenset[str]:
    """The options a schema marks as changeable in place (``IN_PLACE``)."""
    properties = (schema or {}).get("properties") or {}
    return frozenset(name for name, prop in properties.items()
                     if isinstance(prop, Mapping) and prop.get(IN_PLACE[0]) == IN_PLACE[1])


def mark_in_place(desired: DesiredState, drivers: Mapping[str, Collection[str]]) -> DesiredState:
    """``desired`` with each network's and volume's ``in_place`` options filled from its driver's schema."""
    from dataclasses import replace

    schemas = option_schemas(drivers)
    changed = {}
    for kind in (Kind.NETWORK, Kind.VOLUME):
        by_driver = schemas.get(kind.section, {})
        marked = {name: replace(spec, in_place=in_place_options(by_driver.get(spec.driver)))
                  for name, spec in desired.section(kind).items()}
        if any(marked[name].in_place for name in marked):
            changed[kind.section] = marked
    return replace(desired, **changed) if changed else desired
