"""``reconcile images outdated|update|release`` against a real registry with tags pushed during the test:
what each policy allows and why newer tags were not taken (min_age, pre-releases, the range), a date-style
series, a digest pin that the engine then runs, and the spec files edited in place, byte for byte."""
from __future__ import annotations

import json
import uuid

import pytest

from reconciler.state import StateStore

from .registry import credentials_env, publish

SPEC = """\
name: {stack}
images:
  app:
    ref: {ref}   # kept current by `reconcile images update`
    update: {policy}
containers:
  web:
    image: app
    init: true
    stop_grace_period: 1s
"""


@pytest.fixture(scope="module")
def published(registry, engine):
    """(repository, digests by tag) of a repository holding a semver series; beside it, ``…/nightly`` holds a
    date-style one (a tag like 2026.11.30-abc1234 is a valid semantic version too: it would top a semver list).
    Pushed once for the module: the tests only read them."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    # The policies read tags only: one image under every tag but the one whose digest a pin is checked against.
    digests = {"1.4.1": publish(engine, registry, f"{name}/app", "1.4.1")}
    publish(engine, registry, f"{name}/app", "1.4.0", also=("1.5.0-rc1", "2.0.0"))
    publish(engine, registry, f"{name}/nightly", "2026.11.30-abc1234", also=("2026.12.02-0a1b2c3", "2026.12.01-def5678"))
    return f"{registry.host}/{name}/app", digests


@pytest.fixture(autouse=True)
def credentials(registry, tmp_path, monkeypatch):
    """The registry's credentials, for every command the tests run."""
    for variable, value in credentials_env(tmp_path, registry).items():
        monkeypatch.setenv(variable, value)


def outdated(stack, spec_file, *extra: str) -> dict:
    done = stack.cli("images", "outdated", "-f", str(spec_file), "--output", "json", *extra)
    assert done.code in (0, 2), done.err
    return json.loads(done.out)[0]


def test_outdated_names_the_newest_allowed_the_newest_published_and_why_not(stack, published):
    base, _ = published
    spec = stack.write(SPEC.format(stack=stack.name, ref=f"{base}:1.4.0", policy='{semver: ">=1.4 <2"}'))
    row = outdated(stack, spec)
    assert (row["current"], row["wanted"], row["latest"]) == ("1.4.0", "1.4.1", "2.0.0"), row
    assert row["skipped"] == [{"tag": "2.0.0", "reason": "policy"}, {"tag": "1.5.0-rc1", "reason": "prerelease"}]
    assert row["new_ref"] == f"{base}:1.4.1"
    text = stack.cli("images", "outdated", "-f", str(spec), "--detailed-exitcode")
    assert text.code == 2 and "1.4.1" in text.out and "2.0.0 (policy)" in text.out, text.out

    spec.write_text(SPEC.format(stack=stack.name, ref=f"{base}:1.4.0",
                                policy='{semver: ">=1.4 <2", prerelease: true}'))
    assert outdated(stack, spec)["wanted"] == "1.5.0-rc1"


def test_min_age_holds_back_a_tag_pushed_a_moment_ago(stack, published):
    base, _ = published
    spec = stack.write(SPEC.format(stack=stack.name, ref=f"{base}:1.4.0",
                                   policy='{semver: ">=1.4 <2", min_age: 1h}'))
    row = outdated(stack, spec)
    assert row["wanted"] == "1.4.0" and {"tag": "1.4.1", "reason": "min_age"} in row["skipped"], row
    assert row["new_ref"] is None


def test_a_date_style_series_is_ordered_by_the_extracted_part(stack, published):
    base, _ = published
    policy = "{pattern: '(?P<ts>\\d{4}\\.\\d{2}\\.\\d{2})-[0-9a-f]+', extract: '$$ts', order: numerical}"
    nightly = base.rpartition("/")[0] + "/nightly"
    spec = stack.write(SPEC.format(stack=stack.name, ref=f"{nightly}:2026.11.30-abc1234", policy=policy))
    row = outdated(stack, spec)
    assert row["wanted"] == "2026.12.02-0a1b2c3", row


def test_update_edits_only_the_tag_and_a_digest_pin_runs(stack, published, engine, tmp_path):
    base, digests = published
    spec = stack.write(SPEC.format(stack=stack.name, ref=f"{base}:1.4.0",
                                   policy='{semver: ">=1.4 <2", pin: digest}'))
    before = spec.read_text()
    done = stack.cli("images", "update", "-f", str(spec))
    assert done.code == 0, done.err
    pinned = f"{base}:1.4.1@{digests['1.4.1']}"
    assert spec.read_text() == before.replace(f"{base}:1.4.0", pinned)
    assert outdated(stack, spec)["new_ref"] is None  # converged: nothing more to write

    applied = stack.cli("apply", "-f", str(spec))
    assert applied.code == 0, applied.err
    again = stack.cli("plan", "-f", str(spec), "--detailed-exitcode")
    assert again.code == 0, again.out  # a pinned reference is converged, not pulled again


def test_release_lets_a_quarantined_version_be_proposed_again(stack, published, tmp_path):
    base, _ = published
    spec = stack.write(SPEC.format(stack=stack.name, ref=f"{base}:1.4.0", policy='{semver: ">=1.4 <2"}'))
    state = tmp_path / "state"
    with StateStore.open(state) as store:
        store.quarantine(stack.name, "app", "1.4.1", "its rollout failed")
    row = outdated(stack, spec, "--state-dir", str(state))
    assert row["wanted"] == "1.4.0" and row["quarantined"] == ["1.4.1"], row
    done = stack.cli("images", "release", stack.name, "app", "1.4.1", "--state-dir", str(state), spec=False)
    assert done.code == 0 and "released" in done.out, done.err
    assert outdated(stack, spec, "--state-dir", str(state))["wanted"] == "1.4.1"
    again = stack.cli("images", "release", stack.name, "app", "1.4.1", "--state-dir", str(state), spec=False)
    assert again.code == 1 and "is not quarantined" in again.err
