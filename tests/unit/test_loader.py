"""Loading spec files: marks, merging, safety limits and interpolation."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import Problem, SpecError
from reconciler.spec.loader import RawStack, load_stack
from reconciler.spec.locations import Mark


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(paths: list, environ: dict | None = None) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load_stack(paths, environ=environ or {})
    return caught.value.problems


def only_problem(paths: list, environ: dict | None = None) -> Problem:
    problems = problems_of(paths, environ)
    assert len(problems) == 1, problems
    return problems[0]


WEB = """\
name: demo
containers:
  web:
    image: app
    ports:
      - "8080:80"
      - {target: 53, protocol: udp}
    labels: {tier: front}
"""


def test_marks_point_at_values(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", WEB)
    raw = load_stack([spec], environ={})
    file = str(spec)
    assert raw.data["containers"]["web"]["ports"][1] == {"target": 53, "protocol": "udp"}
    assert raw.marks[("name",)] == Mark(file, 1, 7)
    assert raw.marks[("containers", "web", "image")] == Mark(file, 4, 12)
    assert raw.marks[("containers", "web", "ports", 0)] == Mark(file, 6, 9)
    assert raw.marks[("containers", "web", "ports", 1)] == Mark(file, 7, 9)
    assert raw.marks[("containers", "web", "ports", 1, "protocol")] == Mark(file, 7, 32)
    assert raw.marks[("containers", "web", "labels", "tier")] == Mark(file, 8, 20)
    assert raw.files == (spec,)


def test_mark_falls_back_to_nearest_ancestor(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", WEB)
    raw = load_stack([spec], environ={})
    assert raw.mark(("containers", "web", "missing", 3)) == raw.marks[("containers", "web")]
    assert raw.mark(["containers", "web", "image"]) == Mark(str(spec), 4, 12)
    assert raw.origin(("containers", "web", "nope")) == spec


def test_rawstack_without_marks_falls_back_to_first_file() -> None:
    raw = RawStack(data={}, marks={}, files=(Path("a.yaml"), Path("b.yaml")))
    assert raw.mark(("x",)) is None
    assert raw.origin(("x",)) == Path("a.yaml")


def test_directory_files_are_sorted_and_merged(tmp_path: Path) -> None:
    write(tmp_path, "stack/20-web.yaml", "containers:\n  web: {image: app}\n")
    write(tmp_path, "stack/10-base.yml", "name: demo\nimages:\n  app: {ref: demo/app:1}\ncontainers:\n  db: {image: pg:16}\n")
    write(tmp_path, "stack/.hidden.yaml", "containers: {ghost: {image: x}}\n")
    write(tmp_path, "stack/notes.txt", "not yaml: [")
    raw = load_stack([tmp_path / "stack"], environ={})
    assert [p.name for p in raw.files] == ["10-base.yml", "20-web.yaml"]
    assert raw.data == {
        "name": "demo",
        "images": {"app": {"ref": "demo/app:1"}},
        "containers": {"db": {"image": "pg:16"}, "web": {"image": "app"}},
    }
    # Each value keeps the mark of the file it came from.
    assert raw.origin(("containers", "web", "image")).name == "20-web.yaml"
    assert raw.origin(("containers", "db", "image")).name == "10-base.yml"
    assert raw.mark(("containers", "web", "image")).line == 2


def test_same_file_twice_is_loaded_once(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", WEB)
    raw = load_stack([spec, tmp_path], environ={})
    assert raw.files == (spec,)


def test_empty_directory_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = problems_of([tmp_path / "empty", tmp_path / "missing.yaml"])
    assert {(p.file, p.message) for p in problems} == {
        (str(tmp_path / "empty"), "directory contains no *.yaml or *.yml files"),
        (str(tmp_path / "missing.yaml"), "no such file or directory"),
    }


def test_cross_file_duplicate_names_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "containers:\n  web: {image: a}\n")
    second = write(tmp_path, "b.yaml", "# other\n\ncontainers:\n  web: {image: b}\n")
    problem = only_problem([first, second])
    assert problem.file == str(second)
    assert problem.line == 4
    assert problem.path == "containers.web"
    assert f"{first}:2" in problem.message


def test_different_names_conflict(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "name: one\n")
    second = write(tmp_path, "b.yaml", "name: two\n")
    problem = only_problem([first, second])
    assert (problem.file, problem.line, problem.path) == (str(second), 1, "name")
    assert "'two' differs from 'one'" in problem.message and str(first) in problem.message
    write(tmp_path, "b.yaml", "name: one\n")
    assert load_stack([first, second], environ={}).data == {"name": "one"}


def test_non_mapping_section_is_left_for_the_schema(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "containers:\n  web: {image: a}\n")
    second = write(tmp_path, "b.yaml", "containers: [oops]\n")
    raw = load_stack([first, second], environ={})
    assert raw.data["containers"] == ["oops"]
    assert raw.origin(("containers",)) == second


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "- a\n- b\n")
    problem = only_problem([spec])
    assert (problem.file, problem.line) == (str(spec), 1)
    assert "top level must be a mapping" in problem.message


def test_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "# nothing yet\n")
    assert load_stack([spec], environ={}).data == {}


def test_duplicate_key_in_one_file(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "containers:\n  web: {image: a}\n  db: {image: c}\n  web: {image: b}\n")
    problem = only_problem([spec])
    assert (problem.line, problem.col, problem.path) == (4, 3, "containers.web")
    assert "duplicate key 'web' (first defined at line 2)" in problem.message


def test_python_tag_is_refused_with_line(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "name: demo\nx-evil: !!python/object/apply:os.system ['touch pwned']\n")
    problem = only_problem([spec])
    assert (problem.line, problem.col) == (2, 9)
    assert "'!!python/object/apply:os.system' is not allowed" in problem.message
    assert not Path("pwned").exists()


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("x-a: !custom value\n", "!custom"),
        ("x-a: !!binary aGVsbG8=\n", "!!binary"),
        ("x-a: !!set {a, b}\n", "!!set"),
        ("x-a: !!omap [a: 1]\n", "!!omap"),
        ("x-a: !Ref {name: x}\n", "!Ref"),
        ("x-a: {!custom key: 1}\n", "!custom"),
    ],
)
def test_non_standard_tags_are_refused(tmp_path: Path, text: str, tag: str) -> None:
    spec = write(tmp_path, "stack.yaml", text)
    problem = only_problem([spec])
    assert f"'{tag}' is not allowed" in problem.message
    assert problem.line == 1


def test_standard_explicit_tags_are_allowed(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "x-a: !!str 80\nx-b: !!int '12'\nx-c: !!map {a: !!null ''}\nx-d: !!seq [!!bool true]\n")
    assert load_stack([spec], environ={}).data == {"x-a": "80", "x-b": 12, "x-c": {"a": None}, "x-d": [True]}


def test_scalars_resolve_as_yaml_1_2(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "stack.yaml",
        "restart: no\nport: 22:22\nyes: on\nbool: True\nint: 010\nhex: 0x1F\noct: 0o17\n"
        "float: 1.5e3\nnothing: ~\ndate: 2024-01-02\n80: web\nneg: -3\ninf: -.inf\n",
    )
    data = load_stack([spec], environ={}).data
    assert data == {
        "restart": "no", "port": "22:22", "yes": "on", "bool": True, "int": 10, "hex": 31, "oct": 15,
        "float": 1500.0, "nothing": None, "date": "2024-01-02", "80": "web", "neg": -3, "inf": float("-inf"),
    }


def test_null_and_collection_keys_are_refused(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "x-a:\n  ~: 1\n  ? [a, b]\n  : 2\n")
    problems = problems_of([spec])
    assert [p.message for p in problems] == ["mapping keys must be strings"] * 2
    assert [p.line for p in problems] == [2, 3]


def test_merge_keys(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "stack.yaml",
        "x-base: &base {image: app, restart: always, labels: {a: '1'}}\n"
        "x-extra: &extra {restart: no, user: nobody}\n"
        "containers:\n"
        "  web:\n"
        "    <<: [*base, *extra]\n"
        "    restart: unless-stopped\n"
        "  worker:\n"
        "    image: other\n"
        "    <<: *extra\n",
    )
    raw = load_stack([spec], environ={})
    assert raw.data["containers"]["web"] == {
        "image": "app", "restart": "unless-stopped", "labels": {"a": "1"}, "user": "nobody"
    }
    assert raw.data["containers"]["worker"] == {"image": "other", "restart": "no", "user": "nobody"}
    # Explicit keys win and keep their own marks; merged ones point at their source.
    assert raw.marks[("containers", "web", "restart")].line == 6
    assert raw.marks[("containers", "web", "image")].line == 1
    assert raw.marks[("containers", "web")].line == 5


def test_merge_of_a_scalar_is_an_error(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "x-a:\n  <<: 5\n  b: 1\n")
    problem = only_problem([spec])
    assert "'<<' merges a mapping" in problem.message
    assert problem.line == 2


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    lines = ['x-a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    spec = write(tmp_path, "stack.yaml", "\n".join(lines) + "\n")
    problem = only_problem([spec])
    assert "expands to more than 100000 nodes" in problem.message
    assert problem.file == str(spec)


def test_merge_key_bomb_is_refused(tmp_path: Path) -> None:
    # Merges copy mappings: a chain of them grows geometrically like aliases do.
    lines = ["x-a0: &a0 {" + ", ".join(f"k{j}: {j}" for j in range(10)) + "}"]
    lines += [f"x-a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 10) + "]}" for i in range(1, 10)]
    spec = write(tmp_path, "stack.yaml", "\n".join(lines) + "\n")
    assert "expands to more than 100000 nodes" in only_problem([spec]).message


def test_too_many_aliases(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "x-v: &v 1\nx-l: [" + ", ".join(["*v"] * 101) + "]\n")
    problem = only_problem([spec])
    assert "more than 100 aliases" in problem.message
    assert problem.line == 2


@pytest.mark.parametrize(
    "text",
    [
        "x-a: &a [*a]\n",
        "x-a: &a {self: *a}\n",
        "x-a: &a {<<: *a, k: 1}\n",
        "x-a: &a {b: &b {<<: *a}, <<: *b}\n",
    ],
)
def test_recursive_alias_is_refused(tmp_path: Path, text: str) -> None:
    spec = write(tmp_path, "stack.yaml", text)
    assert "recursive alias" in only_problem([spec]).message


@pytest.mark.parametrize("text", ["x: " + "[" * 100_000 + "]" * 100_000 + "\n", "x:\n" + "- " * 50_000 + "a\n"])
def test_deep_nesting_is_refused_without_crashing(tmp_path: Path, text: str) -> None:
    # libyaml's composer recurses in C: this input used to crash the interpreter.
    spec = write(tmp_path, "stack.yaml", text)
    assert "nesting is deeper than 100 levels" in only_problem([spec]).message


def test_huge_file_is_refused(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "x-pad: '" + "a" * (1024 * 1024) + "'\n")
    problem = only_problem([spec])
    assert problem.file == str(spec)
    assert "1048586 bytes" in problem.message and "1 MiB" in problem.message


def test_syntax_error_location(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "containers:\n  web:\n    image: app\n   ports: [1]\n")
    problem = only_problem([spec])
    assert problem.message.startswith("invalid YAML:")
    assert (problem.file, problem.line, problem.col) == (str(spec), 4, 4)


def test_a_tab_is_called_a_tab_at_its_place(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "containers:\n  web:\n\timage: app\n")
    problem = only_problem([spec])
    assert problem.message == "invalid YAML: a tab character: YAML indents with spaces, never tabs"
    assert (problem.file, problem.line, problem.col) == (str(spec), 3, 1)


def test_undefined_alias_is_a_syntax_error(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "x-a: *nowhere\n")
    problem = only_problem([spec])
    assert "undefined alias" in problem.message and problem.line == 1


def test_multiple_documents_are_refused(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "name: a\n---\nname: b\n")
    problem = only_problem([spec])
    assert "only one YAML document" in problem.message and problem.line == 2


def test_invalid_utf8(tmp_path: Path) -> None:
    spec = tmp_path / "stack.yaml"
    spec.write_bytes(b"name: \xff\n")
    assert "not valid UTF-8" in only_problem([spec]).message


def test_problems_from_all_files_are_reported_together(tmp_path: Path) -> None:
    bad_tag = write(tmp_path, "a.yaml", "x-a: !nope 1\n")
    syntax = write(tmp_path, "b.yaml", "x: [\n")
    assert {p.file for p in problems_of([bad_tag, syntax])} == {str(bad_tag), str(syntax)}


# -- interpolation ----------------------------------------------------------------


def test_interpolation_in_values_not_keys(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "stack.yaml",
        "containers:\n"
        "  web:\n"
        "    image: ${IMAGE:-app}\n"
        "    ports: ['${PORT:-8080}:80', '$$HOME']\n"
        "    env: {$KEY: $VALUE, NESTED: '${UNSET:-${VALUE}}', HOST: '${HOST-}'}\n",
    )
    raw = load_stack([spec], environ={"PORT": "9090", "VALUE": "v"})
    web = raw.data["containers"]["web"]
    assert web["image"] == "app"
    assert web["ports"] == ["9090:80", "$HOME"]
    assert web["env"] == {"$KEY": "v", "NESTED": "v", "HOST": ""}


def test_required_variable_error_is_a_located_problem(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "containers:\n  db:\n    env:\n      PASSWORD: ${DB_PASSWORD:?set the db password}\n")
    problem = only_problem([spec])
    assert (problem.file, problem.line, problem.col) == (str(spec), 4, 17)
    assert problem.path == "containers.db.env.PASSWORD"
    assert problem.message == "required variable DB_PASSWORD is missing a value: set the db password"


def test_dotenv_beside_the_spec_and_environ_precedence(tmp_path: Path) -> None:
    write(tmp_path, "stack/.env", "# defaults\nTAG=from-dotenv\nexport PORT='1111'\n")
    spec = write(tmp_path, "stack/stack.yaml", "x-tag: ${TAG}\nx-port: ${PORT}\n")
    raw = load_stack([spec], environ={"PORT": "2222"})
    assert raw.data == {"x-tag": "from-dotenv", "x-port": "2222"}


def test_each_file_uses_its_own_dotenv(tmp_path: Path) -> None:
    write(tmp_path, "a/.env", "WHO=a\n")
    write(tmp_path, "b/.env", "WHO=b\n")
    first = write(tmp_path, "a/stack.yaml", "x-a: $WHO\n")
    second = write(tmp_path, "b/stack.yaml", "x-b: $WHO\n")
    assert load_stack([first, second], environ={}).data == {"x-a": "a", "x-b": "b"}


def test_malformed_dotenv_is_a_problem(tmp_path: Path) -> None:
    dotenv = write(tmp_path, ".env", "GOOD=1\nnot a pair\n")
    spec = write(tmp_path, "stack.yaml", "x-a: ${GOOD}\n")
    problem = only_problem([spec])
    assert (problem.file, problem.line) == (str(dotenv), 2)
    assert "expected KEY=VALUE" in problem.message


def test_environ_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_TEST_VALUE", "from-os")
    spec = write(tmp_path, "stack.yaml", "x-a: $RECONCILER_TEST_VALUE\n")
    assert load_stack([spec]).data == {"x-a": "from-os"}


def test_interpolation_applies_to_merged_values(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "x-base: &b {image: '${IMG}'}\ncontainers:\n  web: {<<: *b}\n")
    assert load_stack([spec], environ={"IMG": "nginx:1"}).data["containers"]["web"] == {"image": "nginx:1"}


def test_explicit_empty_document_is_an_empty_mapping(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "---\n")
    assert load_stack([spec], environ={}).data == {}


def test_an_unset_variable_without_a_default_is_named_in_a_warning(tmp_path: Path, caplog) -> None:
    spec = tmp_path / "stack.yaml"
    (tmp_path / ".env").write_text("FROM_DOTENV=1\n")
    spec.write_text("containers:\n  a:\n    image: 'x:${TAG}'\n    env: {A: $MISSING_TOO, B: '${TAG}',"
                    " C: '${OPT:-}', D: '${OPT2-x}', E: '${SET}', F: '${FROM_DOTENV}', G: '${EMPTY}'}\n")
    with caplog.at_level("WARNING", logger="reconciler.spec.loader"):
        raw = load_stack([spec], environ={"SET": "yes", "EMPTY": ""})
    assert raw.data["containers"]["a"]["image"] == "x:"
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2  # once per variable, only for those without a default
    assert warned[0].startswith(f"{spec}: variable MISSING_TOO is not set")
    assert warned[1].startswith(f"{spec}: variable TAG is not set (environment or .env) and has no default")


def test_a_secret_made_empty_by_an_unset_variable_is_an_error_at_its_line(tmp_path: Path) -> None:
    spec = write(tmp_path, "stack.yaml", "containers:\n  a:\n    image: x\n    env:\n"
                                         "      KEY: {value: '${UNSET_KEY}', secret: true}\n"
                                         "      MEANT: {value: '${UNSET_TOO:-}', secret: true}\n")
    problem = only_problem([spec], environ={})
    assert (problem.file, problem.line, problem.path) == (str(spec), 5, "containers.a.env.KEY.value")
    assert "UNSET_KEY, which is not set" in problem.message and "it would be empty" in problem.message
    assert load_stack([spec], environ={"UNSET_KEY": "s3cret"}).data["containers"]["a"]["env"]["KEY"]["value"] == "s3cret"
