"""The notify plugin's pure parts: which event a pass is, storm windows on a fake clock, messages, the notify file."""
from __future__ import annotations

import logging

import pytest

from reconciler.errors import PermanentError, RolledBack
from reconciler.model import ImageEvent, ImageEventKind, Kind
from reconciler.plan import Action, Change, Plan
from reconciler.report import ApplyReport, Outcome, Status
from reconciler_notify.events import Event, HeldDrift, classify_report, parse_events
from reconciler_notify.message import Notice, image_notice, pass_notice, render, report_notice, span
from reconciler_notify.storm import Storms
from reconciler_notify.targets import AppriseConfigError, load_apprise, parse_interval

URL_PASSWORD = "pa55-w0rd-never-printed"


def change(name: str, action: Action = Action.REPLACE, kind: Kind = Kind.CONTAINER) -> Change:
    return Change(action, kind, name, key=name)


def report(*outcomes: Outcome, trigger: str = "source", revision: str = "3f2a9c1d0e5b7a8c") -> ApplyReport:
    return ApplyReport("shop", outcomes, 1.5, revision=revision, trigger=trigger)


OK = Outcome(change("shop-web-1"), Status.OK)
FAILED = Outcome(change("shop-web-1"), Status.FAILED, "image pull failed: 404\nsecond line", 1.0,
                 exception=PermanentError("image pull failed"))
