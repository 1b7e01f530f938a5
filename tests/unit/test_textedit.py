"""replace_value: one scalar's text changes, in its own style; every other character of the file stays."""
from __future__ import annotations

import pytest

from reconciler.errors import SpecError
from reconciler.spec.textedit import EditRefused, replace_value
from reconciler.spec.yamlsafe import compose_file

STACK = """\
# The shop's web tier. Bump tags with care: see RUNBOOK.md.
stack: shop

images:
  web:
    ref: registry.example.com/shop/web:1.4.0   # pinned by automation
    update: {semver: ">=1.4 <2"}
  worker:
    ref: 'registry.example.com/shop/worker:2026.11.30-abcdef'
  proxy:
    ref: "nginx:1.25.3"	# a tab before this comment

containers:
  web:
    image: web
    environment:
      SIDECARS: [ "a:1", b:2 ]   \n\
"""


def _mark(text: str, path: tuple) -> tuple[int, int]:
    """Where the loader says the value at ``path`` starts (the positions the automation is given)."""
    mark = compose_file(text, "stack.yaml").marks[path]
    return mark.line, mark.col


def _edit(text: str, path: tuple, old: str, new: str) -> str:
    return replace_value(text, *_mark(text, path), old, new, filename="stack.yaml")


def test_a_plain_value_changes_and_nothing_else_does():
    edited = _edit(STACK, ("images", "web", "ref"), "registry.example.com/shop/web:1.4.0",
                   "registry.example.com/shop/web:1.4.1")
    assert edited == STACK.replace("web:1.4.0   #", "web:1.4.1   #")
    assert compose_file(edited, "stack.yaml").data["images"]["web"]["ref"].endswith(":1.4.1")


def test_single_and_double_quotes_are_kept():
    edited = _edit(STACK, ("images", "worker", "ref"), "registry.example.com/shop/worker:2026.11.30-abcdef",
                   "registry.example.com/shop/worker:2026.12.01-0123ab")
    assert edited == STACK.replace("'registry.example.com/shop/worker:2026.11.30-abcdef'",
                                   "'registry.example.com/shop/worker:2026.12.01-0123ab'")
    edited = _edit(STACK, ("images", "proxy", "ref"), "nginx:1.25.3", "nginx:1.25.4")
    assert edited == STACK.replace('"nginx:1.25.3"\t#', '"nginx:1.25.4"\t#')


def test_a_flow_sequence_item_and_a_flow_map_value_change_in_place():
    items = ("containers", "web", "environment", "SIDECARS")
    edited = _edit(STACK, (*items, 1), "b:2", "b:3")
    assert edited == STACK.replace("b:2 ]   \n", "b:3 ]   \n")  # the trailing spaces stay
    edited = _edit(STACK, (*items, 0), "a:1", "a:10")
    assert edited == STACK.replace('[ "a:1",', '[ "a:10",')
    flow = "images: {web: {ref: 'a:1', pull: always}}\n"
    assert _edit(flow, ("images", "web", "ref"), "a:1", "a:2") == "images: {web: {ref: 'a:2', pull: always}}\n"


def test_a_plain_value_is_quoted_only_when_it_would_not_stay_the_same_string():
    text = "a: x\nb: [x, y]\n"
    assert replace_value(text, 1, 4, "x", "1.10") == "a: '1.10'\nb: [x, y]\n"  # a number, plain
    assert replace_value(text, 1, 4, "x", "true") == "a: 'true'\nb: [x, y]\n"
    assert replace_value(text, 1, 4, "x", "v #2") == "a: 'v #2'\nb: [x, y]\n"  # a comment, plain
    assert replace_value(text, 1, 4, "x", "it's") == "a: it's\nb: [x, y]\n"
    assert replace_value(text, 2, 5, "x", "p, q") == "a: x\nb: ['p, q', y]\n"  # two items, plain
    assert replace_value(text, 2, 5, "x", "1.2.3") == "a: x\nb: [1.2.3, y]\n"
    assert replace_value("a: 'x'\n", 1, 4, "x", "it's") == "a: 'it''s'\n"
    assert replace_value('a: "x"\n', 1, 4, "x", 'say "hi"') == 'a: "say \\"hi\\""\n'


def test_what_surrounds_the_value_stays_byte_for_byte():
    crlf = "\ufeff# bom and CRLF\r\nimages:\r\n  web:\r\n    ref: nginx:1.4.0 # c\r\n\tnot: yaml-tab-in-comment\r\n"
    crlf = crlf.replace("\tnot: yaml-tab-in-comment\r\n", "# \ttab\r\n")
    assert replace_value(crlf, 4, 10, "nginx:1.4.0", "nginx:1.4.1") == crlf.replace("1.4.0", "1.4.1")
    no_newline = "a: 1\nimage: nginx:1.4.0"
    assert replace_value(no_newline, 2, 8, "nginx:1.4.0", "nginx:1.5.0") == "a: 1\nimage: nginx:1.5.0"
    # Its line and column are the loader's, a byte order mark and CRLF notwithstanding.
    assert _mark(crlf, ("images", "web", "ref")) == (4, 10)


