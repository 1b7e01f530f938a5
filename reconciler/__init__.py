"""reconciler: a declarative, GitOps-style reconciler for Docker stacks.

The flow of one reconcile: load → validate → model (``DesiredState``, the
``reconciler.spec`` package) → observe (``LiveState``, through drivers) →
``plan_changes`` (pure) → ``apply_plan`` (through drivers). Submodules are
imported lazily by their users: importing this package costs nothing.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"
__all__ = ["__version__"]

# Modules that moved into ``reconciler.spec`` in 0.2: their old names keep
# working for one release, with a DeprecationWarning naming the new one.
_MOVED = {
    f"{__name__}.{name}": f"{__name__}.spec.{name}"
    for name in ("buildctx", "cache", "desired", "gitinfo", "interpolate", "loader",
                 "semantics", "units", "validate", "yamlsafe")
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = _MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old name goes away in the next release",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
