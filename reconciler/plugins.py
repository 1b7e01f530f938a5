"""Building the plugin manager: entry points, development modules, disabled plugins.

Never done at import time: the CLI builds one manager per run with
``make_plugin_manager()``, so tests can build their own.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .drivers import DriverRegistry
from .errors import PluginError
from .model import Kind

__all__ = ["ENTRY_POINT_GROUP", "call_each", "describe_plugins", "load_driver_registry", "make_plugin_manager"]

ENTRY_POINT_GROUP = "reconciler"
DISABLED_ENV = "RECONCILER_DISABLED_PLUGINS"
EXTRA_ENV = "RECONCILER_PLUGINS"


def make_plugin_manager(*, modules: Iterable[str] = (), disabled: Iterable[str] | None = None) -> pluggy.PluginManager:
    """A plugin manager with every installed plugin plus ``modules`` (import paths) loaded.

    ``disabled`` (default: the comma-separated ``RECONCILER_DISABLED_PLUGINS``)
    names entry points to skip. Unknown hooks in a plugin fail loudly.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if disabled is None:
        disabled = [name.strip() for name in os.environ.get(DISABLED_ENV, "").split(",") if name.strip()]
    for name in disabled:
        pm.set_blocked(name)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken third-party plugin must not look like our bug
        raise PluginError(f"a plugin in the {ENTRY_POINT_GROUP!r} entry-point group failed to load: {exc}") from exc
    extra = [m.strip() for m in os.environ.get(EXTRA_ENV, "").split(",") if m.strip()]
    for module_name in [*modules, *extra]:
        if pm.has_plugin(module_name) or pm.is_blocked(module_name):
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except ImportError as exc:
            raise PluginError(f"cannot import plugin module {module_name!r}: {exc}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return pm


def load_driver_registry(pm: pluggy.PluginManager) -> DriverRegistry:
    """Ask every plugin for its drivers; a conflict names both plugins."""
    registry = DriverRegistry()
    impls = pm.hook.reconciler_register_drivers.get_hookimpls()
    for impl in impls:
        registry.current_plugin = impl.plugin_name
        try:
            impl.function(registry=registry)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in reconciler_register_drivers: {exc}") from exc
    registry.current_plugin = ""
    return registry


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every implementation of a hook; a failure names the plugin and the hook.

    Returns (plugin name, result) pairs, in pluggy's calling order.
    """
    results = []
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                              f"{type(exc).__name__}: {exc}") from exc
        results.append((impl.plugin_name, result))
    return results


def describe_plugins(pm: pluggy.PluginManager, registry: DriverRegistry) -> list[dict[str, Any]]:
    """Every loaded plugin: name, distribution and version, the drivers and hooks it provides."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    drivers: dict[str, list[str]] = {}
    for role, kind in (("registry", Kind.IMAGE), ("network", Kind.NETWORK), ("storage", Kind.VOLUME),
                       ("runtime", Kind.CONTAINER)):
        for name in registry.names(kind):
            drivers.setdefault(registry.provider(kind, name), []).append(f"{role}:{name}")
    hooks: dict[str, list[str]] = {}
    for hook_name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            hooks.setdefault(impl.plugin_name, []).append(hook_name)
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        dist = dists.get(id(plugin))
        out.append({
            "name": name,
            "distribution": dist.project_name if dist else None,
            "version": dist.version if dist else None,
            "module": getattr(plugin, "__name__", type(plugin).__name__),
            "drivers": drivers.get(name, []),
            "hooks": hooks.get(name, []),
        })
    return out
