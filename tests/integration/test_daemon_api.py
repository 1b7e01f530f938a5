"""The daemon's HTTP API, webhooks, metrics and --server client: real HTTP to a real daemon, real git, real engine."""
from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from .daemons import HOOK_SECRET, PROVIDERS, Api, Repo, conforms, stack_spec




def test_only_health_and_readiness_are_open_and_a_bad_token_gets_401(api):
    assert api.call("GET", "/healthz")[::2] == (200, {"status": "ok"})
    status, _, ready = api.call("GET", "/readyz")
    assert (status, ready) == (200, {"ready": True, "waiting": []})
    conforms("/readyz", "get", 200, ready)
    for path in ("/api/stacks", "/metrics", "/openapi.json", "/api/stacks/anything"):
        status, headers, body = api.call("GET", path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
        conforms("/api/stacks", "get", 401, body)
        assert api.call("GET", path, token="not-" + api.read_token)[0] == 401
        assert api.call("GET", path, headers={"Authorization": f"Basic {api.read_token}"})[0] == 401
    status, doc = api.get("/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")


def test_stacks_detail_and_history_answer_as_the_openapi_document_says(api, stack):
    status, stacks = api.get("/api/stacks?limit=1000")
    assert status == 200
    conforms("/api/stacks", "get", 200, stacks)
    [summary] = stacks
    assert summary["name"] == stack.name and summary["source"]["url"].startswith("file://")
    assert summary["revision"] == api.first and summary["drift"] == 0 and summary["managed"] == 3  # its image, its default network and its container

    detail = api.stack(stack.name)
    conforms("/api/stacks/{name}", "get", 200, detail)
    container = next(o for o in detail["objects"] if o["kind"] == "container")
    assert (container["name"], container["state"], container["drift"]) == (f"{stack.name}-web-1", "running", None)
    assert detail["plan"]["changes"] == []

    status, history = api.get(f"/api/stacks/{stack.name}/history?limit=5")
    assert status == 200 and history[0]["revision"] == api.first and history[0]["result"] == "converged"
    conforms("/api/stacks/{name}/history", "get", 200, history)
    status, missing = api.get("/api/stacks/no-such-stack")
    assert status == 404
    conforms("/api/stacks/{name}", "get", 404, missing)
    assert api.get(f"/api/stacks/{stack.name}/history?limit=x")[0] == 400


def test_a_read_only_token_cannot_sync_suspend_or_resume(api, stack):
    before = len(api.daemon.lines)
    for verb in ("sync", "suspend", "resume"):
        status, _, body = api.call("POST", f"/api/stacks/{stack.name}/{verb}", token=api.read_token)
        assert status == 403 and "read-only" in body["error"]
        conforms(f"/api/stacks/{{name}}/{verb}", "post", 403, body)
    time.sleep(1.5)
    assert len(api.daemon.lines) == before  # no pass ran
    assert api.stack(stack.name)["suspended"] is False


def test_suspend_reports_drift_and_resume_heals_it(api, stack):
    status, _, summary = api.call("POST", f"/api/stacks/{stack.name}/suspend", token=api.write_token)
    assert status == 200 and summary["suspended"] is True
    conforms("/api/stacks/{name}/suspend", "post", 200, summary)
    stack.engine.stop(f"{stack.name}-web-1", timeout=1)
    drifted = api.wait(lambda s: s["state"] == "suspended" and s["drift"] == 1)
    assert drifted["suspended"]
    detail = api.stack(stack.name)
    [change] = detail["plan"]["changes"]
    assert (change["name"], change["action"]) == (f"{stack.name}-web-1", "start")
    assert stack.engine.inspect_container(f"{stack.name}-web-1")["State"]["Running"] is False

    status, _, summary = api.call("POST", f"/api/stacks/{stack.name}/resume", token=api.write_token)
    assert status == 200 and summary["suspended"] is False
    api.wait(lambda s: s["state"] == "converged" and s["drift"] == 0)
    assert stack.engine.inspect_container(f"{stack.name}-web-1")["State"]["Running"] is True


def test_sync_fetches_the_source_and_applies_its_new_commit(api, stack, repo):
    second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
    status, _, body = api.call("POST", f"/api/stacks/{stack.name}/sync", token=api.write_token)
    assert status == 202
    conforms("/api/stacks/{name}/sync", "post", 202, body)
    api.wait(lambda s: s["revision"] == second and s["state"] == "converged")
    assert "VERSION=2" in stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]


