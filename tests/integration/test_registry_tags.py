"""Tag listing against a real registry: Debian's docker-registry with htpasswd auth, tags pushed by the engine.

Several tags of one repository (two images: 2.0.0 is another build), listed
(with a small page size, which this registry ignores), read for their digest and creation time, with wrong credentials,
with the registry stopped, and counted: an unchanged listing costs one request.
"""
from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError, TemporaryError
from reconciler.model import ImageSpec
from reconciler_docker.credentials import CredentialStore
from reconciler_docker.images import DockerRegistryDriver
from reconciler_docker.taglist import TagLister

from .conftest import BASE_IMAGE
from .registry import Registry, RegistryInfo, credentials_env

pytestmark = pytest.mark.engine

TAGS = ["1.4.0", "1.4.1", "1.5.0-rc1", "2.0.0", "2026.11.30-abcdef"]


def _push(engine, server: Registry, image: str, repo: str, tag: str) -> str:
    """Push ``image`` as ``repo:tag``; the manifest digest the push reported."""
    engine.tag(image, repo, tag=tag)
    digest = ""
    try:
        for event in engine.push(repo, tag=tag, auth_config=server.auth_config, stream=True, decode=True):
            assert "error" not in event, event
            digest = (event.get("aux") or {}).get("Digest") or digest
    finally:
        engine.remove_image(f"{repo}:{tag}")
    assert digest.startswith("sha256:")
    return digest


@pytest.fixture(scope="module")
def pushed(engine, registry: RegistryInfo) -> dict[str, str]:
    """``TAGS`` of one fresh repository in the session's registry: tag → the digest its push reported."""
    repo = f"{registry.host}/tags/app-{uuid.uuid4().hex[:8]}"
    built = f"rtest-tags-{uuid.uuid4().hex[:8]}:next"
    dockerfile = f"FROM {BASE_IMAGE}\nLABEL version=2.0.0\n".encode()
    for event in engine.build(fileobj=io.BytesIO(dockerfile), tag=built, rm=True, decode=True):
        assert "error" not in event, event
    try:
        digests = {tag: _push(engine, registry.server, built if tag == "2.0.0" else BASE_IMAGE, repo, tag)
                   for tag in TAGS}
    finally:
        engine.remove_image(built)
    digests["repo"] = repo
    return digests


@pytest.fixture
def store(tmp_path, registry) -> CredentialStore:
    return CredentialStore(credentials_env(tmp_path, registry))


def test_every_tag_is_listed_with_a_small_page_size(pushed, store):
    lister = TagLister(store, page_size=2)
    assert sorted(lister.list_tags(f"{pushed['repo']}:1.4.0")) == sorted(TAGS)
    # docker-registry 2.8.2 (Debian's) ignores n= on tags/list and sends every tag with no Link header
    # (measured): one request. Link pages are covered against a fake in tests/unit/test_registry_tags.py.
    assert lister.requests == 1  # Basic credentials sent up front: no challenge


def test_details_name_the_pushed_digest_and_the_image_creation(pushed, store, engine):
    lister = TagLister(store)
    ref = f"{pushed['repo']}:1.4.0"
    for tag in ("1.4.0", "2.0.0"):
        details = lister.tag_details(ref, tag)
        assert details.tag == tag and details.digest == pushed[tag]
        assert isinstance(details.created, datetime) and details.created.utcoffset() == timedelta(0)
    base_created = engine.inspect_image(BASE_IMAGE)["Created"][:19]
    assert lister.tag_details(ref, "1.4.1").created.strftime("%Y-%m-%dT%H:%M:%S") == base_created
    assert lister.tag_details(ref, "2.0.0").created > datetime.now(timezone.utc) - timedelta(hours=1)


def test_a_second_unchanged_listing_costs_exactly_one_request(pushed, store):
    lister = TagLister(store)
    ref = f"{pushed['repo']}:1.4.0"
    first = lister.list_tags(ref)
    before = lister.requests
    assert lister.list_tags(ref) == first
    assert lister.requests - before == 1
    # Whether that one request was a 304 (the registry sent an ETag) or a 200: recorded for the docs.
    print(f"registry ETag on tags/list: {bool(lister._pages)}")


def test_the_driver_counts_its_requests_as_reads(pushed, tmp_path, registry, monkeypatch):
    for name, value in credentials_env(tmp_path, registry).items():
        monkeypatch.setenv(name, value)
    shared: dict = {}
    spec = ImageSpec(key="app", ref=f"{pushed['repo']}:1.4.0")
    driver = DockerRegistryDriver(DriverContext(stack="rtest-tags", engine_shared=shared))
    assert sorted(driver.list_tags(spec)) == sorted(TAGS)
    assert driver.tag_details(spec, "1.4.1").digest == pushed["1.4.1"]
    assert driver.context.stats["read"] == 1 + 2  # the list; the manifest and its config
    again = DockerRegistryDriver(DriverContext(stack="rtest-tags-2", engine_shared=shared))
    again.list_tags(spec)
    again.tag_details(spec, "1.4.1")  # known digest: one manifest GET
    assert again.context.stats["read"] == 1 + 1


def test_a_missing_repository_is_a_permanent_error(registry, store):
    with pytest.raises(PermanentError, match="not found"):
        TagLister(store).list_tags(f"{registry.host}/tags/missing-{uuid.uuid4().hex[:8]}:1")


def test_wrong_credentials_are_a_permanent_error_that_names_no_password(pushed, tmp_path, registry):
    env = credentials_env(tmp_path, registry)
    env["REG_PW"] = "wrong-" + uuid.uuid4().hex
    with pytest.raises(PermanentError) as caught:
        TagLister(CredentialStore(env)).list_tags(f"{pushed['repo']}:1.4.0")
    assert "authentication failed" in str(caught.value)
    assert env["REG_PW"] not in str(caught.value) and registry.password not in str(caught.value)


def test_a_stopped_registry_is_a_temporary_error(engine, tmp_path):
    server = Registry().start()
    try:
        ref = server.push_base(engine, BASE_IMAGE, repo="tags/stopped")
        info = RegistryInfo(server.host, server.username, server.password, ref, server)
        lister = TagLister(CredentialStore(credentials_env(tmp_path, info)))
        assert lister.list_tags(ref) == ["1"]
        server.stop()
        with pytest.raises(TemporaryError, match="unreachable"):
            lister.list_tags(ref)
        with pytest.raises(TemporaryError):
            lister.tag_details(ref, "1")
    finally:
        server.close()
