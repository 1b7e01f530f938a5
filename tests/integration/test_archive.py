"""The archive driver against the real engine: load offline, converge, reload when the archive changes."""
from __future__ import annotations

import io
import tarfile

import docker
import pytest

from reconciler.labels import owner_selector

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
images:
  app: {driver: archive, ref: "REF", archive: ./images/app.tar}
containers:
  web: {image: app, command: ["sleep", "3600"], stop_grace_period: 1s}
"""


@pytest.fixture
def ref(stack):
    """A tag unique to this test, removed before and after it."""
    name = f"rtest-archive/{stack.name}:1"
    yield name
    # The containers go first (the stack fixture), but the image may still be in use until then.
    for c in stack.engine.containers(all=True, filters={"label": [owner_selector(stack.name)]}):
        stack.engine.remove_container(c["Id"], force=True)
    _untag(stack.engine, name)


def _untag(engine: docker.APIClient, ref: str) -> None:
    try:
        engine.remove_image(ref, noprune=False)
    except docker.errors.NotFound:
        pass


def _save(engine: docker.APIClient, image: str, ref: str, path) -> str:
    """``docker save`` of ``image`` tagged ``ref`` into ``path``; the tag is put back as it was."""
    repo, _, tag = ref.rpartition(":")
    try:
        before = engine.inspect_image(ref)["Id"]
    except docker.errors.NotFound:
        before = None
    engine.tag(image, repo, tag, force=True)
    path.parent.mkdir(exist_ok=True)
    with path.open("wb") as out:
        for chunk in engine.get_image(ref):
            out.write(chunk)
    image_id = engine.inspect_image(ref)["Id"]
    if before is None:
        _untag(engine, ref)
    else:
        engine.tag(before, repo, tag, force=True)
    return image_id


def _build_v2(engine: docker.APIClient) -> str:
    dockerfile = f"FROM {BASE_IMAGE}\nRUN echo v2 > /v\n".encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    image_id = ""
    for event in engine.build(fileobj=context, custom_context=True, rm=True, decode=True):
        assert "error" not in event, event
        if "aux" in event:
            image_id = event["aux"].get("ID", image_id)
    assert image_id
    return image_id


def test_archive_is_loaded_once_and_reloaded_when_it_changes(stack, ref):
    archive = stack.dir / "images" / "app.tar"
    v1 = _save(stack.engine, BASE_IMAGE, ref, archive)
    stack.write(SPEC.replace("REF", ref))

    first = stack.apply()
    assert first.code == 0, first.err + first.out
    assert stack.engine.inspect_image(ref)["Id"] == v1
    (web,) = stack.containers().values()
    assert web["State"] == "running" and web["ImageID"] == v1

    again = stack.apply("--output", "json")
    assert again.code == 0, again.err
    assert again.json()["engine_calls"]["write"] == 0

    v2 = _build_v2(stack.engine)
    try:
        assert _save(stack.engine, v2, ref, archive) == v2 != v1
        plan = stack.cli("plan")
        assert plan.code == 0, plan.err
        assert f"content changed: {v1[:19]}… → {v2[:19]}…" in plan.out
        assert "replace" in plan.out and f"{stack.name}-web-1" in plan.out

        applied = stack.apply()
        assert applied.code == 0, applied.err + applied.out
        assert stack.engine.inspect_image(ref)["Id"] == v2
        (web,) = stack.containers().values()
        assert web["State"] == "running" and web["ImageID"] == v2
        assert stack.apply("--output", "json").json()["engine_calls"]["write"] == 0
    finally:
        for c in stack.engine.containers(all=True, filters={"label": [owner_selector(stack.name)]}):
            stack.engine.remove_container(c["Id"], force=True)
        _untag(stack.engine, ref)
        try:
            stack.engine.remove_image(v2)
        except docker.errors.APIError:
            pass


def test_oci_layout_directory_is_refused_clearly(stack, ref, tmp_path):
    layout = stack.dir / "images" / "app"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": [{"mediaType": '
                                       '"application/vnd.oci.image.manifest.v1+json", "digest": "sha256:'
                                       + "d" * 64 + '", "size": 2}]}')
    (layout / "blobs" / "sha256" / ("d" * 64)).write_text(
        '{"config": {"digest": "sha256:' + "e" * 64 + '"}, "layers": []}')
    stack.write(SPEC.replace("REF", ref).replace("./images/app.tar", "./images/app"))
    result = stack.apply()
    assert result.code == 1
    assert "OCI image layout" in result.out + result.err and "images/app" in result.out + result.err
