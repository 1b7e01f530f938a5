"""The status page in headless Chromium: a real browser, a real daemon following a real git repo, the real engine.

Debian's ``chromium`` and ``chromium-driver`` drive it through Selenium, pointed at
those executables so Selenium Manager never tries to download a browser or a
driver (``scripts/engine.sh up`` installs both). The page refreshes its main part
every 2 s: every check waits for what it expects (WebDriverWait), never a fixed
time. Each test leaves a screenshot in ``test-artifacts/`` at the repository root,
passed or failed; the main scenario's is ``test-artifacts/status-page.png``.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from reconciler.model import Preview
from reconciler.state import StateStore

from ..waiting import seconds_until
from .daemons import Api, Repo, stack_spec

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("RECONCILER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RECONCILER_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 60  # seconds: a 2 s refresh on a busy 2-CPU machine, beside other test runs

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); scripts/engine.sh up installs them")

# fetch() from inside the signed-in page: the session cookie goes along, as with the page's own form.
POST_FROM_PAGE = """
const [path, body, headers, done] = arguments;
fetch(path, {method: 'POST', body: body, headers: headers, credentials: 'same-origin', redirect: 'manual'})
  .then(r => r.text().then(text => done({status: r.status, type: r.type, text: text})))
  .catch(e => done({status: -1, text: String(e)}));
"""




@pytest.fixture
def browser(request, tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        shoot(driver, f"status-page-{request.node.name}.png")
        driver.quit()


def shoot(driver: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))


def until(driver: webdriver.Chrome, what: str, check, timeout: float = WAIT):
    """``check(driver)``'s first true answer; on a timeout, says what was awaited and what the page showed."""
    def attempt(d):
        try:
            return check(d)
        except StaleElementReferenceException:  # the 2 s refresh replaced it under our feet: look again
            return False
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(attempt)
    except TimeoutException:
        main = driver.find_elements(By.ID, "main")
        shown = main[0].text if main else driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{what}: not within {timeout} s; {driver.current_url} showed:\n{shown}") from None


def stable(driver: webdriver.Chrome, read):
    """``read(driver)``, read again when the 2 s refresh replaced an element between finding and using it."""
    for _ in range(20):
        try:
            return read(driver)
        except StaleElementReferenceException:
            continue
    return read(driver)


def text_of(driver: webdriver.Chrome, css: str) -> str:
    return stable(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).text)


def click(driver: webdriver.Chrome, css: str) -> None:
    stable(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).click())


def object_row(driver: webdriver.Chrome, kind: str, name: str) -> dict[str, str]:
    """The cells of an object's row on a stack's page, by column ("" for a cell that says "–", nothing)."""
    cells = driver.find_elements(By.CSS_SELECTOR, f'tr[data-object="{kind}:{name}"] td')
    texts = ("" if c.text.strip() == "–" else c.text.strip() for c in cells)
    return dict(zip(("kind", "name", "in_spec", "live", "health", "drift"), texts))


def object_shows(kind: str, name: str, *, live: str, drifted: bool):
    """A check for ``until``: the object's row says its live state starts with ``live``, with or without drift."""
    def check(driver):
        row = object_row(driver, kind, name)
        return row.get("live", "").startswith(live) and bool(row["drift"]) is drifted and row
    return check


