"""``reconciler.imageupdates``: which requests a check makes of a registry driver, and what it concludes.

The driver here is a stand-in with a fixed tag list (pure logic: the real registry is in
tests/integration/test_images_cli.py); it counts its calls, so the cost promises are held: one listing per
image when nothing changed, details only for the candidates a ``min_age`` must judge, newest first.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reconciler.drivers import TagDetails
from reconciler.errors import TemporaryError
from reconciler.imagepolicy import Skip
from reconciler.imageupdates import check_images, commit_message, describe_policy, repository_of
from reconciler.model import DesiredState, ImageSpec, PolicyKind, UpdatePolicy

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
HOST = "127.0.0.1:5000/team/app"


class Registry:
    """A registry driver's two tag methods over a fixed table: tag → (digest, age)."""

    def __init__(self, tags: dict[str, tuple[str, timedelta | None]], *, down: bool = False) -> None:
        self.tags = tags
        self.down = down
        self.calls: list[tuple[str, str]] = []

    def list_tags(self, spec: ImageSpec):
        self.calls.append(("list", ""))
        if self.down:
            raise TemporaryError("registry 127.0.0.1:5000 is unreachable")
        return list(self.tags)

    def tag_details(self, spec: ImageSpec, tag: str):
        self.calls.append(("details", tag))
        digest, age = self.tags[tag]
        return TagDetails(tag, digest, NOW - age if age is not None else None)


class Drivers:
    def __init__(self, driver) -> None:
        self.driver = driver

    def get(self, kind, name):
        return self.driver


def desired(ref: str, policy: UpdatePolicy) -> DesiredState:
    return DesiredState(stack="shop", images={"app": ImageSpec(key="app", ref=ref, update=policy)})


SERIES = {"1.4.0": ("sha256:" + "0" * 64, timedelta(days=30)), "1.4.1": ("sha256:" + "1" * 64, timedelta(days=2)),
          "1.5.0-rc1": ("sha256:" + "2" * 64, timedelta(days=1)), "2.0.0": ("sha256:" + "3" * 64, timedelta(hours=1)),
          "latest": ("sha256:" + "3" * 64, timedelta(hours=1))}
SEMVER = UpdatePolicy(kind=PolicyKind.SEMVER, semver=">=1.4 <2")


def test_a_newer_allowed_version_costs_one_listing_and_names_what_was_not_taken():
    registry = Registry(SERIES)
    [check] = check_images(desired(f"{HOST}:1.4.0", SEMVER), Drivers(registry), now=NOW)
    assert check.outdated and check.new_ref == f"{HOST}:1.4.1" and check.new_tag == "1.4.1"
    assert check.verdict.newest == "2.0.0"
    assert dict(check.verdict.skipped) == {"2.0.0": Skip.POLICY, "1.5.0-rc1": Skip.PRERELEASE}
    assert registry.calls == [("list", "")]


def test_nothing_newer_writes_nothing_and_costs_one_listing():
    registry = Registry(SERIES)
    [check] = check_images(desired(f"{HOST}:1.4.1", SEMVER), Drivers(registry), now=NOW)
    assert not check.outdated and check.new_ref == "" and registry.calls == [("list", "")]


def test_min_age_asks_details_newest_first_and_stops_at_the_first_old_enough():
    registry = Registry({**SERIES, "1.4.2": ("sha256:" + "4" * 64, timedelta(minutes=5)),
                        "1.4.3": ("sha256:" + "5" * 64, None)})
    policy = UpdatePolicy(kind=PolicyKind.SEMVER, semver=">=1.4 <2", min_age=24 * 3600)
    [check] = check_images(desired(f"{HOST}:1.4.0", policy), Drivers(registry), now=NOW)
    assert check.new_tag == "1.4.1"
    assert registry.calls == [("list", ""), ("details", "1.4.3"), ("details", "1.4.2"), ("details", "1.4.1")]
    assert (("1.4.3", Skip.MIN_AGE) in check.verdict.skipped) and (("1.4.2", Skip.MIN_AGE) in check.verdict.skipped)


