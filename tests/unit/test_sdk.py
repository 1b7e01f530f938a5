"""The plugin SDK is the one surface plugins import: every name it lists resolves, it stays cheap, and the
built-in and example plugins import nothing else of reconciler, and never each other."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import reconciler.sdk
import reconciler.sdk.docker
import reconciler.sdk.labels

REPO = Path(__file__).resolve().parents[2]
PLUGIN_ROOTS = [REPO / "plugins", REPO / "examples" / "plugins"]
#: Where a plugin may reach into reconciler: the SDK everywhere, the testing kit in its tests.
SDK = "reconciler.sdk"
TESTING = "reconciler.testing"


def _own_package(path: Path) -> str:
    """The plugin a file belongs to: ``plugins/<package>/...``, ``examples/plugins/<package>/...`` (its tests too)."""
    parts = path.relative_to(REPO).parts
    return parts[1] if parts[0] == "plugins" else parts[2]


PLUGIN_NAMES = {path.parent.name for path in (REPO / "plugins").glob("*/__init__.py")} | {
    path.parent.name for path in (REPO / "examples" / "plugins").glob("*/*/__init__.py") if path.parent.name != "tests"}


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module a file imports, at any depth (function-local and ``TYPE_CHECKING`` ones too)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.lineno, node.module)]
            # ``from reconciler import x`` imports the module reconciler.x when x is one
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names if node.module == "reconciler"]
    return out


def _refused(module: str, *, own: str, in_tests: bool) -> bool:
    top = module.split(".")[0]
    if top == "reconciler":
        allowed = [SDK, TESTING] if in_tests else [SDK]
        return not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed) \
            and module != "reconciler"
    return top in PLUGIN_NAMES and top != own


def _plugin_files() -> list[Path]:
    return sorted(path for root in PLUGIN_ROOTS for path in root.rglob("*.py")
                  if "build" not in path.relative_to(root).parts)


def test_plugins_import_only_the_sdk_and_their_own_package():
    files = _plugin_files()
    assert len(files) > 30, "the plugin folders moved: this test would check nothing"
    wrong = []
    for path in files:
        own = _own_package(path)
        in_tests = "tests" in path.relative_to(REPO).parts
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _imported(tree):
            if _refused(module, own=own, in_tests=in_tests):
                wrong.append(f"{path.relative_to(REPO)}:{line}: imports {module}")
    assert not wrong, ("a plugin imports only reconciler.sdk (and reconciler.testing in its tests) and its own "
                       "package (docs/plugins.md, 'The SDK'):\n" + "\n".join(wrong))


@pytest.mark.parametrize("module", [reconciler.sdk, reconciler.sdk.labels, reconciler.sdk.docker],
                         ids=lambda m: m.__name__)
def test_every_listed_name_resolves(module):
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing
    assert len(set(module.__all__)) == len(module.__all__)


def test_the_labels_submodule_is_the_whole_of_reconciler_labels():
    import reconciler.labels

    assert sorted(reconciler.sdk.labels.__all__) == sorted(reconciler.labels.__all__)
    assert all(getattr(reconciler.sdk.labels, name) is getattr(reconciler.labels, name)
               for name in reconciler.labels.__all__)


def test_importing_the_sdk_imports_no_docker():
    probe = "import sys, reconciler.sdk; print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'requests')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_refusal_names_what_it_refuses(tmp_path):
    # The checker itself: a core module, another plugin and a function-local import are each caught.
    source = "from reconciler.plan import Plan\ndef f():\n    import reconciler_docker.containers\n"
    found = [module for _, module in _imported(ast.parse(source))]
    assert [m for m in found if _refused(m, own="reconciler_swarm", in_tests=False)] == [
        "reconciler.plan", "reconciler_docker.containers"]
    assert not _refused("reconciler.testing", own="x", in_tests=True)
    assert _refused("reconciler.testing", own="x", in_tests=False)
    assert not _refused("reconciler.sdk.docker", own="x", in_tests=False)