def sign_in(driver: webdriver.Chrome, api: Api, token: str) -> None:
    driver.get(api.url + "/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def overview_shows(stack: str, *, revision: str | None = None, state: str | None = None, drift: str | None = None):
    """A check for ``until``: the overview row of ``stack`` says all of these."""
    def check(driver):
        found = driver.find_elements(By.CSS_SELECTOR, f'tr[data-stack="{stack}"]')
        if not found:
            return False
        tr = found[0]
        return ((revision is None or revision[:12] in tr.find_element(By.TAG_NAME, "code").text)
                and (state is None or tr.find_element(By.CSS_SELECTOR, ".state").get_attribute("data-state") == state)
                and (drift is None or tr.find_element(By.CSS_SELECTOR, "td[data-drift]").get_attribute("data-drift")
                     == drift)) and tr
    return check


def mark_page(driver: webdriver.Chrome) -> None:
    """A flag that only this very page load carries: a reload or a navigation drops it."""
    driver.execute_script("window.reconcilerTestMark = true;")


def not_reloaded(driver: webdriver.Chrome) -> bool:
    return driver.execute_script("return window.reconcilerTestMark === true;")


def post_from_page(driver: webdriver.Chrome, path: str, body: str = "", headers: dict | None = None) -> dict:
    driver.set_script_timeout(30)
    return driver.execute_async_script(POST_FROM_PAGE, path, body,
                                       {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def no_pass_after(api: Api, mark: int, seconds: float = 5) -> None:
    """No sync-triggered pass shows in the daemon's log within ``seconds`` after ``mark`` (a refusal triggered nothing)."""
    def synced() -> list[dict]:
        return [line for line in api.daemon.lines[mark:] if line.get("trigger") == "api"]

    assert seconds_until(synced, seconds, step=0.1) is None, f"a refused request ran a pass: {synced()[0]}"


def csrf_of(driver: webdriver.Chrome) -> str:
    return stable(driver, lambda d: d.find_element(By.CSS_SELECTOR, 'form[action$="/sync"] input[name="csrf"]')
                  .get_attribute("value"))


def test_sign_in_follow_a_commit_and_sync_now(api, stack, repo, browser):
    try:
        # A wrong token: the form again, with the error, and no session.
        sign_in(browser, api, "not-" + api.write_token)
        error = until(browser, "the login error", lambda d: d.find_element(By.ID, "login-error"))
        assert "not valid" in error.text
        assert browser.current_url.endswith("/login") and browser.get_cookie("reconciler_session") is None
        browser.get(api.url + "/")
        assert browser.current_url.endswith("/login")  # still signed out: the overview sends us back

        sign_in(browser, api, api.write_token)
        until(browser, "the converged stack on the overview", overview_shows(stack.name, revision=api.first,
                                                                            state="converged", drift="0"))
        cookie = browser.get_cookie("reconciler_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # A commit, announced by a signed webhook: the open page shows the new revision converged by itself.
        mark_page(browser)
        second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
        status, _, answer = api.deliver("github", json.dumps({"after": second}).encode())
        assert status == 202, answer
        until(browser, "the commit converged on the open page", overview_shows(stack.name, revision=second,
                                                                              state="converged", drift="0"))
        assert not_reloaded(browser), "the page was reloaded; it should have updated its main part itself"

        # "Sync now" on the stack's page fetches and applies a commit nobody announced.
        click(browser, f'tr[data-stack="{stack.name}"] a')
        until(browser, "the stack's page", lambda d: object_row(d, "container", f"{stack.name}-web-1"))
        third = repo.commit({"app/stack.yaml": stack_spec(stack.name, "3")})
        before = text_of(browser, "#main > p")
        assert second in before and third not in before  # nothing fetches the commit but the button
        assert stable(browser, lambda d: d.find_element(By.ID, "sync-now").is_enabled())
        click(browser, "#sync-now")
        until(browser, "the synced commit on the stack's page",
              lambda d: third in d.find_element(By.CSS_SELECTOR, "#main > p").text)
        until(browser, "the converged badge", lambda d: d.find_element(By.CSS_SELECTOR, "h1 .state")
              .get_attribute("data-state") == "converged")
        until(browser, "the pass in the history", lambda d: third[:12] in d.find_elements(By.TAG_NAME, "table")[-1].text)
        assert "VERSION=3" in stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]
        # The click's pass applied it (an engine event may wake a later pass, which finds nothing to do).
        applied = api.daemon.wait_for(lambda line: line.get("revision") == third and "trigger" in line
                                      and line["report"] and line["report"]["engine_calls"]["write"])
        assert applied["trigger"] == "api", applied
    finally:
        shoot(browser, "status-page.png")


def test_a_drifted_container_is_reported_then_healed(api, stack, browser):
    container = f"{stack.name}-web-1"
    sign_in(browser, api, api.read_token)
    until(browser, "the converged stack", overview_shows(stack.name, state="converged", drift="0"))
    mark_page(browser)

    status, _, summary = api.call("POST", f"/api/stacks/{stack.name}/suspend", token=api.write_token)
    assert status == 200 and summary["suspended"] is True, summary
    stack.engine.stop(container, timeout=1)
    until(browser, "the drift on the overview", overview_shows(stack.name, state="suspended", drift="1"))
    assert "suspended" in text_of(browser, f'tr[data-stack="{stack.name}"]')

    browser.get(f"{api.url}/stacks/{stack.name}")
    mark_page(browser)
    until(browser, "the stopped container, drifted, on the stack's page",
          object_shows("container", container, live="exited", drifted=True))
    assert f"start container {container}" in text_of(browser, "#plan")

    status, _, summary = api.call("POST", f"/api/stacks/{stack.name}/resume", token=api.write_token)
    assert status == 200 and summary["suspended"] is False, summary
    until(browser, "the healed container on the stack's page",
          object_shows("container", container, live="running", drifted=False))
    until(browser, "nothing left to change", lambda d: d.find_element(By.ID, "plan").text == "nothing to change")
    until(browser, "the converged badge", lambda d: d.find_element(By.CSS_SELECTOR, "h1 .state")
          .get_attribute("data-state") == "converged")
    assert not_reloaded(browser)
    assert stack.engine.inspect_container(container)["State"]["Running"] is True


def test_a_read_only_session_cannot_sync(api, stack, browser):
    sign_in(browser, api, api.read_token)
    until(browser, "the overview", overview_shows(stack.name, state="converged"))
    browser.get(f"{api.url}/stacks/{stack.name}")
    until(browser, "the sync button", lambda d: d.find_element(By.ID, "sync-now"))
    assert not stable(browser, lambda d: d.find_element(By.ID, "sync-now").is_enabled())
    # The button is only a hint: the server refuses the POST the button would have made.
    before = len(api.daemon.lines)
    answer = post_from_page(browser, f"/stacks/{stack.name}/sync", f"csrf={csrf_of(browser)}")
    assert answer["status"] == 403 and "read-only" in answer["text"], answer
    answer = post_from_page(browser, f"/api/stacks/{stack.name}/sync", headers={"X-CSRF-Token": csrf_of(browser)})
    assert answer["status"] == 403 and "read-only" in answer["text"], answer
    no_pass_after(api, before)


def test_a_post_without_the_csrf_token_is_refused(api, stack, browser):
    sign_in(browser, api, api.write_token)
    until(browser, "the overview", overview_shows(stack.name, state="converged"))
    browser.get(f"{api.url}/stacks/{stack.name}")
    csrf = until(browser, "the sync form", csrf_of)
    before = len(api.daemon.lines)
    for body in ("", "csrf=", f"csrf={uuid.uuid4().hex}"):
        answer = post_from_page(browser, f"/stacks/{stack.name}/sync", body)
        assert answer["status"] == 403 and "CSRF" in answer["text"], (body, answer)
    for headers in ({}, {"X-CSRF-Token": uuid.uuid4().hex}):
        answer = post_from_page(browser, f"/api/stacks/{stack.name}/sync", headers=headers)
        assert answer["status"] == 403 and "x-csrf-token" in answer["text"], (headers, answer)
    no_pass_after(api, before)

    # The same requests with the session's token go through: the refusals above were the CSRF check's.
    answer = post_from_page(browser, f"/stacks/{stack.name}/sync", f"csrf={csrf}")
    assert answer["type"] == "opaqueredirect", answer  # 303 back to the stack's page
    answer = post_from_page(browser, f"/api/stacks/{stack.name}/sync", headers={"X-CSRF-Token": csrf})
    assert answer["status"] == 202, answer
    api.daemon.wait_for(lambda line: line.get("trigger") == "api", after=before)


def test_a_preview_stacks_row_links_its_urls_and_the_previews_section_lists_them(api, stack, browser, tmp_path):
    # The daemon keeps its previews in its record, and the page reads them from there (never from the daemon's
    # memory): written here as the daemon writes them, naming the stack it runs as a branch's preview.
    url = api.url + "/healthz"  # an address that answers, so that following the link shows where it leads
    with StateStore.open(tmp_path / "state") as store:
        store.save_preview(Preview("repo", "feature/<login>", "app", stack=stack.name, base="shop", revision=api.first,
                                   created=time.time() - 120, pushed=time.time() - 60, state="up", urls=(url,)))
        store.save_preview(Preview("repo", "feature/slow", "app", base="shop", created=time.time(),
                                   pushed=time.time(), state="waiting", reason="the source has max 1 previews"))
    sign_in(browser, api, api.read_token)
    preview = f'tr[data-stack="{stack.name}"] .preview'
    until(browser, "the preview's branch on its stack's row", lambda d: d.find_elements(By.CSS_SELECTOR, preview))
    assert "feature/<login>" in text_of(browser, preview)  # escaped, so shown as it is
    until(browser, "the Previews section", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#previews tbody tr")) == 2)
    texts = stable(browser, lambda d: [tr.text for tr in d.find_elements(By.CSS_SELECTOR, "#previews tbody tr")])
    assert "feature/<login>" in texts[0] and stack.name in texts[0] and "up" in texts[0]
    assert "feature/slow" in texts[1] and "waiting" in texts[1] and "the source has max 1 previews" in texts[1]
    assert stable(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#previews a.url").get_attribute("href")) == url
    shoot(browser, "status-page-previews.png")
    click(browser, preview + " a.url")
    until(browser, "the preview's URL, followed",
          lambda d: '"status":"ok"' in d.find_element(By.TAG_NAME, "body").text)
