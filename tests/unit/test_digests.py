"""Digests: the manifest HEAD client against a tiny local fake registry, and the plan's decisions."""
from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.hashing import canonical_json
from reconciler.labels import (
    FIELDS as FIELDS_LABEL,
    CONFIG_HASH as HASH_LABEL,
    NAME as NAME_LABEL,
    REPLICA as REPLICA_LABEL,
    STACK as STACK_LABEL,
)
from reconciler.drivers import DriverContext
from reconciler.model import Content, ContainerSpec, DesiredState, ImageSpec, Kind, LiveObject, LiveState
from reconciler.plan import Action, Reason
from reconciler.planner import plan_changes
from reconciler.status import status_rows
from reconciler.testing.fakedocker import FakeDockerAPI

from reconciler_docker.credentials import CredentialStore
from reconciler_docker.distribution import DigestCheckFailed, ManifestChecker
from reconciler_docker.registryhttp import ACCEPT, parse_challenge, repository_path
from reconciler.sdk.docker import use_client
from reconciler_docker.images import DockerRegistryDriver

from ..fake_registry import FakeRegistry, Manifest, credential_store

OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64
OLD_ID = "sha256:" + "a" * 64


# -- parsing -------------------------------------------------------------------------

def test_parse_bearer_challenge():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:library/busybox:pull"}


def test_parse_basic_challenge_and_unquoted_params():
    assert parse_challenge('Basic realm="reconciler-tests"') == ("basic", {"realm": "reconciler-tests"})
    assert parse_challenge("Bearer realm=http://x/t, service=reg") == ("bearer", {"realm": "http://x/t", "service": "reg"})


@pytest.mark.parametrize("ref, expected", [
    ("busybox:1", ("registry-1.docker.io", "library/busybox", "1")),
    ("team/app", ("registry-1.docker.io", "team/app", "latest")),
    ("docker.io/library/busybox:2", ("registry-1.docker.io", "library/busybox", "2")),
    ("127.0.0.1:5000/test/app:1", ("127.0.0.1:5000", "test/app", "1")),
    ("localhost:5000/app", ("localhost:5000", "app", "latest")),
    ("ghcr.io/org/app:v1", ("ghcr.io", "org/app", "v1")),
])
def test_repository_path(ref, expected):
    assert repository_path(ref) == expected


# -- a fake registry -------------------------------------------------------------------

@pytest.fixture
def fake(request):
    server = FakeRegistry(getattr(request, "param", "basic"), default=Manifest(NEW))
    yield server
    server.close()


def test_basic_registry_costs_one_head_per_image_with_credentials(fake, tmp_path):
    refs = [f"{fake.host}/team/app{i}:1" for i in range(20)]
    checker = ManifestChecker(credential_store(fake.host, tmp_path))
    assert checker.digests(refs) == {ref: NEW for ref in refs}
    assert len(fake.heads()) == 20 and checker.requests == 20
    assert all(a == ACCEPT for a in fake.accepts)
    assert "application/vnd.oci.image.index.v1+json" in ACCEPT


def test_basic_challenge_is_answered_with_the_stored_credentials(fake, tmp_path):
    from reconciler_docker.registryhttp import _Auth

    checker = ManifestChecker(credential_store(fake.host, tmp_path))
    open_so_far = _Auth()
    open_so_far.known.set()  # as if the registry had taken anonymous requests until now
    checker._auth[fake.host] = open_so_far
    assert checker.digest(f"{fake.host}/team/app:1") == NEW
    assert [r[2] is None for r in fake.heads()] == [True, False]  # 401 Basic, then with credentials


@pytest.mark.parametrize("fake", ["bearer"], indirect=True)
def test_bearer_flow_fetches_one_token_for_the_whole_batch(fake, tmp_path):
    refs = [f"{fake.host}/team/app{i}:1" for i in range(10)]
    checker = ManifestChecker(credential_store(fake.host, tmp_path))
    assert checker.digests(refs) == {ref: NEW for ref in refs}
    tokens = [r for r in fake.requests if r[0] == "GET"]
    assert len(tokens) == 1
    assert tokens[0][1].count("scope=") == 10 and "service=fake" in tokens[0][1]
    assert len(fake.heads()) == 11  # one challenged HEAD, then one per image
    assert all(r[2] == "Bearer tok-1" for r in fake.heads()[1:])


