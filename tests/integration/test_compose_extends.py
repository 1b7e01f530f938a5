"""Compose's extends and include against the real engine: a project built from three folders applies and converges.

The project (``app/compose.yaml``) has a service that ``extends`` a service of
``common/base.yaml`` (its bind mount relative to ``common/``) and
``include``s ``sidecar/compose.yaml``, a project of its own with a build
context, a bind mount and a ``.env`` of its own. The folder holding all three
is the repository (a ``.git`` in it), so every path stays inside it.
"""
from __future__ import annotations

import textwrap

from .conftest import BASE_IMAGE

BASE = f"""\
services:
  base:
    image: {BASE_IMAGE}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    environment: {{FROM_BASE: "1"}}
    volumes: ["./shared:/shared:ro"]
"""

APP = """\
include:
  - ../sidecar/compose.yaml
services:
  web:
    extends: {file: ../common/base.yaml, service: base}
    environment: {FROM_WEB: "1"}
    depends_on: [sidecar]
"""

SIDECAR = f"""\
services:
  sidecar:
    build: ./ctx
    image: STACK/sidecar:dev
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    environment: {{GREETING: "${{GREETING}}"}}
    volumes: ["./data:/data:ro"]
"""


def _layout(stack) -> list[str]:
    root = stack.dir
    (root / ".git").mkdir()
    files = {
        "common/base.yaml": BASE,
        "common/shared/base.txt": "from base\n",
        "app/compose.yaml": APP,
        "sidecar/compose.yaml": SIDECAR.replace("STACK", stack.name),
        "sidecar/.env": "GREETING=hello\n",
        "sidecar/ctx/Dockerfile": f"FROM {BASE_IMAGE}\nCOPY hello.txt /hello.txt\n",
        "sidecar/ctx/hello.txt": "built from the included project's context\n",
        "sidecar/data/data.txt": "the included project's data\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return ["-f", str(root / "app/compose.yaml"), "-p", stack.name]


def test_a_project_that_extends_and_includes_applies_and_converges(stack):
    files = _layout(stack)
    try:
        result = stack.cli("apply", *files)
        assert result.code == 0, result.err + result.out
        web, sidecar = f"{stack.name}-web-1", f"{stack.name}-sidecar-1"
        assert {n for n, c in stack.containers().items() if c["State"] == "running"} == {web, sidecar}
        inspected = stack.engine.inspect_container(web)
        assert {"FROM_BASE=1", "FROM_WEB=1"} <= set(inspected["Config"]["Env"])
        assert stack.exec(web, "cat", "/shared/base.txt") == "from base\n"  # relative to common/, not app/
        assert "GREETING=hello" in stack.engine.inspect_container(sidecar)["Config"]["Env"]
        assert stack.exec(sidecar, "cat", "/hello.txt", "/data/data.txt") == (
            "built from the included project's context\nthe included project's data\n")
        ids = stack.container_ids()
        assert stack.cli("plan", "--detailed-exitcode", *files).code == 0
        again = stack.cli("apply", *files)
        assert again.code == 0, again.err
        assert stack.container_ids() == ids
    finally:
        try:
            stack.engine.remove_image(f"{stack.name}/sidecar:dev", force=True)
        except Exception:
            pass


def test_a_mistake_in_an_extended_file_names_that_files_line(stack):
    files = _layout(stack)
    (stack.dir / "common/base.yaml").write_text(BASE + textwrap.indent('ports: ["80:http"]\n', "    "))
    result = stack.cli("plan", *files)
    assert result.code == 1
    assert "common/base.yaml:9:13: services.web.ports[0]: expected" in result.err, result.err
    (stack.dir / "common/base.yaml").write_text(BASE)
    (stack.dir / "sidecar/compose.yaml").write_text(SIDECAR.replace("STACK", stack.name) + "    restart: sometimes\n")
    result = stack.cli("plan", *files)
    assert result.code == 1
    assert "sidecar/compose.yaml:10:14: services.sidecar.restart" in result.err, result.err
    assert stack.containers() == {}