def test_a_commit_that_does_not_load_is_reported_and_the_revision_running_stays(api, stack, repo):
    broken = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2") + "  bogus: {}\n"})
    api.call("POST", f"/api/stacks/{stack.name}/sync", token=api.write_token)
    summary = api.wait(lambda s: s["state"] == "invalid")
    assert summary["revision"] == api.first and summary["source_revision"] == broken
    assert "bogus" in summary["last_sync"]["error"] and f"@{broken[:12]}:app/stack.yaml" in summary["last_sync"]["error"]
    conforms("/api/stacks", "get", 200, [summary])
    assert "VERSION=1" in stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_webhook_with_a_bad_or_missing_signature_gets_401_and_fetches_nothing(api, stack, repo, provider):
    second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
    body = json.dumps({"ref": "refs/heads/main", "after": second}).encode()
    for attempt in (dict(secret="wrong-" + HOOK_SECRET), dict(sign=False)):
        status, _, answer = api.deliver(provider, body, **attempt)
        assert status == 401, attempt
        conforms("/hooks/{hook}", "post", 401, answer)
    time.sleep(2)
    assert api.get("/api/stacks?limit=1000")[1][0]["revision"] == api.first  # nothing was fetched
    assert not api.passes(second)

    status, _, answer = api.deliver(provider, body)
    assert status == 202 and answer == {"fetch": ["repo"], "duplicate": False}
    conforms("/hooks/{hook}", "post", 202, answer)
    api.wait(lambda s: s["revision"] == second and s["state"] == "converged")
    deliveries = {s.labels["result"]: s.value for s in api.metrics()["reconciler_webhook_deliveries"].samples
                  if s.name.endswith("_total") and s.labels["webhook"] == provider}
    assert deliveries == {"unauthorized": 2.0, "accepted": 1.0}


def test_an_oversized_body_gets_413_and_triggers_nothing(api, stack, repo):
    second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
    status, _, answer = api.deliver("github", b"x" * 5000)  # the cap is 4096
    assert status == 413
    conforms("/hooks/{hook}", "post", 413, answer)
    # Chunked, without a Content-Length: the cap holds while reading.
    request = urllib.request.Request(api.url + "/hooks/github", data=iter([b"y" * 3000, b"y" * 3000]),
                                     method="POST", headers={"Transfer-Encoding": "chunked"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    time.sleep(2)
    assert api.get("/api/stacks?limit=1000")[1][0]["revision"] == api.first and not api.passes(second)
    assert api.call("POST", "/hooks/nope", body=b"{}")[0] == 404


def test_replayed_and_burst_deliveries_make_at_most_one_sync(api, stack, repo):
    second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
    body = json.dumps({"after": second}).encode()
    delivery = str(uuid.uuid4())
    answers = [api.deliver("github", body, delivery=delivery)[2] for _ in range(5)]
    assert [a["duplicate"] for a in answers] == [False, True, True, True, True]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:  # a burst of distinct deliveries
        statuses = list(pool.map(lambda _: api.deliver("github", body)[0], range(20)))
    assert statuses == [202] * 20
    api.wait(lambda s: s["revision"] == second and s["state"] == "converged")
    time.sleep(3)  # any late pass would show now
    # One fetch and one pass that applied the commit; the engine's events about that very change may wake a
    # pass that finds nothing to do (no write), which is the loop checking for drift, not a sync.
    synced = [p for p in api.passes(second) if p["trigger"] != "engine"]
    writes = [p for p in api.passes(second) if p["report"] and p["report"]["engine_calls"]["write"]]
    assert len(synced) == 1 and len(writes) == 1, [(p["trigger"], p["report"]) for p in api.passes(second)]


def test_metrics_parse_as_prometheus_text(api, stack):
    families = api.metrics()
    assert families["reconciler_syncs"].type == "counter"
    syncs = {(s.labels["stack"], s.labels["result"]): s.value for s in families["reconciler_syncs"].samples
             if s.name == "reconciler_syncs_total"}
    assert syncs[(stack.name, "converged")] >= 1
    assert families["reconciler_sync_duration_seconds"].type == "histogram"
    gauges = {name: {s.labels["stack"]: s.value for s in families[name].samples}
              for name in ("reconciler_drifted_objects", "reconciler_managed_objects",
                           "reconciler_last_successful_sync_timestamp_seconds")}
    assert gauges["reconciler_drifted_objects"][stack.name] == 0
    assert gauges["reconciler_managed_objects"][stack.name] == 3
    assert abs(gauges["reconciler_last_successful_sync_timestamp_seconds"][stack.name] - time.time()) < 120


def _reconcile(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_one_client_shows_the_stacks_of_several_daemons(api, stack, tmp_path, engine):
    other_repo = Repo(tmp_path / "other-git")
    other_name = f"{stack.name}o"
    other_repo.commit({"app/stack.yaml": stack_spec(other_name, "1")})
    (tmp_path / "other").mkdir()
    other = Api(tmp_path / "other", other_repo)
    try:
        other.wait(lambda s: s["state"] == "converged")
        token = tmp_path / "client.token"
        token.write_text(api.read_token + "\n")
        # Each daemon has its own tokens: the second host is asked with a token it does not know.
        done = _reconcile("status", "--server", api.url, "--server", other.url, "--server", "http://127.0.0.1:9",
                          "--token-file", str(token))
        assert done.returncode == 1, done.stderr
        lines = done.stdout.splitlines()
        host = api.url.removeprefix("http://")
        assert any(line.split()[:3] == [host, stack.name, "converged"] for line in lines), done.stdout
        assert any(other.url.removeprefix("http://") in line and "401" in line for line in lines), done.stdout
        assert any(line.startswith("127.0.0.1:9 ") and "unreachable" in line for line in lines), done.stdout

        env = {**os.environ, "RECONCILER_TOKEN": other.read_token}
        done = _reconcile("status", "--server", other.url, "--output", "json", env=env)
        assert done.returncode == 0, done.stderr
        [answer] = json.loads(done.stdout)
        assert answer["stacks"][0]["name"] == other_name and answer["error"] is None

        done = _reconcile("sync", stack.name, "--server", api.url, "--token-file", str(token))
        assert done.returncode == 1 and "read-only" in done.stderr
        token.write_text(api.write_token)
        done = _reconcile("suspend", stack.name, "--server", api.url, "--token-file", str(token))
        assert done.returncode == 0 and "suspended" in done.stdout
        assert api.stack(stack.name)["suspended"] is True
        done = _reconcile("history", stack.name, "--server", api.url, "--token-file", str(token))
        assert done.returncode == 0 and api.first[:12] in done.stdout
    finally:
        assert other.daemon.stop() == 0
        _reconcile("destroy", "--stack", other_name,
                   env={**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "other" / "state")})


def test_https_with_a_certificate_and_the_client_trusting_it(stack, repo, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    repo.commit({"app/stack.yaml": stack_spec(stack.name, "1")})
    running = Api(tmp_path, repo, tls=(cert, key))
    try:
        assert running.url.startswith("https://127.0.0.1:")
        token = tmp_path / "t"
        token.write_text(running.read_token)
        done = _reconcile("status", "--server", running.url, "--token-file", str(token), "--cacert", str(cert))
        assert done.returncode == 0, done.stderr
        done = _reconcile("status", "--server", running.url, "--token-file", str(token))
        assert done.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in done.stdout  # not trusted without --cacert
        plain = urllib.request.Request(running.url.replace("https", "http") + "/healthz")
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(plain, timeout=10)
    finally:
        assert running.daemon.stop() == 0


def test_a_tokens_file_others_can_read_is_refused(repo, tmp_path):
    repo.commit({"app/stack.yaml": stack_spec("unused", "1")})
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci write {secrets.token_urlsafe(24)}\n")
    tokens.chmod(0o644)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "api": {"tokens_file": str(tokens)},
                                  "sources": [{"name": "repo", "git": {"url": repo.url}}]}))
    done = _reconcile("daemon", "--config", str(config))
    assert done.returncode == 1
    assert f"{tokens}: the API tokens file can be read by others (mode 0644)" in done.stderr