@pytest.mark.parametrize("fake", ["none"], indirect=True)
def test_open_registry_gets_no_credentials_it_did_not_ask_for(fake, tmp_path):
    checker = ManifestChecker(CredentialStore({"DOCKER_CONFIG": str(tmp_path)}))
    assert checker.digests([f"{fake.host}/a:1", f"{fake.host}/b:1"]) == {f"{fake.host}/a:1": NEW,
                                                                          f"{fake.host}/b:1": NEW}
    assert [r[2] for r in fake.heads()] == [None, None]


def test_failures_are_per_image_and_name_no_secret(fake, tmp_path):
    checker = ManifestChecker(credential_store(fake.host, tmp_path, password="wrong-pw"))
    answers = checker.digests([f"{fake.host}/a:1", f"{fake.host}/missing:1"])
    assert all(isinstance(a, DigestCheckFailed) for a in answers.values())
    assert "authentication failed" in str(answers[f"{fake.host}/a:1"])
    assert "wrong-pw" not in " ".join(map(str, answers.values()))
    good = ManifestChecker(credential_store(fake.host, tmp_path)).digests([f"{fake.host}/a:1", f"{fake.host}/missing:1"])
    assert good[f"{fake.host}/a:1"] == NEW and "not found" in str(good[f"{fake.host}/missing:1"])


