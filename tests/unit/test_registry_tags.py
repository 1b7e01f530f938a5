"""The docker driver's tag listing (``reconciler_docker.taglist``) against a tiny local fake registry.

Pagination by ``Link``, conditional requests (``ETag`` / ``304``), Bearer tokens
reused until they expire, the Basic challenge, error mapping with no secret in
the message, and the index → manifest → config walk of ``tag_details``.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from reconciler.drivers import DriverContext, TagDetails
from reconciler.errors import PermanentError, TemporaryError
from reconciler.model import ImageSpec

from reconciler_docker.credentials import CredentialStore
from reconciler_docker.images import DockerRegistryDriver
from reconciler_docker.taglist import TagListFailed, TagLister, parse_created

from ..fake_registry import FakeRegistry, Manifest, credential_store

TAGS = ["1.4.0", "1.4.1", "1.5.0-rc1", "2.0.0", "latest"]
CONFIG = json.dumps({"created": "2026-11-30T12:34:56.123456789Z", "architecture": "amd64"}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": CONFIG_DIGEST, "size": len(CONFIG)}, "layers": []}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
INDEX = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
    {"digest": MANIFEST_DIGEST, "platform": {"os": "linux", "architecture": "amd64"}},
]}).encode()
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()


@pytest.fixture
def fake(request):
    one, index = Manifest(MANIFEST_DIGEST, MANIFEST), Manifest(INDEX_DIGEST, INDEX)
    manifests = {**{tag: one for tag in TAGS}, MANIFEST_DIGEST: one, "multi": index, INDEX_DIGEST: index}
    server = FakeRegistry(tags=TAGS, manifests=manifests, blobs={CONFIG_DIGEST: CONFIG},
                          **getattr(request, "param", {}))
    yield server
    server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- listing -------------------------------------------------------------------------

def test_every_page_is_followed_by_its_link(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path), page_size=2)
    assert lister.list_tags(f"{fake.host}/team/app:1.4.0") == TAGS
    assert [r[1] for r in fake.lists()] == [
        "/v2/team/app/tags/list?n=2", "/v2/team/app/tags/list?last=1.4.1&n=2",
        "/v2/team/app/tags/list?last=2.0.0&n=2"]
    assert lister.requests == 3  # Basic up front: no challenge


def test_an_unchanged_list_is_a_304_answered_from_memory(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path))
    ref = f"{fake.host}/team/app:1.4.0"
    counted = []
    assert lister.list_tags(ref, count=lambda: counted.append(1)) == TAGS
    assert lister.list_tags(ref, count=lambda: counted.append(1)) == TAGS
    assert len(counted) == 2 and len(fake.lists()) == 2
    fake.tags.append("2.0.1")
    assert lister.list_tags(ref)[-1] == "2.0.1"  # a changed list is a 200 again


def test_each_page_is_asked_conditionally(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path), page_size=2)
    ref = f"{fake.host}/team/app:1"
    lister.list_tags(ref)
    before = len(fake.requests)
    assert lister.list_tags(ref) == TAGS
    assert len(fake.requests) - before == 3  # one 304 per page, the next page from what was kept


@pytest.mark.parametrize("fake", [{"etag": False}], indirect=True)
def test_without_etags_a_listing_costs_one_request_a_page(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path))
    ref = f"{fake.host}/team/app:1"
    lister.list_tags(ref)
    lister.list_tags(ref)
    assert lister.requests == 2
    assert not any(r for r in fake.requests if r[0] == "GET" and "If-None-Match" in r[1])


@pytest.mark.parametrize("fake", [{"scheme": "bearer", "expires_in": 300}], indirect=True)
def test_a_bearer_token_is_reused_until_it_expires(fake, tmp_path):
    clock = Clock()
    lister = TagLister(credential_store(fake.host, tmp_path), clock=clock)
    ref = f"{fake.host}/team/app:1"
    assert lister.list_tags(ref) == TAGS
    tokens = [r for r in fake.requests if r[1].startswith("/token")]
    assert len(tokens) == 1 and "scope=repository%3Ateam%2Fapp%3Apull" in tokens[0][1]
    assert len(fake.lists()) == 2  # the challenge, then with the token
    clock.now += 200
    lister.list_tags(ref)
    assert fake.tokens == 1 and len(fake.lists()) == 3  # the held token: no challenge, no fetch
    clock.now += 200  # past expires_in
    lister.list_tags(ref)
    assert fake.tokens == 2 and len(fake.lists()) == 4  # a new token fetched before asking
    assert fake.lists()[-1][2] == "Bearer tok-2"


@pytest.mark.parametrize("fake", [{"scheme": "bearer"}], indirect=True)
def test_a_token_lives_60_seconds_when_the_service_does_not_say(fake, tmp_path):
    clock = Clock()
    lister = TagLister(credential_store(fake.host, tmp_path), clock=clock)
    ref = f"{fake.host}/team/app:1"
    lister.list_tags(ref)
    clock.now += 30
    lister.list_tags(ref)
    assert fake.tokens == 1
    clock.now += 31
    lister.list_tags(ref)
    assert fake.tokens == 2


@pytest.mark.parametrize("fake", [{"scheme": "bearer"}], indirect=True)
def test_each_repository_gets_a_token_for_its_own_scope(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path))
    lister.list_tags(f"{fake.host}/team/a:1")
    lister.list_tags(f"{fake.host}/team/b:1")
    scopes = [r[1] for r in fake.requests if r[1].startswith("/token")]
    assert len(scopes) == 2 and "team%2Fa" in scopes[0] and "team%2Fb" in scopes[1]


def test_a_basic_challenge_is_answered_with_the_stored_credentials(fake, tmp_path):
    from reconciler_docker.registryhttp import _Auth

    lister = TagLister(credential_store(fake.host, tmp_path))
    anonymous = _Auth()
    anonymous.known.set()  # as if the registry had taken anonymous requests until now
    lister._auth[fake.host] = anonymous
    assert lister.list_tags(f"{fake.host}/team/app:1") == TAGS
    assert [r[2] is None for r in fake.lists()] == [True, False]


# -- errors --------------------------------------------------------------------------

def test_wrong_credentials_are_a_permanent_error_without_the_password(fake, tmp_path):
    with pytest.raises(TagListFailed) as caught:
        TagLister(credential_store(fake.host, tmp_path, password="wrong-pw")).list_tags(f"{fake.host}/team/app:1")
    assert "authentication failed" in str(caught.value) and "'bob'" in str(caught.value)
    assert "wrong-pw" not in str(caught.value) and isinstance(caught.value, PermanentError)


def test_a_missing_repository_is_a_permanent_error(fake, tmp_path):
    with pytest.raises(PermanentError, match="not found"):
        TagLister(credential_store(fake.host, tmp_path)).list_tags(f"{fake.host}/team/missing:1")


@pytest.mark.parametrize("status", [500, 503, 429])
def test_5xx_and_429_are_temporary(fake, tmp_path, status):
    fake.status = status
    with pytest.raises(TemporaryError, match=str(status)):
        TagLister(credential_store(fake.host, tmp_path)).list_tags(f"{fake.host}/team/app:1")


def test_an_unreachable_registry_is_temporary(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TemporaryError, match="unreachable"):
        TagLister(CredentialStore({"DOCKER_CONFIG": str(tmp_path)})).list_tags(f"127.0.0.1:{port}/a:1")


@pytest.mark.parametrize("fake", [{"scheme": "bearer"}], indirect=True)
def test_a_token_never_appears_in_an_error(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path))
    lister.list_tags(f"{fake.host}/team/app:1")
    fake.status = 403
    with pytest.raises(PermanentError) as caught:
        lister.list_tags(f"{fake.host}/team/app:1")
    assert "tok-" not in str(caught.value) and "s3cret" not in str(caught.value)


# -- details -------------------------------------------------------------------------

def test_details_walk_the_index_to_the_amd64_manifest_and_its_config(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path))
    details = lister.tag_details(f"{fake.host}/team/app:1", "multi")
    assert details == TagDetails(tag="multi", digest=INDEX_DIGEST,
                                 created=datetime(2026, 11, 30, 12, 34, 56, 123456, tzinfo=timezone.utc))
    paths = [r[1] for r in fake.requests]
    assert paths == ["/v2/team/app/manifests/multi", f"/v2/team/app/manifests/{MANIFEST_DIGEST}",
                     f"/v2/team/app/blobs/{CONFIG_DIGEST}"]


def test_details_are_kept_by_digest(fake, tmp_path):
    lister = TagLister(credential_store(fake.host, tmp_path))
    one = lister.tag_details(f"{fake.host}/team/app:1", "1.4.0")
    before = len(fake.requests)
    two = lister.tag_details(f"{fake.host}/team/app:1", "1.4.1")  # the same manifest under another tag
    assert len(fake.requests) - before == 1
    assert (one.digest, two.digest, two.tag) == (MANIFEST_DIGEST, MANIFEST_DIGEST, "1.4.1")


def test_details_of_a_missing_tag_are_a_permanent_error(fake, tmp_path):
    with pytest.raises(PermanentError, match="not found"):
        TagLister(credential_store(fake.host, tmp_path)).tag_details(f"{fake.host}/team/app:1", "9.9.9")


@pytest.mark.parametrize("text, expected", [
    ("2026-11-30T12:34:56Z", datetime(2026, 11, 30, 12, 34, 56, tzinfo=timezone.utc)),
    ("2026-11-30T13:34:56.5+01:00", datetime(2026, 11, 30, 12, 34, 56, 500000, tzinfo=timezone.utc)),
    ("0001-01-01T00:00:00Z", None),
    ("", None),
    (None, None),
    ("yesterday", None),
])
def test_parse_created(text, expected):
    assert parse_created(text) == expected


@pytest.mark.parametrize("ref, expected", [
    ("127.0.0.1:5000/team/app:1.4.2@sha256:" + "1" * 64, ("127.0.0.1:5000", "team/app", "1.4.2")),
    ("busybox@sha256:" + "1" * 64, ("registry-1.docker.io", "library/busybox", "latest")),
])
def test_a_pinned_reference_names_its_repository(ref, expected):
    from reconciler_docker.registryhttp import repository_path

    assert repository_path(ref) == expected


# -- the driver ----------------------------------------------------------------------

def test_the_driver_counts_each_request_as_a_read_and_keeps_its_lister_per_engine(fake, tmp_path, monkeypatch):
    for name, value in {"RECONCILER_REGISTRY_AUTH": str(tmp_path / "auth.yaml"), "PW": "s3cret",
                        "DOCKER_CONFIG": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    credential_store(fake.host, tmp_path)  # writes auth.yaml
    shared: dict = {}
    spec = ImageSpec(key="app", ref=f"{fake.host}/team/app:1.4.0")
    first = DockerRegistryDriver(DriverContext(stack="a", engine_shared=shared))
    assert first.list_tags(spec) == TAGS
    assert first.tag_details(spec, "1.4.0").digest == MANIFEST_DIGEST
    assert first.context.stats["read"] == 1 + 2  # the list; the manifest and its config
    second = DockerRegistryDriver(DriverContext(stack="b", engine_shared=shared))
    assert second.list_tags(spec) == TAGS  # the first's ETag: a 304
    assert second.context.stats["read"] == 1 and len(fake.lists()) == 2
    cli = DockerRegistryDriver(DriverContext(stack="c"))  # no engine_shared: a lister of its own
    cli.list_tags(spec)
    assert cli._tags() is not first._tags() and cli._tags() is cli._tags()
