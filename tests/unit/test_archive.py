"""Archive images: the image id the archive driver reads from the file, and the plan that follows from its answer."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError
from reconciler.model import Content, ImageSpec
from reconciler.plan import Reason
from reconciler.planner import plan_changes
from reconciler.testing.fakedocker import FakeDockerAPI

from reconciler_docker.archive import ArchiveRegistryDriver
from reconciler.sdk.docker import use_client
from reconciler_docker.imagearchive import ArchiveFormat, archive_format, archive_image_id

from .builders import IMAGE_ID, actions, container, live, live_container, live_image, state

REF = "example/app:1.0"
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
CONFIG_HEX = hashlib.sha256(CONFIG).hexdigest()


def _tar(path: Path, members: dict[str, bytes], *, gz: bool = False) -> Path:
    with tarfile.open(path, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _docker_save(config_name: str, tags=(REF,)) -> dict[str, bytes]:
    manifest = [{"Config": config_name, "RepoTags": list(tags), "Layers": ["abc/layer.tar"]}]
    return {config_name: CONFIG, "abc/layer.tar": b"\0" * 512, "manifest.json": json.dumps(manifest).encode()}


def _oci_layout(root: Path) -> Path:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (blobs / CONFIG_HEX).write_bytes(CONFIG)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": f"sha256:{CONFIG_HEX}", "size": len(CONFIG)},
                           "layers": []}).encode()
    manifest_hex = hashlib.sha256(manifest).hexdigest()
    (blobs / manifest_hex).write_bytes(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest_hex}",
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]}))
    return root


# -- reading the image id ------------------------------------------------------------


@pytest.mark.parametrize("config_name", [f"{CONFIG_HEX}.json", f"blobs/sha256/{CONFIG_HEX}"])
@pytest.mark.parametrize("gz", [False, True])
def test_docker_save_tarball_gives_the_config_digest(tmp_path, config_name, gz):
    path = _tar(tmp_path / "app.tar", _docker_save(config_name), gz=gz)
    assert archive_image_id(path, REF) == f"sha256:{CONFIG_HEX}"
    assert archive_format(path) == ArchiveFormat.DOCKER_SAVE


def test_docker_save_with_several_images_picks_the_one_tagged_ref(tmp_path):
    other = "b" * 64
    manifest = [{"Config": f"{other}.json", "RepoTags": ["other:1"]},
                {"Config": f"{CONFIG_HEX}.json", "RepoTags": [REF]}]
    path = _tar(tmp_path / "two.tar", {"manifest.json": json.dumps(manifest).encode()})
    assert archive_image_id(path, REF) == f"sha256:{CONFIG_HEX}"
    with pytest.raises(ValueError, match="none is tagged missing:1"):
        archive_image_id(path, "missing:1")


def test_oci_layout_directory_follows_index_to_the_config(tmp_path):
    root = _oci_layout(tmp_path / "layout")
    assert archive_image_id(root, REF) == f"sha256:{CONFIG_HEX}"
    assert archive_format(root) == ArchiveFormat.OCI_LAYOUT


def test_oci_layout_as_a_tarball(tmp_path):
    root = _oci_layout(tmp_path / "layout")
    members = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert archive_image_id(_tar(tmp_path / "oci.tar", members), REF) == f"sha256:{CONFIG_HEX}"


def test_missing_corrupt_and_foreign_archives_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.tar does not exist"):
        archive_image_id(tmp_path / "nope.tar", REF)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 40)
    with pytest.raises(ValueError, match=r"junk\.tar is not a readable tar archive"):
        archive_image_id(junk, REF)
    foreign = _tar(tmp_path / "foreign.tar", {"hello.txt": b"hi"})
    with pytest.raises(ValueError, match=r"foreign\.tar is not an image archive"):
        archive_image_id(foreign, REF)
    broken = _tar(tmp_path / "broken.tar", {"manifest.json": b"{not json"})
    with pytest.raises(ValueError, match=r"broken\.tar is corrupt"):
        archive_image_id(broken, REF)


# -- planning ---------------------------------------------------------------------


ARCHIVE_ID = "sha256:" + "c" * 64


def _archive_image() -> ImageSpec:
    return ImageSpec(key="app", ref=REF, driver="archive", pull="never", archive="/spec/app.tar")


def _web(image: ImageSpec):
    # As desired.py builds it: the container hashes the image's build_hash (empty for an archive).
    from reconciler.hashing import config_hash, field_hashes

    config = {"image": REF, "image_build": image.build_hash, "env": {}, "command": None}
    return replace(container(image_ref=REF), image_key="app", config_hash=config_hash(config),
                   field_hashes=tuple(sorted(field_hashes(config, expand=frozenset({"env"})).items())))


def _loaded(image_id: str, archive_holds: str | None):
    """The local image as the archive driver reports it: ``content`` says what the archive holds (None: unknown)."""
    content = None if archive_holds is None else Content(image_id != archive_holds, image_id, archive_holds)
    return replace(live_image(REF, image_id=image_id), content=content)


def test_missing_archive_image_is_loaded():
    image = _archive_image()
    web = _web(image)
    plan = plan_changes(state(web, images=[image]), live(images=()))
    assert actions(plan) == [("create", f"image:{REF}"), ("create", "container:demo-web-1")]
    assert plan.changes[0].reasons == ("load: image not present",)
    assert not plan.changes[0].error


def test_archive_with_the_local_image_id_changes_nothing():
    image = _archive_image()
    web = _web(image)
    current = live(live_container(web, image_id=ARCHIVE_ID), images=[_loaded(ARCHIVE_ID, ARCHIVE_ID)])
    assert plan_changes(state(web, images=[image]), current).empty


def test_changed_archive_updates_the_image_and_replaces_its_containers():
    image = _archive_image()
    running = live_container(_web(image), image_id=ARCHIVE_ID)
    current = live(running, images=[_loaded(ARCHIVE_ID, IMAGE_ID)])
    plan = plan_changes(state(_web(image), images=[image]), current)
    assert actions(plan) == [("update", f"image:{REF}"), ("replace", "container:demo-web-1")]
    assert plan.changes[0].reason is Reason.CONTENT_CHANGED
    assert plan.changes[0].reasons == (f"content changed: {ARCHIVE_ID[:19]}… → {IMAGE_ID[:19]}…",)
    assert plan.changes[0].live_id == ARCHIVE_ID
    replaced = plan.changes[1]
    assert "image" in replaced.forced_by
    assert f"image:{REF}" in replaced.requires  # the load happens before the new container


def test_the_core_compares_no_archive_ids_itself():
    """A driver that reports no ``content`` for an archive never gets a content update, whatever the ids."""
    image = _archive_image()
    running = live_container(_web(image), image_id=ARCHIVE_ID)
    assert plan_changes(state(_web(image), images=[image]), live(running, images=[_loaded(ARCHIVE_ID, None)])).empty


# -- the archive driver's answer ------------------------------------------------------


def _archive_driver(image_id: str) -> tuple[ArchiveRegistryDriver, FakeDockerAPI]:
    """The driver, on an engine holding one local image tagged ``REF`` with ``image_id``."""
    api = FakeDockerAPI()
    api.add_image(REF, id=image_id)
    context = DriverContext(stack="demo")
    use_client(context, api)
    return ArchiveRegistryDriver(context), api


def _wanted(path: Path) -> dict[str, ImageSpec]:
    return {REF: replace(_archive_image(), archive=str(path))}


def test_archive_driver_reports_what_the_archive_holds_as_content(tmp_path):
    path = _tar(tmp_path / "app.tar", _docker_save(f"{CONFIG_HEX}.json"))
    driver, api = _archive_driver(f"sha256:{CONFIG_HEX}")
    (image,) = driver.observe("demo", _wanted(path))
    assert image.content == Content(False, f"sha256:{CONFIG_HEX}", f"sha256:{CONFIG_HEX}")
    assert api.count("images") == 1 and not api.writes()

    other = hashlib.sha256(b"v2").hexdigest()
    manifest = [{"Config": f"{other}.json", "RepoTags": [REF], "Layers": []}]
    _tar(path, {"manifest.json": json.dumps(manifest).encode(), "padding.json": b"{}" * 64})
    (image,) = driver.observe("demo", _wanted(path))
    assert image.content == Content(True, f"sha256:{CONFIG_HEX}", f"sha256:{other}")


def test_archive_driver_reads_an_unchanged_archive_once(tmp_path, monkeypatch):
    import reconciler_docker.archive as archive_module

    path = _tar(tmp_path / "app.tar", _docker_save(f"{CONFIG_HEX}.json"))
    reads = []
    real = archive_module.archive_image_id
    monkeypatch.setattr(archive_module, "archive_image_id", lambda p, ref: reads.append(p) or real(p, ref))
    driver, _ = _archive_driver(f"sha256:{CONFIG_HEX}")
    for _ in range(3):
        driver.observe("demo", _wanted(path))
    assert reads == [path]


def test_archive_driver_fails_observe_on_an_unreadable_archive(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 40)
    driver, _ = _archive_driver(ARCHIVE_ID)
    with pytest.raises(PermanentError, match=r"junk\.tar is not a readable tar archive"):
        driver.observe("demo", _wanted(junk))


# -- from the spec ----------------------------------------------------------------


def test_spec_archive_resolves_beside_the_spec_and_is_not_opened_by_the_core(tmp_path):
    from reconciler.reconcile import load_desired

    (tmp_path / "images").mkdir()
    # Not an archive at all: what the file holds is the archive driver's to read, at observe.
    (tmp_path / "images" / "app.tar").write_bytes(b"not read when the spec is read")
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"name: demo\nimages:\n  app: {{ref: \"{REF}\", archive: ./images/app.tar}}\n"
                    "containers:\n  web: {image: app}\n")
    desired = load_desired([spec])
    image = desired.images["app"]
    assert (image.driver, image.archive) == ("archive", str(tmp_path / "images" / "app.tar"))
    assert (image.build_hash, image.config_hash) == ("", "")
    assert str(tmp_path / "images" / "app.tar") in desired.inputs  # the watch loop follows the file


def test_spec_naming_a_missing_archive_is_a_located_error(tmp_path):
    from reconciler.errors import SpecError
    from reconciler.reconcile import load_desired

    spec = tmp_path / "stack.yaml"
    spec.write_text(f"name: demo\nimages:\n  app: {{ref: \"{REF}\", archive: ./gone.tar}}\n")
    with pytest.raises(SpecError) as caught:
        load_desired([spec])
    text = str(caught.value)
    assert "stack.yaml:3" in text and "images.app" in text and "gone.tar does not exist" in text


def test_archive_driver_without_archive_is_a_schema_error(tmp_path):
    from reconciler.errors import SpecError
    from reconciler.reconcile import load_desired

    spec = tmp_path / "stack.yaml"
    spec.write_text(f"name: demo\nimages:\n  app: {{ref: \"{REF}\", driver: archive}}\n")
    with pytest.raises(SpecError, match="archive"):
        load_desired([spec])