def test_unreachable_registry_is_an_answer_not_a_crash(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = f"127.0.0.1:{port}/a:1"
    answer = ManifestChecker(CredentialStore({"DOCKER_CONFIG": str(tmp_path)})).digests([ref])[ref]
    assert "unreachable" in str(answer)


def test_redirect_to_another_host_drops_credentials(tmp_path):
    target = FakeRegistry("none", default=Manifest(NEW))
    source = FakeRegistry("none", redirect=f"http://localhost:{target.port}")
    host = source.host
    try:
        assert ManifestChecker(credential_store(host, tmp_path)).digest(f"{host}/a:1") == NEW
        seen = [auth for _, _, auth in target.heads()]
        assert seen == [None]
    finally:
        for server in (source, target):
            server.close()


# -- plan decisions ------------------------------------------------------------------

REF = "reg.example:5000/team/app:1"


def _desired(image: ImageSpec, container_ref: str | None = None) -> DesiredState:
    ref = container_ref or image.ref
    c = ContainerSpec(key="web", name="demo-web-1", replica=1, image_key=image.key, image_ref=ref,
                      config_hash="h1")
    return DesiredState(stack="demo", images={image.key: image}, containers={c.name: c})


def _live(ref: str = REF, *, upstream: str | None = NEW, local: str = OLD, error: str | None = None) -> LiveState:
    """The live state as the docker registry driver reports it: ``upstream`` None when the registry did not answer."""
    repo = ref.rpartition(":")[0]
    details: dict = {"repo_digests": (f"{repo}@{local}",) if local else (), "digests_by_id": {OLD_ID: local}}
    if error:
        details["upstream_error"] = error
    content = Content(changed=upstream != local, local=local, source=upstream) if upstream else None
    image = LiveObject(kind=Kind.IMAGE, name=ref, id=OLD_ID, image_id=OLD_ID, details=details, content=content)
    labels = {STACK_LABEL: "demo", NAME_LABEL: "web", HASH_LABEL: "h1", REPLICA_LABEL: "1",
              FIELDS_LABEL: canonical_json({})}
    container = LiveObject(kind=Kind.CONTAINER, name="demo-web-1", id="c1", labels=labels, owned=True,
                           state="running", image_id=OLD_ID)
    return LiveState(images={ref: image}, containers={"demo-web-1": container})


def _actions(plan):
    return {(c.kind.value, c.action.value) for c in plan.changes}


def test_moved_tag_pulls_and_replaces_its_containers():
    plan = plan_changes(_desired(ImageSpec(key="app", ref=REF)), _live())
    image, container = plan.changes
    assert image.action is Action.UPDATE
    assert image.reasons == (f"pull: tag moved upstream ({OLD[:19]}… → {NEW[:19]}…)",)
    assert container.action is Action.REPLACE and "image" in container.forced_by


def test_unmoved_tag_is_a_no_op_even_with_pull_always():
    assert plan_changes(_desired(ImageSpec(key="app", ref=REF)), _live(upstream=OLD)).empty
    assert plan_changes(_desired(ImageSpec(key="app", ref=REF, pull="always")), _live(upstream=OLD)).empty


def test_pull_always_pulls_when_the_registry_cannot_answer():
    plan = plan_changes(_desired(ImageSpec(key="app", ref=REF, pull="always")), _live(upstream=None, error="down"))
    assert [c.reasons for c in plan.changes] == [("pull: policy always",)]  # the next pass compares ids


def test_failed_check_with_if_not_present_changes_nothing():
    assert plan_changes(_desired(ImageSpec(key="app", ref=REF)), _live(upstream=None, error="down")).empty


@pytest.mark.parametrize("spec", [
    ImageSpec(key="app", ref=REF, track="digest"),
    ImageSpec(key="app", ref=REF, track="digest", pull="always"),
    ImageSpec(key="app", ref=REF, pull="never"),
])
def test_policies_that_stay_on_the_local_image(spec):
    assert plan_changes(_desired(spec), _live()).empty


def test_pinned_reference_never_moves():
    pinned = f"reg.example:5000/team/app@{OLD}"
    live = _live()
    image = replace(live.images[REF], name=pinned)
    live = replace(live, images={pinned: image})
    assert plan_changes(_desired(ImageSpec(key="app", ref=pinned, pull="always")), live).empty


def test_changed_content_with_no_local_digest_is_pulled():
    (image_change, _) = plan_changes(_desired(ImageSpec(key="app", ref=REF)), _live(local="")).changes
    assert image_change.reason is Reason.PULL_TAG_MOVED and "(none)" in image_change.reasons[0]


@pytest.mark.parametrize("spec", [
    ImageSpec(key="app", ref=REF),
    ImageSpec(key="app", ref=REF, driver="archive", pull="never", archive="/spec/app.tar"),
])
def test_an_undocumented_upstream_digest_in_details_is_not_read(spec):
    """A driver's undocumented ``details["upstream_digest"]`` moves nothing: only ``content`` does."""
    live = _live(upstream=None)
    image = live.images[REF]
    live = replace(live, images={REF: replace(image, details={**image.details, "upstream_digest": NEW})})
    assert live.images[REF].content is None
    assert plan_changes(_desired(spec), live).empty
    always = plan_changes(_desired(replace(spec, pull="always")), live) if spec.tracks_tag else None
    if always is not None:  # "always" pulls because nobody said where the tag points, not for the detail
        assert [c.reason for c in always.changes] == [Reason.PULL_ALWAYS]


# -- the docker registry driver's answer ---------------------------------------------------


def _observed(monkeypatch, *, local: str | None, upstream, spec: ImageSpec | None = None) -> LiveObject:
    api = FakeDockerAPI()  # one local image tagged REF, pulled as ``local`` (if given)
    api.add_image(REF, id=OLD_ID, digest=local)
    context = DriverContext(stack="demo")
    use_client(context, api)
    driver = DockerRegistryDriver(context)
    asked: list[str] = []

    def answer(refs):
        asked.extend(refs)
        return {ref: upstream for ref in asked}
    monkeypatch.setattr(driver, "_upstream", answer)
    (image,) = driver.observe("demo", {REF: spec or ImageSpec(key="app", ref=REF)})
    return image


def test_docker_driver_reports_a_moved_tag_as_changed_content(monkeypatch):
    image = _observed(monkeypatch, local=OLD, upstream=NEW)
    assert image.content == Content(changed=True, local=OLD, source=NEW)
    assert "upstream_digest" not in image.details, "the core reads content, not an undocumented detail"
    assert _observed(monkeypatch, local=OLD, upstream=OLD).content == Content(changed=False, local=OLD, source=OLD)


def test_docker_driver_reports_no_content_when_it_cannot_tell(monkeypatch):
    failed = _observed(monkeypatch, local=OLD, upstream=DigestCheckFailed("registry down"))
    assert failed.content is None and "registry down" in failed.details["upstream_error"]
    # Built or loaded here (no digest for its repository): it was never pulled, so nothing is asked.
    assert _observed(monkeypatch, local=None, upstream=NEW).content is None
    kept = _observed(monkeypatch, local=OLD, upstream=NEW, spec=ImageSpec(key="app", ref=REF, track="digest"))
    assert kept.content is None


def test_spec_policy_reaches_the_driver_through_the_config_hash():
    assert ImageSpec(key="a", ref=REF).tracks_tag
    assert not ImageSpec(key="a", ref=f"x/y@{OLD}").tracks_tag
    assert not ImageSpec(key="a", ref=REF, pull="never").tracks_tag


def test_status_rows_show_running_and_upstream_digests():
    desired, live = _desired(ImageSpec(key="app", ref=REF)), _live()
    rows = {r["name"]: r for r in status_rows(desired, live, plan_changes(desired, live))}
    assert rows[REF]["digest"] == OLD and rows[REF]["upstream"] == NEW
    assert rows["demo-web-1"]["digest"] == OLD and rows["demo-web-1"]["upstream"] == NEW
