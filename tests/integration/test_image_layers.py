"""Image layers against the real engine: status shows them, plan names where the cache breaks, builds print no LABEL steps."""
from __future__ import annotations

import uuid

import docker.errors
import pytest

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
images:
  app:
    build: {context: ./app}
    ref: STACK-app:1
  tool:
    build: {context: ./tool}
    ref: STACK-tool:1
"""


@pytest.fixture
def two_images(stack):
    """A stack of two images built on the same base, sharing a RUN step too; both removed afterwards."""
    for name, dockerfile in (("app", "FROM BASE\nRUN echo shared > /shared\nCOPY src/ /app\nRUN ls /app\n"),
                             ("tool", "FROM BASE\nRUN echo shared > /shared\n")):
        folder = stack.dir / name
        folder.mkdir()
        stack.write(dockerfile, f"{name}/Dockerfile")
    (stack.dir / "app" / "src").mkdir()
    (stack.dir / "app" / "src" / "main.py").write_text("print('one')\n")
    (stack.dir / "app" / "src" / "util.py").write_text(f"nonce = {uuid.uuid4().hex!r}\n")  # no earlier run's cache
    stack.write(SPEC)
    stack.made = []  # image ids a rebuild left untagged
    yield stack
    for ref in (*stack.made, f"{stack.name}-app:1", f"{stack.name}-tool:1"):
        try:
            stack.engine.remove_image(ref, force=True)
        except docker.errors.NotFound:
            pass


def test_layers_shared_bytes_and_where_the_cache_breaks(two_images):
    stack = two_images
    applied = stack.apply()
    assert applied.code == 0, applied.out + applied.err
    tool = f"{stack.name}-tool:1"
    # The build prints the user's two steps only: the reconciler's labels add none.
    assert f"  | {tool}: Step 1/2 : FROM" in applied.out and f"  | {tool}: Step 2/2 : RUN" in applied.out, applied.out
    assert "Step 3/" not in applied.out.replace(f"{stack.name}-app:1: Step 3/4", "")
    assert "LABEL" not in applied.out

    plain = stack.cli("status", "--output", "json")
    assert plain.code == 0, plain.out + plain.err
    assert all(row["layers"] is None for row in plain.json()["objects"])

    detailed = stack.cli("status", "--detailed", "--output", "json")
    assert detailed.code == 0, detailed.out + detailed.err
    images = {row["name"]: row["layers"] for row in detailed.json()["objects"] if row["kind"] == "image"}
    app, tool_layers = images[f"{stack.name}-app:1"], images[tool]
    for view in (app, tool_layers):
        assert view["size"] > 0 and 0 < view["shared_bytes"] <= view["size"]
    steps = [item["created_by"] for item in app["items"]]
    assert steps[0] == "RUN ls /app" and steps[1].startswith("COPY ") and steps[2] == "RUN echo shared > /shared"
    assert all(isinstance(item["size"], int) and item["id"] for item in app["items"])
    assert [item["reused"] for item in app["items"][:3]] in ([False, False, False], [False, False, True])
    assert app["items"][-1]["reused"] is None  # the base image's layer: no build of ours made it
    text = stack.cli("status", "--detailed")
    assert "shared with the stack's other images" in text.out and "RUN ls /app" in text.out, text.out

    stack.made.append(stack.engine.inspect_image(f"{stack.name}-app:1")["Id"])
    (stack.dir / "app" / "src" / "main.py").write_text("print('two')\n")
    plan = stack.cli("plan")
    assert plan.code == 0, plan.out + plan.err
    assert "cache breaks at step 3/4 (COPY src/ /app): src/main.py changed" in plan.out, plan.out

    rebuilt = stack.apply()
    assert rebuilt.code == 0, rebuilt.out + rebuilt.err
    again = stack.cli("status", "--detailed", "--output", "json").json()
    app = next(row["layers"] for row in again["objects"] if row["name"] == f"{stack.name}-app:1")
    assert [item["reused"] for item in app["items"][:3]] == [False, False, True]  # FROM and RUN cached


def test_the_api_shows_layers_when_asked_for_detail(stack, api):
    plain = api.stack(stack.name)
    assert plain["objects"] and all(row["layers"] is None for row in plain["objects"])
    status, detailed = api.get(f"/api/stacks/{stack.name}?detailed=1")
    assert status == 200, detailed
    images = [row for row in detailed["objects"] if row["kind"] == "image"]
    assert images and all(row["layers"]["size"] > 0 and row["layers"]["items"] for row in images), images
    assert all(row["layers"] is None for row in detailed["objects"] if row["kind"] != "image")