def test_a_compose_file_keeps_its_comments_anchors_and_order():
    compose = """\
x-common: &common
  restart: unless-stopped   # everywhere

services:
  # the API, behind the proxy
  api:
    <<: *common
    image: ghcr.io/acme/api:v2.3.1
    x-reconcile:
      update: {semver: "^2"}
  db:
    image: "postgres:16.1"
    environment: {POSTGRES_DB: app}
"""
    mark = compose_file(compose, "compose.yaml", merge_tags=True).marks[("services", "api", "image")]
    edited = replace_value(compose, mark.line, mark.col, "ghcr.io/acme/api:v2.3.1", "ghcr.io/acme/api:v2.4.0",
                           filename="compose.yaml")
    assert edited == compose.replace("v2.3.1", "v2.4.0")
    edited = replace_value(compose, 12, 12, "postgres:16.1", "postgres:16.2")
    assert edited == compose.replace('"postgres:16.1"', '"postgres:16.2"')


def test_the_position_image_specs_record_names_the_value_quoted_or_not(tmp_path):
    from reconciler.spec import load_desired

    text = ("name: shop\nimages:\n  app:\n    ref: reg.example/app:1.4.0   # moved by automation\n"
            "    update: {semver: '>=1.4 <2'}\n  job:\n    ref: \"reg.example/job:2.0.0\"\n"
            "    update: {semver: '^2'}\ncontainers:\n  web: {image: app}\n  cron: {image: job}\n")
    (tmp_path / "stack.yaml").write_bytes(text.encode())
    images = load_desired([tmp_path / "stack.yaml"], environ={}).images
    _, line, col = images["job"].ref_at  # past the opening quote
    edited = replace_value(text, line, col, "reg.example/job:2.0.0", "reg.example/job:2.1.0")
    assert edited == text.replace('"reg.example/job:2.0.0"', '"reg.example/job:2.1.0"')
    _, line, col = images["app"].ref_at
    edited = replace_value(edited, line, col, "reg.example/app:1.4.0", "reg.example/app:1.4.1")
    assert edited == text.replace("job:2.0.0", "job:2.1.0").replace("app:1.4.0", "app:1.4.1")
    with pytest.raises(EditRefused, match="no value starts here"):
        replace_value(text, line, col + 1, "reg.example/app:1.4.0", "x")  # inside a plain value


def test_the_same_value_leaves_the_text_as_it_is():
    for text, line, col, value in [(STACK, 6, 10, "registry.example.com/shop/web:1.4.0"), ("a: 'x'\n", 1, 4, "x"),
                                   ('a: "x"\n', 1, 4, "x"), ("a: [x]", 1, 5, "x")]:
        assert replace_value(text, line, col, value, value) is text


def test_edits_compose_and_applied_twice_change_nothing_more():
    once = replace_value("a: x:1\n", 1, 4, "x:1", "x:2")
    assert replace_value(once, 1, 4, "x:2", "x:2") == once == "a: x:2\n"


@pytest.mark.parametrize("text, line, col, why", [
    ("a: ${TAG}\n", 1, 4, "written with ${…}: change the variable instead"),
    ("a: nginx:${TAG:-1.4}\n", 1, 4, "written with ${…}: change the variable instead"),
    ('a: "nginx:$TAG"\n', 1, 4, "written with ${…}: change the variable instead"),
    ("a: x$$y\n", 1, 4, "escaped '$$'"),
    ('a: "nginx:\\x31.4"\n', 1, 4, "double-quoted string with escapes"),
    ("a: |\n  x\n", 1, 4, "block scalar (|)"),
    ("a: >-\n  x\n", 1, 4, "block scalar (>)"),
    ("a: x\n  y\n", 1, 4, "written over several lines"),
    ("a: 'x\n  y'\n", 1, 4, "written over several lines"),
    ("a: &tag x\nb: *tag\n", 2, 4, "is an alias (*tag)"),
    ("a: &tag x\nb: *tag\n", 1, 4, "is anchored (&tag)"),
    ("a: !!str x\n", 1, 4, "tag !!str"),
    ("a: x\n", 1, 1, "is a mapping key"),
    ("a:\n  b: x\n", 2, 3, "is a mapping key"),
    ("a:\n- x\n", 2, 1, "a list starts here"),
    ("a: x\n", 1, 5, "no value starts here"),
    ("a: x\n", 3, 1, "no value starts here"),
    ("a: [x\n", 1, 5, "not valid YAML"),
])
def test_what_is_not_written_literally_is_refused_naming_the_place(text, line, col, why):
    with pytest.raises(EditRefused) as refused:
        replace_value(text, line, col, "x", "y", filename="stack.yaml")
    assert why in str(refused.value) and str(refused.value).startswith(f"stack.yaml:{line}:{col}: ")
    assert isinstance(refused.value, SpecError) and refused.value.reason in str(refused.value)


def test_a_value_that_moved_on_is_refused_so_the_caller_reads_it_again():
    with pytest.raises(EditRefused, match=r"stack.yaml:6:10: holds 'registry.example.com/shop/web:1.4.0', "
                                          r"not 'registry.example.com/shop/web:1.3.9': the file changed"):
        replace_value(STACK, 6, 10, "registry.example.com/shop/web:1.3.9", "x", filename="stack.yaml")


def test_a_value_that_cannot_be_one_line_is_refused():
    with pytest.raises(EditRefused, match="cannot be written on one line"):
        replace_value("a: x\n", 1, 4, "x", "two\nlines")
