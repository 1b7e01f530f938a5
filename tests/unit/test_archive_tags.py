"""The archive driver's tag listing: the tags an archive gives a repository, and what each names."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from reconciler.drivers import TagDetails
from reconciler.errors import PermanentError

from reconciler_docker.imagearchive import ArchivedTag, archive_tags

from .test_archive import CONFIG_HEX, REF, _archive_driver, _archive_image, _docker_save, _oci_layout, _tar

CREATED = b'{"created":"2026-11-30T12:00:00.5Z","architecture":"amd64","os":"linux"}'


def _spec(path) -> object:
    return replace(_archive_image(), archive=str(path))


def test_docker_save_lists_the_tags_of_the_spec_repository_only(tmp_path):
    members = _docker_save(f"{CONFIG_HEX}.json", tags=(REF, "example/app:1.1", "other/app:9", "docker.io/example/app:2"))
    path = _tar(tmp_path / "app.tar", members)
    driver, api = _archive_driver(f"sha256:{CONFIG_HEX}")
    assert driver.list_tags(_spec(path)) == ["1.0", "1.1", "2"]
    assert not api.calls  # an archive is read, the engine is not asked


def test_a_pinned_reference_lists_the_tags_of_its_repository(tmp_path):
    path = _tar(tmp_path / "app.tar", _docker_save(f"{CONFIG_HEX}.json", tags=(REF, "example/app:1.1")))
    driver, _ = _archive_driver(f"sha256:{CONFIG_HEX}")
    spec = replace(_spec(path), ref=f"{REF}@sha256:{CONFIG_HEX}")
    assert driver.list_tags(spec) == ["1.0", "1.1"]


def test_details_are_the_image_id_and_the_config_created(tmp_path):
    members = _docker_save(f"{CONFIG_HEX}.json")
    members[f"{CONFIG_HEX}.json"] = CREATED
    path = _tar(tmp_path / "app.tar", members)
    driver, _ = _archive_driver(f"sha256:{CONFIG_HEX}")
    assert driver.tag_details(_spec(path), "1.0") == TagDetails(
        tag="1.0", digest=f"sha256:{CONFIG_HEX}", created=datetime(2026, 11, 30, 12, 0, 0, 500000, tzinfo=timezone.utc))
    with pytest.raises(PermanentError, match="no tag 9.9"):
        driver.tag_details(_spec(path), "9.9")


def test_a_config_without_created_gives_none(tmp_path):
    path = _tar(tmp_path / "app.tar", _docker_save(f"{CONFIG_HEX}.json"))
    driver, _ = _archive_driver(f"sha256:{CONFIG_HEX}")
    assert driver.tag_details(_spec(path), "1.0").created is None


def test_oci_layout_names_tags_by_annotation(tmp_path):
    root = _oci_layout(tmp_path / "layout")
    assert archive_tags(root) == [ArchivedTag("1.0", f"sha256:{CONFIG_HEX}", None)]
    driver, _ = _archive_driver(f"sha256:{CONFIG_HEX}")
    assert driver.list_tags(_spec(root)) == ["1.0"]
    assert driver.tag_details(_spec(root), "1.0").digest == f"sha256:{CONFIG_HEX}"


def test_an_archive_without_a_tag_of_the_repository_is_a_permanent_error(tmp_path):
    path = _tar(tmp_path / "app.tar", _docker_save(f"{CONFIG_HEX}.json", tags=("other/app:1",)))
    driver, _ = _archive_driver(f"sha256:{CONFIG_HEX}")
    with pytest.raises(PermanentError, match="no tag of repository example/app"):
        driver.list_tags(_spec(path))


def test_an_unchanged_archive_is_read_once_for_its_tags(tmp_path, monkeypatch):
    import reconciler_docker.archive as archive_module

    path = _tar(tmp_path / "app.tar", _docker_save(f"{CONFIG_HEX}.json"))
    reads = []
    real = archive_module.archive_tags
    monkeypatch.setattr(archive_module, "archive_tags", lambda p: reads.append(p) or real(p))
    driver, _ = _archive_driver(f"sha256:{CONFIG_HEX}")
    for _ in range(3):
        driver.list_tags(_spec(path))
        driver.tag_details(_spec(path), "1.0")
    assert reads == [path]
    manifest = [{"Config": f"{CONFIG_HEX}.json", "RepoTags": [REF, "example/app:1.1"], "Layers": []}]
    _tar(path, {"manifest.json": json.dumps(manifest).encode(), "padding.json": b"{}" * 64})
    assert driver.list_tags(_spec(path)) == ["1.0", "1.1"]