def test_secret_values_appear_in_no_answer_page_or_log_line(stack, repo, tmp_path):
    old, new = f"pw-{secrets.token_hex(8)}", f"pw-{secrets.token_hex(8)}"
    secret_spec = stack_spec(stack.name, "1") + '      DB_PASSWORD: {{value: "{}", secret: true}}\n'
    secret_spec = secret_spec.replace('    env: {VERSION: "1"}\n', '    env:\n      VERSION: "1"\n')
    repo.commit({"app/stack.yaml": secret_spec.format(old)})
    running = Api(tmp_path, repo)
    try:
        running.wait(lambda s: s["state"] == "converged")
        running.call("POST", f"/api/stacks/{stack.name}/suspend", token=running.write_token)
        repo.commit({"app/stack.yaml": secret_spec.format(new)})
        running.call("POST", f"/api/stacks/{stack.name}/sync", token=running.write_token)
        running.wait(lambda s: s["state"] == "suspended" and s["drift"] == 1)
        detail = running.stack(stack.name)
        assert [c["action"] for c in detail["plan"]["changes"]] == ["replace"]  # the secret changed: seen, not shown
        # The status page, signed in like a browser.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        login = urllib.parse.urlencode({"token": running.read_token}).encode()
        with opener.open(running.url + "/login", data=login, timeout=30) as page:
            assert page.status == 200 and "Stacks" in page.read().decode()
        with opener.open(f"{running.url}/stacks/{stack.name}", timeout=30) as page:
            html = page.read().decode()
        assert f"{stack.name}-web-1" in html
        answers = [json.dumps(detail), json.dumps(running.get("/api/stacks?limit=1000")[1]), html,
                   json.dumps(running.get(f"/api/stacks/{stack.name}/history")[1]), running.get("/metrics")[1],
                   "".join(running.daemon.text)]
        for text in answers:
            assert old not in text and new not in text
    finally:
        assert running.daemon.stop() == 0
