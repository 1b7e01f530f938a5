"""The stack's graph and an object's panel in headless Chromium, on a real daemon and the real engine.

Beside tests/integration/test_status_page.py (whose browser, sign-in and waiting
helpers it uses): the SVG graph renders with a visible node per object, a click
on the container's node opens its panel with its diff, its last health output
and its log tail, the panel stays open while the page refreshes in place, and
closes; a hand edit inside the container (``filesystem: report``) shows as
filesystem drift within one resync. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import json
import time

from selenium.webdriver.common.by import By

from .daemons import Api
from .conftest import BASE_IMAGE
from .test_status_page import (browser, mark_page, not_reloaded, overview_shows, shoot, sign_in,  # noqa: F401
                               stable, until)

SPEC = """name: {name}
networks:
  back: {{}}
volumes:
  data: {{}}
containers:
  web:
    image: {image}
    command: ["sh", "-c", "echo hello-from-web; exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    env: {{VERSION: "{version}"}}
    networks: [back]
    volumes: ["data:/data"]
    healthcheck: {{test: ["CMD-SHELL", "echo probe-ok"], interval: 1s, timeout: 2s, retries: 3}}
    filesystem: report
"""
RESYNC = 5  # seconds: a hand edit must show within one resync (and the time a pass takes, on a busy machine)


def _spec(name: str, version: str) -> str:
    return SPEC.format(name=name, image=BASE_IMAGE, version=version)


def _nodes(driver) -> dict[str, str]:
    """The graph's visible nodes: ``kind:name`` → health class."""
    return {a.get_attribute("data-object"): a.get_attribute("data-health")
            for a in driver.find_elements(By.CSS_SELECTOR, "#graph a.node")
            if a.find_element(By.TAG_NAME, "rect").is_displayed()}


def test_the_graph_renders_and_a_nodes_panel_shows_its_diff_health_output_and_log_tail(
        stack, repo, tmp_path, browser, monkeypatch):
    monkeypatch.setenv("RECONCILER_FILESYSTEM_INTERVAL", "0")  # every pass reads the writable layer
    name = stack.name
    container = f"{name}-web-1"
    first = repo.commit({"app/stack.yaml": _spec(name, "1")})
    api = Api(tmp_path, repo, resync=RESYNC)
    try:
        api.wait(lambda s: s["revision"] == first and s["state"] == "converged")
        sign_in(browser, api, api.read_token)
        until(browser, "the overview", overview_shows(name, state="converged"))
        browser.get(f"{api.url}/stacks/{name}")
        nodes = until(browser, "the graph's nodes", lambda d: len(_nodes(d)) >= 4 and _nodes(d))
        assert nodes[f"container:{container}"] == "converged", nodes
        assert {key.split(":", 1)[0] for key in nodes} == {"image", "container", "network", "volume"}, nodes
        edges = browser.find_elements(By.CSS_SELECTOR, "#graph path.edge")
        assert len(edges) == 3 and all(e.get_attribute("data-from") == f"container:{container}" for e in edges)
        box = browser.find_element(By.ID, "graph").rect
        assert box["width"] > 300 and box["height"] > 80, box
        shoot(browser, "status-graph.png")

        # A hand edit inside the container: its node turns drifted within one resync, its panel lists the path.
        edited = time.monotonic()
        stack.exec(container, "sh", "-c", "echo x > /etc/edited")
        until(browser, "the hand edit as filesystem drift", lambda d: _nodes(d).get(f"container:{container}")
              == "drifted", timeout=RESYNC + 25)
        assert time.monotonic() - edited < RESYNC + 25
        stable(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'#graph a[data-object="container:{container}"]')
               .click())
        until(browser, "the panel's filesystem drift", lambda d: d.find_element(By.ID, "object-filesystem")
              .get_attribute("data-drifted") == "1")
        assert "/etc/edited" in browser.find_element(By.ID, "object-paths").text
        shoot(browser, "status-filesystem-drift.png")

        # Drift the page can show: the stack suspended, a commit changes the container's env.
        status, _, summary = api.call("POST", f"/api/stacks/{name}/suspend", token=api.write_token)
        assert status == 200 and summary["suspended"], summary
        repo.commit({"app/stack.yaml": _spec(name, "2")})
        status, _, answer = api.deliver("github", json.dumps({"after": "x"}).encode())
        assert status == 202, answer
        until(browser, "the container's node drifted", lambda d: _nodes(d).get(f"container:{container}") == "drifted")

        stable(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'#graph a[data-object="container:{container}"]')
               .click())
        until(browser, "the panel", lambda d: d.find_element(By.ID, "panel").is_displayed())
        assert browser.current_url.endswith(f"?object=container:{container}#panel")
        diff = until(browser, "the diff in the panel", lambda d: "VERSION" in d.find_element(By.ID, "object-diff").text
                     and d.find_element(By.ID, "object-diff").text)
        assert "2" in diff, diff
        until(browser, "the last health output", lambda d: d.find_element(By.ID, "object-health").text == "probe-ok")
        tail = until(browser, "the log tail", lambda d: "hello-from-web" in d.find_element(By.ID, "logs").text
                     and d.find_element(By.ID, "logs").text)
        assert " stdout hello-from-web" in tail and tail[:4].isdigit(), tail  # a time (ISO), the stream, the line
        stack.exec(container, "sh", "-c", "echo written-later > /proc/1/fd/1")  # the container's own stdout
        until(browser, "the line written later, followed", lambda d: "written-later" in d.find_element(By.ID, "logs")
              .text)
        shoot(browser, "status-node-panel.png")

        # The page refreshes in place and keeps the open panel.
        mark_page(browser)
        browser.execute_script("document.getElementById('object-health').setAttribute('data-seen', '1');")
        until(browser, "a refresh of the panel", lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-seen]"))
        assert not_reloaded(browser) and browser.find_element(By.ID, "panel").is_displayed()
        assert browser.find_element(By.ID, "object-health").text == "probe-ok"

        # Narrow (a phone): nothing but the graph and the tables scrolls sideways, each in its own box.
        browser.set_window_size(400, 900)
        until(browser, "the page fitting a narrow window", lambda d: d.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth;"))
        shoot(browser, "status-narrow.png")
        browser.set_window_size(1280, 900)

        browser.find_element(By.ID, "close-panel").click()
        until(browser, "the panel closed", lambda d: not d.find_elements(By.ID, "panel"))
        assert not_reloaded(browser) and "object=" not in browser.current_url

        # The image's node: its layers, read for its panel.
        image = next(key for key in _nodes(browser) if key.startswith("image:"))
        stable(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'#graph a[data-object="{image}"]').click())
        until(browser, "the image's layers", lambda d: "shared with the stack's other images"
              in d.find_element(By.ID, "object-layers").text)
        assert browser.find_elements(By.CSS_SELECTOR, "#panel ol li"), "no layer listed"
        assert not browser.find_elements(By.ID, "logs")  # an image has no logs
    finally:
        assert api.daemon.stop() == 0
