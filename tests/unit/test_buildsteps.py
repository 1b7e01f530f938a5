"""Build steps: the Dockerfile reader, per-step digests, where a rebuild's cache breaks, image layers."""
from __future__ import annotations

import sys
from pathlib import Path

from reconciler.imagelayers import layer_lines, layer_views
from reconciler.labels import BUILD_CACHE, BUILD_STEPS, object_labels
from reconciler.model import BuildStep, Kind, LiveObject, LiveState, cache_break, encode_steps
from reconciler.model.buildstep import LABEL_LIMIT, decode_steps
from reconciler.plan import Reason
from reconciler.planner import plan_changes
from reconciler.reconcile import load_desired
from reconciler.spec.dockerfile import build_steps, parse_dockerfile
from reconciler.testing.fakedocker import FakeDockerAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
from reconciler_docker.layers import CacheSteps, history_items  # noqa: E402

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM busybox:1 AS base
ARG VERSION=1
WORKDIR /app
COPY app/ /app
RUN echo building \\
    version $VERSION
ENV MODE=prod
CMD ["sh"]
"""


def _context(tmp_path: Path, dockerfile: str = DOCKERFILE) -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    (tmp_path / "app" / "util.py").write_text("x = 1\n")
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return tmp_path


def test_parse_joins_continuations_and_drops_comments_and_directives():
    assert parse_dockerfile(DOCKERFILE) == [
        "FROM busybox:1 AS base", "ARG VERSION=1", "WORKDIR /app", "COPY app/ /app",
        "RUN echo building version $VERSION", "ENV MODE=prod", 'CMD ["sh"]']


def test_parse_drops_a_comment_inside_a_continued_instruction():
    assert parse_dockerfile("FROM a\nRUN one \\\n# note\n  two\n") == ["FROM a", "RUN one two"]


def test_steps_count_like_the_engine_and_name_stages_only_when_several(tmp_path):
    steps = build_steps(_context(tmp_path), "Dockerfile", [], None)
    assert [(s.number, s.total, s.stage) for s in steps][:2] == [(1, 7, ""), (2, 7, "")]
    assert steps[3].files and [path for path, _ in steps[3].files] == ["app/main.py", "app/util.py"]
    multi = build_steps(_context(tmp_path, "FROM a AS build\nRUN make\nFROM b\nCOPY --from=build /out /\n"),
                        "Dockerfile", [], None)
    assert [s.stage for s in multi] == ["build", "build", "1", "1"]
    assert [s.text for s in build_steps(tmp_path, "Dockerfile", [], "build")] == ["FROM a AS build", "RUN make"]


def test_dockerignore_is_honoured_as_by_the_build_hash(tmp_path):
    _context(tmp_path)
    (tmp_path / ".dockerignore").write_text("app/util.py\n")
    steps = build_steps(tmp_path, "Dockerfile", [], None)
    assert [path for path, _ in steps[3].files] == ["app/main.py"]


def _label(tmp_path: Path, args=()) -> str:
    return encode_steps(build_steps(tmp_path, "Dockerfile", list(args), None))


def test_a_changed_copied_file_names_its_step_and_the_file(tmp_path):
    label = _label(_context(tmp_path))
    (tmp_path / "app" / "main.py").write_text("print(2)\n")
    steps = build_steps(tmp_path, "Dockerfile", [], None)
    assert cache_break(steps, label) == "cache breaks at step 4/7 (COPY app/ /app): app/main.py changed"


def test_a_changed_build_arg_names_the_arg(tmp_path):
    label = _label(_context(tmp_path), [("VERSION", "1")])
    steps = build_steps(tmp_path, "Dockerfile", [("VERSION", "2")], None)
    assert cache_break(steps, label) == "cache breaks at step 2/7 (ARG VERSION=1): build arg VERSION changed"


def test_a_secret_build_arg_stays_out_of_the_steps(tmp_path):
    label = _label(_context(tmp_path), [("VERSION", "s3cret")])
    steps = build_steps(tmp_path, "Dockerfile", [("VERSION", "other")], None, frozenset({"VERSION"}))
    assert label != encode_steps(steps)  # the plain label had the value; the secret one never has
    assert encode_steps(build_steps(tmp_path, "Dockerfile", [("VERSION", "s3cret")], None, frozenset({"VERSION"}))) \
        == encode_steps(steps)


def test_a_moved_base_names_the_from_step(tmp_path):
    label = _label(_context(tmp_path))
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.replace("busybox:1", "busybox:2"))
    steps = build_steps(tmp_path, "Dockerfile", [], None)
    assert cache_break(steps, label) == "cache breaks at step 1/7 (FROM busybox:2 AS base): the base image changed"


def test_many_changed_files_are_counted_not_listed(tmp_path):
    _context(tmp_path)
    for index in range(6):
        (tmp_path / "app" / f"m{index}.py").write_text("a")
    label = _label(tmp_path)
    for index in range(6):
        (tmp_path / "app" / f"m{index}.py").write_text("b")
    reason = cache_break(build_steps(tmp_path, "Dockerfile", [], None), label)
    assert reason == "cache breaks at step 4/7 (COPY app/ /app): app/m0.py, app/m1.py, app/m2.py and 3 more changed"


def test_no_label_says_nothing_and_the_plan_keeps_inputs_changed(tmp_path):
    steps = build_steps(_context(tmp_path), "Dockerfile", [], None)
    assert cache_break(steps, "") is None


def test_the_label_stays_within_its_bound():
    steps = tuple(BuildStep(number=n, total=80, text=f"COPY f{n} /", stage="", digest=f"{n:06x}",
                            files=tuple((f"f{n}/{i}", f"{i:04x}") for i in range(10))) for n in range(1, 81))
    label = encode_steps(steps)
    assert len(label) <= LABEL_LIMIT
    recorded = decode_steps(label)
    assert [r.digest for r in recorded] == [s.digest for s in steps[: len(recorded)]]
    # Per-file digests go first, steps only when those are not enough.
    assert encode_steps(steps[:5]).count(":") == 5 and len(recorded) >= 40


def test_the_plan_and_the_labels_carry_the_steps(tmp_path):
    _context(tmp_path, "FROM busybox\nCOPY app/ /app\n")
    (tmp_path / "stack.yaml").write_text("name: demo\nimages:\n  app:\n    build: {context: .}\n")
    desired = load_desired([tmp_path / "stack.yaml"])
    spec = next(iter(desired.of(Kind.IMAGE).values()))
    labels = object_labels("demo", Kind.IMAGE, spec)
    assert labels[BUILD_STEPS] == spec.steps_label and len(labels[BUILD_STEPS].split()) == 2
    (tmp_path / "app" / "util.py").write_text("x = 2\n")
    changed = load_desired([tmp_path / "stack.yaml"])
    live = LiveState(images={spec.ref: LiveObject(Kind.IMAGE, spec.ref, "sha256:" + "a" * 64, labels,
                                                  owned=True, image_id="sha256:" + "a" * 64)})
    change = next(c for c in plan_changes(changed, live).changes if c.kind is Kind.IMAGE)
    assert change.reason is Reason.BUILD_CHANGED
    assert change.reasons == ("build: inputs changed", "cache breaks at step 2/2 (COPY app/ /app): app/util.py changed")


def test_shared_bytes_count_the_layers_another_image_has():
    base = {"id": "base", "size": 1000, "created_by": "", "reused": None}
    views = layer_views({
        "a": [{"id": "a1", "size": 10, "created_by": "RUN a", "reused": False}, base],
        "b": [{"id": "b1", "size": 20, "created_by": "RUN b", "reused": True}, base],
        "c": [{"id": "c1", "size": 5, "created_by": "RUN c", "reused": None}],
        "gone": None,
    })
    assert (views["a"]["size"], views["a"]["shared_bytes"]) == (1010, 1000)
    assert (views["b"]["size"], views["b"]["shared_bytes"]) == (1020, 1000)
    assert (views["c"]["size"], views["c"]["shared_bytes"]) == (5, 0)
    assert views["gone"] is None
    assert layer_lines(views["a"])[0] == "layers: 1.0 kB, 1.0 kB shared with the stack's other images"


def test_history_items_leave_our_labels_out_and_read_the_cache_flags():
    history = [
        {"Id": "sha256:" + "9" * 64, "CreatedBy": "/bin/sh -c #(nop)  LABEL io.reconciler.stack=demo", "Size": 0},
        {"Id": "<missing>", "CreatedBy": f"/bin/sh -c #(nop)  LABEL {BUILD_CACHE}=cm", "Size": 0},
        {"Id": "sha256:" + "2" * 64, "CreatedBy": "/bin/sh -c echo hi > /x", "Size": 3, "Created": 2},
        {"Id": "sha256:" + "1" * 64, "CreatedBy": "/bin/sh -c #(nop) COPY dir:abc in /app ", "Size": 7, "Created": 2},
        {"Id": "<missing>", "CreatedBy": "/bin/sh -c #(nop) ADD file:x in / ", "Size": 100, "Created": 1},
    ]
    items = history_items(history)
    assert [(i["size"], i["created_by"], i["reused"]) for i in items] == [
        (3, "RUN echo hi > /x", False), (7, "COPY dir:abc in /app", True), (100, "ADD file:x in /", None)]
    assert items[0]["id"] == "2" * 12 and len(items[2]["id"]) == 12
    assert history_items(history)[2]["id"] == items[2]["id"]  # the same chain, the same id


def test_cache_flags_follow_the_final_stage():
    cache = CacheSteps()
    for line in ["Step 1/5 : FROM a AS build", "Step 2/5 : RUN make", "---> Using cache", "Step 3/5 : FROM b",
                 "Step 4/5 : COPY x /", "---> Using cache", "---> 123", "Step 5/5 : RUN y", "---> Running in 1"]:
        cache.line(line)
    assert cache.label == "cm"


def test_a_build_prints_only_the_users_steps_and_labels_the_image_silently(tmp_path):
    from reconciler.drivers import DriverContext
    from reconciler.sdk.docker import use_client
    from reconciler_docker.images import DockerRegistryDriver

    _context(tmp_path, "FROM busybox\nCOPY app/ /app\n")
    (tmp_path / "stack.yaml").write_text("name: demo\nimages:\n  app:\n    build: {context: .}\n")
    spec = next(iter(load_desired([tmp_path / "stack.yaml"]).of(Kind.IMAGE).values()))
    api, lines = FakeDockerAPI(), []
    context = DriverContext(stack="demo", progress=lambda name, line: lines.append(line))
    use_client(context, api)
    DockerRegistryDriver(context).build(spec, object_labels("demo", Kind.IMAGE, spec))
    first, second = [call for call in api.calls if call.verb == "build"]
    assert first.kwargs.get("labels") is None and first.kwargs.get("tag") is None
    assert second.kwargs["tag"] == spec.ref and second.kwargs["labels"][BUILD_STEPS] == spec.steps_label
    assert lines.count("Step 1/1 : FROM scratch") == 1  # the labelling build says nothing
