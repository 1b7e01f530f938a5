"""reconciler: a declarative, GitOps-style reconciler for Docker stacks.

The flow of one reconcile: load → validate → model (``DesiredState``, the
``reconciler.spec`` package) → observe (``LiveState``, through drivers) →
``plan_changes`` (pure) → ``apply_plan`` (through drivers). Submodules are
imported lazily by their users: importing this package costs nothing.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
