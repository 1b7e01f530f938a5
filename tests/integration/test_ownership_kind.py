"""A container someone runs from an image the stack built is theirs (issue 21, case 5).

The images the reconciler builds carry the stack's labels (kind ``image``), and
the engine gives a container every label of its image. Only labels whose kind
names the object's own kind claim the stack: such a container is never listed
as a replica to remove, never an error, never adopted or deleted with
``--adopt``; under a wanted name it is a stranger's object holding that name.
"""
from __future__ import annotations

import docker.errors
import pytest

from reconciler.labels import KIND, STACK

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
images:
  app:
    build: {context: ./app}
containers:
  app:
    image: app
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""


@pytest.fixture
def built(stack):
    """The stack applied, with an image it built; the image is removed afterwards."""
    app = stack.dir / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo built > /built\n")
    stack.write(SPEC)
    applied = stack.apply()
    assert applied.code == 0, applied.out + applied.err
    ref = f"{stack.name}-app:latest"
    yield ref
    for container in stack.containers().values():  # the stack fixture removes them too; the image needs them gone
        try:
            stack.engine.remove_container(container["Id"], force=True)
        except docker.errors.NotFound:
            pass
    try:
        stack.engine.remove_image(ref, force=True)
    except docker.errors.NotFound:
        pass


def _run_by_hand(stack, image: str, name: str) -> str:
    """``docker run -d IMAGE`` through the engine's API; the container wears only the image's labels.

    The stack fixture removes it afterwards: it inherits the stack's label with the image's others.
    """
    created = stack.engine.create_container(image, ["sleep", "3600"], name=name,
                                            host_config=stack.engine.create_host_config(init=True))
    stack.engine.start(created["Id"])
    labels = stack.engine.inspect_container(created["Id"])["Config"]["Labels"]
    assert (labels.get(STACK), labels.get(KIND)) == (stack.name, "image"), "the engine hands image labels on"
    return created["Id"]


def test_a_container_run_from_the_stacks_image_is_neither_removed_nor_an_error(stack, built):
    theirs = _run_by_hand(stack, built, f"{stack.name}-theirs")

    plan = stack.cli("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert "no changes" in plan.out and "claims this stack" not in plan.out

    adopted = stack.apply("--adopt", "--output", "json")
    assert adopted.code == 0, adopted.out + adopted.err
    assert adopted.json()["changes"] == []
    assert stack.engine.inspect_container(theirs)["State"]["Running"]


def test_a_container_run_from_the_stacks_image_under_a_wanted_name_is_not_taken_over(stack, built):
    ours = f"{stack.name}-app-1"
    stack.engine.remove_container(ours, force=True)
    theirs = _run_by_hand(stack, built, ours)

    plan = stack.cli("plan")
    assert plan.code == 1
    assert f"container {ours} exists and is not managed by this stack" in plan.out, plan.out + plan.err

    adopted = stack.apply("--adopt")
    assert adopted.code == 1 and "is not managed by this stack" in adopted.out, adopted.out + adopted.err
    assert stack.engine.inspect_container(ours)["Id"] == theirs
    assert stack.engine.inspect_container(theirs)["State"]["Running"]
