"""``images.<key>.update`` and Compose's ``x-reconcile.update``: read into ImageSpec, checked at file:line."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.model import PolicyKind, UpdatePolicy
from reconciler.spec import load_desired

STACK = """\
name: shop
images:
  app:
    # the automation rewrites the tag below
    ref: 127.0.0.1:5000/team/app:1.4.0
    update:
      semver: ">=1.4 <2"
      min_age: 1h
      pin: digest
  nightly:
    ref: "127.0.0.1:5000/team/nightly:2026.11.30-abcdef"
    update: {pattern: '^(?P<ts>\\d{4}\\.\\d{2}\\.\\d{2})-[0-9a-f]+$$', extract: '$$ts'}
  tool:
    build: {context: .}
    ref: shop/tool:dev
  plain:
    build: {context: .}
containers:
  web: {image: app}
  cron: {image: nightly}
"""


def write(directory: Path, name: str, text: str) -> Path:
    (directory / name).write_text(text, encoding="utf-8")
    (directory / "Dockerfile").write_text("FROM busybox\n")
    return directory / name


def problems(path: Path) -> list:
    with pytest.raises(SpecError) as caught:
        load_desired([path], environ={})
    return caught.value.problems


def test_the_policy_and_where_the_ref_is_written_reach_the_image_spec(tmp_path):
    path = write(tmp_path, "stack.yaml", STACK)
    images = load_desired([path], environ={}).images
    assert images["app"].update == UpdatePolicy(kind=PolicyKind.SEMVER, semver=">=1.4 <2", min_age=3600.0,
                                                pin_digest=True)
    assert images["app"].ref_at == (str(path.resolve()), 5, 10)
    assert images["nightly"].update.pattern == r"^(?P<ts>\d{4}\.\d{2}\.\d{2})-[0-9a-f]+$"
    assert images["nightly"].update.extract == "$ts"
    assert images["nightly"].ref_at == (str(path.resolve()), 11, 10)  # at the opening quote, as the loader marks it
    lines = path.read_text().splitlines()
    for key in ("app", "nightly"):
        file, line, col = images[key].ref_at
        assert lines[line - 1][col - 1:].lstrip("'\"").startswith(images[key].ref)
    assert images["tool"].ref_at == (str(path.resolve()), 15, 10) and images["tool"].update is None
    assert images["plain"].ref_at is None  # a build's default ref is written nowhere


def test_a_policy_changes_no_hash_and_no_plan(tmp_path):
    with_policy = load_desired([write(tmp_path, "stack.yaml", STACK)], environ={})
    without = STACK.replace('    update:\n      semver: ">=1.4 <2"\n      min_age: 1h\n      pin: digest\n', "")
    other = tmp_path / "other"
    other.mkdir()
    plain = load_desired([write(other, "stack.yaml", without)], environ={})
    assert with_policy.images["app"] == plain.images["app"]
    assert {k: c.config_hash for k, c in with_policy.containers.items()} == \
        {k: c.config_hash for k, c in plain.containers.items()}


def test_a_ref_made_from_a_variable_has_no_position(tmp_path):
    path = write(tmp_path, "stack.yaml", "images:\n  app: {ref: '${REGISTRY}/app:1'}\ncontainers:\n  web: {image: app}\n")
    assert load_desired([path], environ={"REGISTRY": "r:5000"}).images["app"].ref_at is None


def test_every_bad_policy_is_reported_at_its_field_line_at_once(tmp_path):
    path = write(tmp_path, "stack.yaml", """\
images:
  a:
    ref: r/a:1.0.0
    update:
      semver: ">=1.4 <<2"
  b:
    ref: r/b:2026.01.01
    update:
      pattern: '(?P<ts>.*)'
      extract: $$date
  c:
    build: {context: .}
    ref: r/c:1.0.0
    update: {semver: ^1}
  d:
    ref: r/d@sha256:0123456789012345678901234567890123456789012345678901234567890123
    update: {semver: ^1}
  e:
    ref: ${REGISTRY}/e:1.0.0
    update: {digest: true}
  f:
    ref: r/f:1.0.0
    update: {semver: ^1, pattern: x}
  g:
    ref: r/g:1.0.0
    update: {min_age: 1h}
""")
    found = {(p.line, p.path): p.message for p in problems(path)}
    assert all(p.file == str(path) for p in problems(path))
    assert "invalid range '>=1.4 <<2'" in found[(5, "images.a.update.semver")]
    assert "no group named 'date'" in found[(10, "images.b.update.extract")]
    assert "comes from build" in found[(14, "images.c.update")]
    assert "needs a ref with a tag" in found[(16, "images.d.ref")]
    assert "not made from ${VAR}" in found[(19, "images.e.ref")]
    assert "exactly one of semver, pattern or digest" in found[(23, "images.f.update.pattern")]
    assert "missing required field" in found[(26, "images.g.update")]
    assert len(found) == 7


def test_schema_errors_in_update_name_the_field(tmp_path):
    path = write(tmp_path, "stack.yaml", "images:\n  a:\n    ref: r/a:1.0.0\n    update:\n      semver: ^1\n"
                                         "      min_age: soon\n      order: random\n")
    found = {(p.line, p.path) for p in problems(path)}
    assert {(6, "images.a.update.min_age"), (7, "images.a.update.order")} <= found


COMPOSE = """\
services:
  web:
    image: 127.0.0.1:5000/team/app:1.4.0
    x-reconcile:
      update:
        semver: ^1.4
        interval: 1m
  db:
    image: postgres:16
"""


def test_compose_x_reconcile_update_round_trip(tmp_path):
    path = write(tmp_path, "compose.yaml", COMPOSE)
    desired = load_desired([path], environ={})
    web = desired.images["web"]
    assert web.ref == "127.0.0.1:5000/team/app:1.4.0"
    assert web.update == UpdatePolicy(kind=PolicyKind.SEMVER, semver="^1.4", interval=60.0)
    assert web.ref_at == (str(path.resolve()), 3, 12)
    assert [c.image_ref for c in desired.containers.values() if c.image_key == "web"] == [web.ref]
    assert "db" not in desired.images  # no policy: the image stays inline, as before


def test_compose_errors_point_into_the_compose_file(tmp_path):
    path = write(tmp_path, "compose.yaml", """\
services:
  web:
    image: r/app:1.0.0
    x-reconcile:
      update: {semver: ">=1 <<2"}
  built:
    build: .
    x-reconcile:
      update: {semver: ^1}
  other:
    image: r/other:1.0.0
    x-reconcile: {updates: {semver: ^1}}
""")
    with pytest.raises(SpecError) as caught:
        load_desired([path], environ={})
    found = {(p.line, p.path): p.message for p in caught.value.problems}
    assert all(p.file.endswith("compose.yaml") for p in caught.value.problems)
    assert "update moves the tag of image:" in found[(9, "services.built.x-reconcile.update")]
    assert "unknown x-reconcile key 'updates'" in found[(12, "services.other.x-reconcile.updates")]


def test_compose_policy_errors_name_the_compose_key_and_line(tmp_path):
    path = write(tmp_path, "compose.yaml", "services:\n  web:\n    image: r/app:1.0.0\n    x-reconcile:\n"
                                           "      update:\n        semver: '>=1 <<2'\n")
    found = {(p.line, p.path): p.message for p in problems(path)}
    assert "invalid range" in found[(6, "services.web.x-reconcile.update.semver")]
