"""Image version policies: parsing, ordering, and the tag a policy chooses among a registry's tags."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reconciler.imagepolicy import (
    PolicyError, Skip, Verdict, candidates, choose, current_tag, parse_policy, sort_key, with_tag,
)
from reconciler.model import PolicyKind, UpdatePolicy

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
SERIES = ["1.4.0", "1.4.1", "1.5.0-rc1", "2.0.0"]
DATES = ["2026.11.28-0a1b2c", "2026.11.30-abcdef", "2026.12.01-123abc", "2026.9.30-ffffff", "latest", "main"]
DATE_POLICY = {"pattern": r"^(?P<ts>\d{4}\.\d{1,2}\.\d{2})-[0-9a-f]+", "extract": "$ts", "order": "numerical"}


def test_a_range_from_1_4_0_takes_1_4_1_leaving_the_rc_and_2_0_0():
    verdict = choose(parse_policy({"semver": ">=1.4 <2"}), "1.4.0", SERIES, now=NOW)
    assert verdict == Verdict(current="1.4.0", chosen="1.4.1", newest="2.0.0",
                              skipped=(("2.0.0", Skip.POLICY), ("1.5.0-rc1", Skip.PRERELEASE)))
    assert verdict.moved


def test_prerelease_true_takes_the_release_candidate_in_the_range():
    verdict = choose(parse_policy({"semver": ">=1.4 <2", "prerelease": True}), "1.4.0", SERIES, now=NOW)
    assert (verdict.chosen, verdict.skipped) == ("1.5.0-rc1", (("2.0.0", Skip.POLICY),))


def test_a_pre_release_of_a_release_outside_the_range_is_outside_the_policy():
    policy = parse_policy({"semver": ">=1.4 <2", "prerelease": True})
    verdict = choose(policy, "1.4.1", ["1.4.1", "2.0.0-rc1"], now=NOW)
    assert (verdict.chosen, verdict.skipped) == ("1.4.1", (("2.0.0-rc1", Skip.POLICY),))


def test_nothing_newer_keeps_the_current_tag_and_skips_nothing():
    verdict = choose(parse_policy({"semver": "^1.4"}), "1.4.1", ["1.4.0", "1.4.1", "1.3.9"], now=NOW)
    assert verdict == Verdict(current="1.4.1", chosen="1.4.1", newest="1.4.1")
    assert not verdict.moved


@pytest.mark.parametrize("expression, expected", [
    ("^1.4", "1.9.0"), ("~1.4", "1.4.7"), ("1.x", "1.9.0"), ("1.4.x || 3", "3.0.1"), (">=1.4 <2", "1.9.0"),
])
def test_npm_ranges(expression, expected):
    tags = ["1.4.0", "1.4.7", "1.9.0", "2.0.0", "3.0.1"]
    assert choose(parse_policy({"semver": expression}), "1.4.0", tags, now=NOW).chosen == expected


def test_tags_with_a_leading_v_are_versions_and_partial_ones_are_not():
    policy = parse_policy({"semver": "^1"})
    assert sort_key(policy, "v1.4.2") == sort_key(policy, "1.4.2")
    assert [sort_key(policy, tag) for tag in ("1.4", "latest", "1.4.2.1")] == [None, None, None]
    verdict = choose(policy, "v1.4.0", ["v1.4.0", "v1.4.2", "1.5", "latest"], now=NOW)
    assert (verdict.chosen, verdict.newest) == ("v1.4.2", "v1.4.2")


def test_a_current_tag_that_is_not_a_version_is_older_than_every_allowed_tag():
    verdict = choose(parse_policy({"semver": ">=1.4 <2"}), "latest", SERIES, now=NOW)
    assert verdict.chosen == "1.4.1"
    assert candidates(parse_policy({"semver": ">=1.4 <2"}), "latest", SERIES) == ["1.4.1", "1.4.0"]


def test_a_date_series_orders_by_the_extracted_numbers():
    policy = parse_policy(DATE_POLICY)
    assert policy.kind is PolicyKind.PATTERN and policy.extract == "$ts"
    verdict = choose(policy, "2026.11.28-0a1b2c", DATES, now=NOW)
    # numerically 2026.9.30 is older than 2026.11.28; alphabetically it would be newer
    assert (verdict.chosen, verdict.newest, verdict.skipped) == ("2026.12.01-123abc", "2026.12.01-123abc", ())
    assert sort_key(policy, "latest") is None


def test_alphabetical_order_and_numbered_groups():
    policy = parse_policy({"pattern": r"release-([a-z]+)", "extract": "$1", "order": "alphabetical"})
    verdict = choose(policy, "release-bravo", ["release-alpha", "release-charlie", "release-bravo", "other"], now=NOW)
    assert verdict.chosen == "release-charlie"


def test_min_age_holds_back_a_fresh_tag_and_one_of_unknown_age():
    policy = parse_policy({"semver": ">=1.4 <2", "min_age": "1h"})
    assert policy.min_age == 3600
    tags = ["1.4.0", "1.4.1", "1.4.2", "1.4.3"]
    created = {"1.4.1": NOW - timedelta(days=2), "1.4.2": NOW - timedelta(hours=2), "1.4.3": NOW - timedelta(minutes=1)}
    verdict = choose(policy, "1.4.0", tags, created=created, now=NOW)
    assert (verdict.chosen, verdict.skipped) == ("1.4.2", (("1.4.3", Skip.MIN_AGE),))
    unknown = choose(policy, "1.4.0", tags, created={"1.4.1": NOW - timedelta(days=2), "1.4.2": None}, now=NOW)
    assert (unknown.chosen, unknown.skipped) == ("1.4.1", (("1.4.3", Skip.MIN_AGE), ("1.4.2", Skip.MIN_AGE)))


def test_a_quarantined_tag_is_skipped_and_never_a_candidate():
    policy = parse_policy({"semver": ">=1.4 <2"})
    verdict = choose(policy, "1.4.0", [*SERIES, "1.4.2"], quarantined={"1.4.2"}, now=NOW)
    assert verdict.chosen == "1.4.1"
    assert verdict.skipped == (("2.0.0", Skip.POLICY), ("1.5.0-rc1", Skip.PRERELEASE), ("1.4.2", Skip.QUARANTINED))
    assert candidates(policy, "1.4.0", [*SERIES, "1.4.2"], quarantined={"1.4.2"}) == ["1.4.1"]


def test_candidates_are_what_a_caller_asks_the_age_of():
    policy = parse_policy({"semver": ">=1.4 <2", "prerelease": True, "min_age": 60})
    assert candidates(policy, "1.4.0", SERIES) == ["1.5.0-rc1", "1.4.1"]


def test_a_digest_policy_keeps_the_tag_and_pins():
    policy = parse_policy({"digest": True, "interval": "30s"})
    assert policy == UpdatePolicy(kind=PolicyKind.DIGEST, pin_digest=True, interval=30.0)
    assert choose(policy, "1.4", ["1.4", "1.5"], now=NOW) == Verdict(current="1.4", chosen="1.4", newest="1.4")
    assert candidates(policy, "1.4", ["1.5"]) == []


def test_parse_fills_defaults_and_reads_durations():
    policy = parse_policy({"semver": "^1.4", "pin": "digest", "min_age": "1d12h", "interval": 90})
    assert policy == UpdatePolicy(kind=PolicyKind.SEMVER, semver="^1.4", pin_digest=True, min_age=129600.0,
                                  interval=90.0)
    assert parse_policy({"semver": "1.x"}).interval == 300.0


@pytest.mark.parametrize("data, field, words", [
    ({"semver": ">=1.4 <<2"}, "semver", "invalid range"),
    ({"pattern": "(unclosed"}, "pattern", "invalid regular expression"),
    ({"pattern": r"(?P<ts>\d+)", "extract": "$date"}, "extract", "no group named 'date' (named groups: $ts)"),
    ({"pattern": r"(\d+)", "extract": "$2"}, "extract", "1 group(s), not $2"),
    ({"pattern": r"(\d+)", "extract": "ts"}, "extract", "expected $name or $number"),
    ({"semver": "^1", "pattern": "x"}, "pattern", "exactly one of semver, pattern or digest"),
    ({"min_age": "1h"}, "", "exactly one of semver, pattern or digest"),
    ({"semver": "^1", "extract": "$1"}, "extract", "extract goes with pattern"),
    ({"pattern": "x", "prerelease": True}, "prerelease", "prerelease goes with semver"),
    ({"semver": "^1", "min_age": "soon"}, "min_age", "invalid duration"),
    ({"semver": "^1", "interval": 0}, "interval", "at least 1s"),
    ({"semver": "^1", "pin": "tag"}, "pin", "expected digest"),
    ({"semver": "^1", "policy": "x"}, "policy", "unknown field"),
    ({"pattern": "x", "order": "random"}, "order", "numerical or alphabetical"),
])
def test_a_bad_policy_names_its_field(data, field, words):
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    assert caught.value.field == field and words in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("ref, tag", [
    ("host:5000/a/b:1.4.0@sha256:" + "0" * 64, "1.4.0"), ("host:5000/a/b", ""), ("busybox:1", "1"),
    ("busybox@sha256:" + "1" * 64, ""), ("127.0.0.1:5000/team/app:v1.4.0", "v1.4.0"),
])
def test_current_tag(ref, tag):
    assert current_tag(ref) == tag


def test_with_tag_keeps_the_repository_as_written():
    assert with_tag("127.0.0.1:5000/team/app:1.4.0", "1.4.1") == "127.0.0.1:5000/team/app:1.4.1"
    digest = "sha256:" + "a" * 64
    assert with_tag("host:5000/a:1.4.0@sha256:" + "0" * 64, "1.4.2", digest) == f"host:5000/a:1.4.2@{digest}"
    assert with_tag("host:5000/a", "2") == "host:5000/a:2"