def test_a_pin_writes_the_chosen_tags_digest_and_a_pinned_current_one_is_converged():
    registry = Registry(SERIES)
    policy = UpdatePolicy(kind=PolicyKind.SEMVER, semver=">=1.4 <2", pin_digest=True)
    [check] = check_images(desired(f"{HOST}:1.4.0", policy), Drivers(registry), now=NOW)
    assert check.new_ref == f"{HOST}:1.4.1@{SERIES['1.4.1'][0]}"
    registry.calls.clear()
    [again] = check_images(desired(check.new_ref, policy), Drivers(registry), now=NOW)
    assert not again.outdated and registry.calls == [("list", "")]


def test_a_digest_policy_follows_the_tag_itself():
    registry = Registry(SERIES)
    policy = UpdatePolicy(kind=PolicyKind.DIGEST, pin_digest=True)
    [check] = check_images(desired(f"{HOST}:latest", policy), Drivers(registry), now=NOW)
    assert check.new_ref == f"{HOST}:latest@{SERIES['latest'][0]}" and registry.calls == [("details", "latest")]
    [again] = check_images(desired(check.new_ref, policy), Drivers(registry), now=NOW)
    assert not again.outdated


def test_a_quarantined_current_version_goes_to_the_newest_allowed_one_older_or_not():
    registry = Registry(SERIES)
    [check] = check_images(desired(f"{HOST}:1.4.1", SEMVER), Drivers(registry), quarantined={"app": {"1.4.1"}},
                           now=NOW)
    assert check.new_ref == f"{HOST}:1.4.0" and check.verdict.current == "1.4.1"
    [kept] = check_images(desired(f"{HOST}:1.4.0", SEMVER), Drivers(registry), quarantined={"app": {"1.4.1"}},
                          now=NOW)
    assert not kept.outdated and ("1.4.1", Skip.QUARANTINED) in kept.verdict.skipped


def test_one_images_failure_is_its_own_answer():
    [check] = check_images(desired(f"{HOST}:1.4.0", SEMVER), Drivers(Registry(SERIES, down=True)), now=NOW)
    assert not check.outdated and "unreachable" in check.error


def test_a_driver_that_cannot_list_tags_says_so():
    class Silent(Registry):
        def list_tags(self, spec):
            return None

    [check] = check_images(desired(f"{HOST}:1.4.0", SEMVER), Drivers(Silent(SERIES)), now=NOW)
    assert check.error == "the docker registry driver cannot list tags"


@pytest.mark.parametrize("ref, expected", [
    ("busybox:1", ("docker.io", "library/busybox")),
    ("team/app", ("docker.io", "team/app")),
    ("127.0.0.1:5000/team/app:1.4.0", ("127.0.0.1:5000", "team/app")),
    ("localhost/app:1@sha256:" + "a" * 64, ("localhost", "app")),
    ("ghcr.io/org/app@sha256:" + "a" * 64, ("ghcr.io", "org/app")),
])
def test_repository_of_follows_dockers_rules(ref, expected):
    assert repository_of(ref) == expected


def test_the_commit_message_says_image_old_new_policy_and_digest():
    registry = Registry(SERIES)
    policy = UpdatePolicy(kind=PolicyKind.SEMVER, semver=">=1.4 <2", pin_digest=True)
    [check] = check_images(desired(f"{HOST}:1.4.0", policy), Drivers(registry), now=NOW)
    message = commit_message(check)
    subject, _, body = message.partition("\n\n")
    assert subject == "images: app 1.4.0 → 1.4.1 in stack shop"
    assert f"from: {HOST}:1.4.0" in body and f"to: {check.new_ref}" in body
    assert f"policy: {describe_policy(policy)}" in body and f"digest: {SERIES['1.4.1'][0]}" in body
