"""The package's layers import one way: no circle, and the spec half never reaches up.

Every import counts, including those inside functions and under TYPE_CHECKING:
a circle hidden behind a late import is still a circle to a reader.
"""
from __future__ import annotations

import ast
from pathlib import Path

import reconciler

PACKAGE = Path(reconciler.__file__).parent
# What the spec package may use outside itself: the data it produces, the error tree, and the
# infrastructure below both (names, paths, the cache folder, the image policy rules over the model).
SPEC_MAY_IMPORT = {"reconciler.errors", "reconciler.model", "reconciler.hashing", "reconciler.defaults",
                   "reconciler.labels", "reconciler.redact", "reconciler.names", "reconciler.paths",
                   "reconciler.cache", "reconciler.imagepolicy"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("reconciler"):
                continue
            for alias in node.names:  # "from . import units" imports a module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _exists(candidate) else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("reconciler"))
    found.discard(name)
    return {m for m in found if _exists(m)}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_spec_package_imports_only_downward() -> None:
    for module, deps in _graph().items():
        if module.startswith("reconciler.spec"):
            upward = {d for d in deps if not d.startswith("reconciler.spec") and d not in SPEC_MAY_IMPORT}
            assert not upward, f"{module} imports {sorted(upward)} from above the spec package"


def test_the_image_policy_rules_stand_on_the_model_alone() -> None:
    """The spec package checks policies with ``imagepolicy``: it may never reach above the model."""
    assert _graph()["reconciler.imagepolicy"] <= {"reconciler.model"}


def test_every_package_is_in_the_distribution() -> None:
    """pyproject lists packages by hand: a new subpackage missing there is missing from every wheel."""
    import tomllib

    root = PACKAGE.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(init) for init in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
