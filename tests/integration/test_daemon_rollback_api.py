"""``reconcile rollback|release --server``: a daemon's stack held at an older commit and let go, through its API."""
from __future__ import annotations

import json
import subprocess
import sys

from .daemons import conforms, stack_spec


def _reconcile(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60)


def _env(stack) -> list[str]:
    return stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]


def test_rollback_and_release_through_the_api_apply_at_once(api, stack, repo, tmp_path):
    second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
    assert api.call("POST", f"/api/stacks/{stack.name}/sync", token=api.write_token)[0] == 202
    api.wait(lambda s: s["revision"] == second and s["state"] == "converged")
    token = tmp_path / "client.token"
    token.write_text(api.write_token + "\n")
    server = ["--server", api.url, "--token-file", str(token)]
    shown = _reconcile("history", stack.name, *server)
    assert api.first[:12] in shown.stdout, shown.stdout

    # The 12 digits history shows; a second server that does not answer is named, the first still rolls back.
    done = _reconcile("rollback", stack.name, "--to", api.first[:12], *server, "--server", "http://127.0.0.1:9")
    assert done.returncode == 1, done.stderr
    assert (f"{api.url}: stack {stack.name} held at {api.first[:12]} until its source moves past {second[:12]}"
            in done.stdout), done.stdout
    assert "127.0.0.1:9" in done.stderr and "cannot reach" in done.stderr
    # The poll interval is an hour: only the API's own pass can apply the hold this soon.
    held = api.wait(lambda s: s["revision"] == api.first and s["held"] and s["state"] == "converged")
    assert held["held_at"] == api.first
    assert "VERSION=1" in _env(stack)

    done = _reconcile("release", stack.name, *server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{api.url}: stack {stack.name} released: it follows its source again"
    api.wait(lambda s: s["revision"] == second and not s["held"] and s["state"] == "converged")
    assert "VERSION=2" in _env(stack)


def test_rollback_and_release_answer_as_the_openapi_document_says(api, stack):
    path = f"/api/stacks/{stack.name}"
    body = json.dumps({"to": api.first}).encode()
    for verb, data in (("rollback", body), ("release", None)):
        status, _, answer = api.call("POST", f"{path}/{verb}", token=api.read_token, body=data)
        assert status == 403 and "read-only" in answer["error"]
        conforms(f"/api/stacks/{{name}}/{verb}", "post", 403, answer)
        status, _, answer = api.call("POST", f"/api/stacks/no-such-stack/{verb}", token=api.write_token, body=data)
        assert (status, answer) == (404, {"error": "no stack is named 'no-such-stack'"})
        conforms(f"/api/stacks/{{name}}/{verb}", "post", 404, answer)
    assert api.stack(stack.name)["held"] is False

    for data, message in ((b'{"to": "zzz"}', "--to: 'zzz' is not a commit id (7 to 40 hex digits)"),
                          (b'{"to": "abcdef0"}', f"--to: no revision of stack '{stack.name}' synced"),
                          (b"not json", 'a JSON object with "to"'), (b'{"to": 7}', 'a JSON object with "to"'),
                          (None, 'a JSON object with "to"')):
        status, _, answer = api.call("POST", f"{path}/rollback", token=api.write_token, body=data)
        assert status == 400 and message in answer["error"], (data, answer)
        conforms("/api/stacks/{name}/rollback", "post", 400, answer)

    status, _, answer = api.call("POST", f"{path}/rollback", token=api.write_token, body=body,
                                 headers={"Content-Type": "application/json"})
    assert status == 200, answer
    conforms("/api/stacks/{name}/rollback", "post", 200, answer)
    assert answer == {"stack": stack.name, "held_at": api.first, "source_revision": api.first,
                      "message": f"stack {stack.name} held at {api.first[:12]} until its source moves past "
                                 f"{api.first[:12]} or 'reconcile release {stack.name}'"}
    assert api.stack(stack.name)["held_at"] == api.first
    status, _, answer = api.call("POST", f"{path}/release", token=api.write_token)
    assert status == 200, answer
    conforms("/api/stacks/{name}/release", "post", 200, answer)
    assert answer["held_at"] is None
    assert answer["message"] == f"stack {stack.name} released: it follows its source again"
    assert api.stack(stack.name)["held"] is False