ROLLED = Outcome(change("shop-web-1"), Status.FAILED, "the new container failed, so the old one was put back", 2.0,
                 exception=RolledBack("the new container failed"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the mapping ----------------------------------------------------------------

@pytest.mark.parametrize(("outcomes", "trigger", "event"), [
    ((), "source", None),  # converged: nothing to say
    ((OK,), "source", Event.APPLIED),
    ((OK,), "webhook", Event.APPLIED),
    ((OK,), "manual", Event.APPLIED),  # the CLI's reconcile apply
    ((OK,), "retry", Event.APPLIED),
    ((OK,), "engine", Event.DRIFT_REPAIRED),
    ((OK,), "resync", Event.DRIFT_REPAIRED),
    ((OK, FAILED), "source", Event.FAILED),
    ((FAILED,), "engine", Event.FAILED),
    ((FAILED, ROLLED), "source", Event.ROLLED_BACK),
])
def test_a_report_is_classified_by_its_outcomes_then_its_trigger(outcomes, trigger, event):
    assert classify_report(report(*outcomes, trigger=trigger)) is event


def test_events_parse_names_and_groups_and_refuse_unknown_ones():
    assert parse_events(["failed", "rolled_back", "image"]) == {
        Event.FAILED, Event.ROLLED_BACK, Event.IMAGE_UPDATED, Event.IMAGE_QUARANTINED, Event.IMAGE_RELEASED}
    assert parse_events(["all"]) == set(Event)
    assert parse_events(["preview"]) == {Event.PREVIEW_UP, Event.PREVIEW_DOWN}
    with pytest.raises(ValueError, match="unknown event 'exploded'"):
        parse_events(["exploded"])


def test_held_drift_is_news_when_it_appears_or_changes_not_on_every_pass():
    held, plan = HeldDrift(), Plan("shop", (change("shop-web-1"),))
    assert held.news("shop", plan) is True
    assert held.news("shop", plan) is False  # the same drift, held again at the next resync
    assert held.news("shop", Plan("shop", (change("shop-web-1"), change("shop-db-1")))) is True
    assert held.news("shop", None) is False  # resumed
    assert held.news("shop", plan) is True  # suspended again


# --- storms ---------------------------------------------------------------------

def notice(event: Event = Event.FAILED, stack: str = "shop", error: str = "boom") -> Notice:
    return Notice(stack, event, error=error)


def test_a_storm_is_one_message_at_once_then_one_summary_per_interval_with_its_count():
    clock = FakeClock()
    storms = Storms(clock)
    assert storms.offer(notice(error="first"), 300) is not None  # the first goes at once
    for n in range(19):
        clock.now += 5
        assert storms.offer(notice(error=f"pass {n}"), 300) is None
    assert storms.due() == []  # the window is still open
    assert storms.next_due() == 1300.0
    clock.now = 1300.0
    (summary,) = storms.due()
    assert (summary.count, summary.window, summary.error) == (20, 300, "pass 18")  # the last, with the count
    clock.now += 100
    assert storms.offer(notice(error="goes on"), 300) is None  # the storm goes on: held in the next window
    clock.now = 1600.0
    (summary,) = storms.due()
    assert summary.count == 1 and summary.error == "goes on"
    clock.now = 1900.0
    assert storms.due() == [] and storms.next_due() is None  # a quiet window closes
    assert storms.offer(notice(), 300) is not None  # and the next one goes at once again


def test_windows_are_per_stack_and_event():
    clock = FakeClock()
    storms = Storms(clock)
    assert storms.offer(notice(Event.FAILED, "shop"), 60) is not None
    assert storms.offer(notice(Event.FAILED, "blog"), 60) is not None
    assert storms.offer(notice(Event.APPLIED, "shop"), 60) is not None  # the recovery is told at once
    assert storms.offer(notice(Event.FAILED, "shop"), 60) is None


def test_flush_sends_what_is_held_at_exit():
    storms = Storms(FakeClock())
    storms.offer(notice(), 300)
    storms.offer(notice(error="second"), 300)
    (summary,) = storms.flush()
    assert summary.count == 2 and storms.next_due() is None


# --- messages -------------------------------------------------------------------

def test_a_failed_report_reads_well_in_a_chat():
    outcomes = [OK, FAILED] + [Outcome(change(f"shop-w{n}", Action.CREATE), Status.SKIPPED) for n in range(6)]
    title, body = render(report_notice(report(*outcomes), Event.FAILED), public_url="https://ops.example.com/")
    assert title == "shop: failed"
    assert "revision `3f2a9c1d0e5b`" in body and "1 ok, 1 failed, 6 skipped" in body
    assert "- replace container shop-web-1 (" in body and "- … and 3 more" in body
    assert "image pull failed: 404\nsecond line" in body
    assert "[Status page](https://ops.example.com/stacks/shop)" in body


def test_a_storm_summary_says_how_often():
    title, body = render(notice().summary(7, 300))
    assert title == "shop: failed (7 times in 5 min)"
    assert body.startswith("**failed 7 times in 5 min**; the last time:")
    assert (span(30), span(3600), span(90)) == ("30 s", "1 h", "90 s")


def test_loop_and_image_notices():
    _, body = render(pass_notice("shop", Event.CRASH_LOOPING, crash_looping={"shop-web-1": 4}))
    assert "shop-web-1 (4 times in a row)" in body
    held = Plan("shop", (change("shop-web-1"),))
    title, body = render(pass_notice("shop", Event.SUSPENDED, held=held))
    assert title == "shop: suspended" and "1 change(s) held" in body and "- replace container shop-web-1" in body
    event = ImageEvent(ImageEventKind.QUARANTINED, "shop", "app", "reg/app:1.4.0", "reg/app:1.4.1",
                       version="1.4.1", reason="unhealthy after 30 s", commit="9c1e2f3a4b5c6d7e")
    title, body = render(image_notice(event))
    assert title == "shop: image quarantined"
    assert "reg/app:1.4.0 → reg/app:1.4.1" in body and "unhealthy after 30 s" in body and "`9c1e2f3a4b5c`" in body


# --- the notify file ------------------------------------------------------------

def test_the_notify_file_takes_urls_from_files_and_variables(tmp_path):
    (tmp_path / "url").write_text(f"json://bot:{URL_PASSWORD}@127.0.0.1:9/x\n")
    (tmp_path / "notify.yaml").write_text(
        "interval: 2m\npublic_url: https://ops.example.com\ntargets:\n"
        f"  - {{name: chat, url_file: {tmp_path / 'url'}, events: [failed, rolled-back]}}\n"
        "  - {url_env: NTFY_URL}\n")
    config = load_apprise({"RECONCILER_NOTIFY_APPRISE_FILE": str(tmp_path / "notify.yaml"),
                           "NTFY_URL": "ntfy://ntfy.example.com/deploys"}, logging.getLogger("t"))
    chat, ntfy = config.targets
    assert (chat.name, chat.events, chat.display) == ("chat", {Event.FAILED, Event.ROLLED_BACK}, "chat (json)")
    assert ntfy.name == "targets[1]" and ntfy.events == set(Event)
    assert (config.interval, config.public_url) == (120.0, "https://ops.example.com")
    assert URL_PASSWORD in config.secrets() and URL_PASSWORD not in repr(config)


def test_a_bad_target_is_skipped_naming_it_never_its_url(tmp_path, caplog):
    (tmp_path / "notify.yaml").write_text(
        "targets:\n"
        f"  - {{name: typo, url: 'json://u:{URL_PASSWORD}@h/x', events: [faild]}}\n"
        "  - {name: unset, url_env: NOT_SET_ANYWHERE}\n"
        f"  - {{name: both, url: 'json://u:{URL_PASSWORD}@h/x', url_env: X}}\n")
    with caplog.at_level(logging.WARNING):
        config = load_apprise({"RECONCILER_NOTIFY_APPRISE_FILE": str(tmp_path / "notify.yaml")},
                              logging.getLogger("reconciler.notify"))
    assert config.targets == ()
    text = caplog.text
    assert "typo: unknown event 'faild'" in text and "unset: the variable NOT_SET_ANYWHERE is not set" in text
    assert "both: give exactly one of url, url_file, url_env" in text
    assert URL_PASSWORD not in text


def test_a_notify_file_that_does_not_parse_never_quotes_itself(tmp_path):
    (tmp_path / "notify.yaml").write_text(f"targets: [{{url: 'json://u:{URL_PASSWORD}@h/x'\n")
    with pytest.raises(AppriseConfigError) as caught:
        load_apprise({"RECONCILER_NOTIFY_APPRISE_FILE": str(tmp_path / "notify.yaml")}, logging.getLogger("t"))
    assert "is not valid YAML" in str(caught.value) and URL_PASSWORD not in str(caught.value)
    assert load_apprise({}, logging.getLogger("t")) is None


@pytest.mark.parametrize(("raw", "seconds"), [(300, 300.0), ("30s", 30.0), ("5m", 300.0), ("5min", 300.0),
                                              ("1h", 3600.0), ("0.5", 0.5)])
def test_intervals(raw, seconds):
    assert parse_interval(raw) == seconds


def test_a_bad_interval_is_refused():
    with pytest.raises(AppriseConfigError, match="not a duration"):
        parse_interval("soon")
