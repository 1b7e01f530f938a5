"""One vocabulary for kinds: each ``Kind`` knows its spec section and driver role, and nobody else keeps a table.

The mapping kind ↔ section ↔ role was once written in ten modules; the scan
below fails when a module outside ``reconciler/model`` spells it again.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

import reconciler
from reconciler.defaults import DEFAULT_DRIVERS
from reconciler.model import DesiredState, Kind, LiveObject, LiveState, NetworkSpec

ROOT = Path(reconciler.__file__).parent.parent
MODEL = ROOT / "reconciler" / "model"


def test_each_kind_knows_its_section_and_role_in_creation_order() -> None:
    assert [(k, k.value, k.section, k.role) for k in Kind] == [
        (Kind.IMAGE, "image", "images", "registry"),
        (Kind.NETWORK, "network", "networks", "network"),
        (Kind.VOLUME, "volume", "volumes", "storage"),
        (Kind.CONTAINER, "container", "containers", "runtime"),
    ]


def test_kind_stays_a_str_enum_known_by_its_value() -> None:
    assert Kind.IMAGE == "image" and isinstance(Kind.VOLUME, str)
    assert Kind("network") is Kind.NETWORK
    assert {Kind.CONTAINER: 1}["container"] == 1  # labels and saved plans hold the plain text
    assert pickle.loads(pickle.dumps(Kind.VOLUME)) is Kind.VOLUME


def test_lookup_by_section() -> None:
    for kind in Kind:
        assert Kind.from_section(kind.section) is kind
    with pytest.raises(ValueError, match="configs"):
        Kind.from_section("configs")


def test_every_section_has_a_default_driver() -> None:
    assert list(DEFAULT_DRIVERS) == [kind.section for kind in Kind]


def test_desired_and_live_state_answer_by_kind() -> None:
    net = NetworkSpec(key="web", name="demo_web")
    desired = DesiredState(stack="demo", networks={"web": net})
    assert desired.section(Kind.NETWORK) == {"web": net} and desired.section(Kind.IMAGE) == {}
    obj = LiveObject(kind=Kind.NETWORK, name="demo_web", id="n1")
    live = LiveState(networks={"demo_web": obj})
    assert live.of(Kind.NETWORK) == {"demo_web": obj} and live.of(Kind.CONTAINER) == {}


_Q = r"[\"']"
_SECTION = rf"{_Q}(?:images|networks|volumes|containers){_Q}"
_ROLE = rf"{_Q}(?:registry|network|storage|runtime){_Q}"
_NAME = rf"{_Q}(?:image|network|volume|container){_Q}"
_MEMBER = r"\bKind\.[A-Z]+\b"
#: What a kind ↔ section ↔ role table looks like, in a dict, a tuple or a row of a loop.
_TABLES = [
    rf"{_MEMBER}\s*[:,]\s*(?:{_SECTION}|{_ROLE})",  # {Kind.IMAGE: "images"}, (Kind.IMAGE, "registry")
    rf"(?:{_SECTION}|{_ROLE})\s*[:,]\s*{_MEMBER}",  # ("registry", Kind.IMAGE)
    rf"{_SECTION}\s*:[^,\n]*{_MEMBER}",  # {"images": registry.names(Kind.IMAGE)}
    rf"{_SECTION}\s*:\s*(?:{_NAME}|{_ROLE})",  # {"images": "image"}, {"volumes": "storage"}
    rf"(?:{_NAME}|{_ROLE})\s*:\s*{_SECTION}",
    rf"{_SECTION}\s*,\s*{_SECTION}\s*,\s*{_SECTION}",  # ("images", "networks", "volumes", ...)
]


def kind_tables(text: str) -> list[str]:
    """Every place in ``text`` that spells a piece of the kind ↔ section ↔ role table."""
    return [match.group(0) for pattern in _TABLES for match in re.finditer(pattern, text)]


def test_the_scan_recognises_the_tables_it_replaced() -> None:
    for table in ['_SECTION = {Kind.IMAGE: "images", Kind.NETWORK: "networks"}',
                  '_ROLES = {\n    Kind.IMAGE: "registry",\n}',
                  '_ROLES = (("registry", Kind.IMAGE), ("network", Kind.NETWORK))',
                  'for kind, section, specs in ((Kind.IMAGE, "images", desired.images),',
                  'return {\n    "images": self.registry.names(Kind.IMAGE),\n}',
                  '_DEFS = {"images": "image", "networks": "network"}',
                  "_ROLE = {'images': 'registry'}",
                  'SECTIONS = ("images", "networks", "volumes", "containers", "configs")']:
        assert kind_tables(table), table
    for fine in ['DEFAULT_DRIVERS[Kind.IMAGE.section]', 'data.get("containers")', '{"image": None}',
                 'key in ("name", "services", "networks", "volumes", "configs", "secrets")',
                 '_FLAGS = {Kind.NETWORK: "--recreate-networks"}', 'if kind == "image":']:
        assert not kind_tables(fine), fine


def test_no_module_outside_the_model_keeps_a_kind_table() -> None:
    found = {}
    for folder in ("reconciler", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if MODEL in path.parents:
                continue
            tables = kind_tables(path.read_text())
            if tables:
                found[str(path.relative_to(ROOT))] = tables
    assert not found, f"ask Kind (.section, .role, from_section) instead of a table: {found}"
