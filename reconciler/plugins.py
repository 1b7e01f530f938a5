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

__all__ = ["ENTRY_POINT_GROUP", "call_by_plugin", "call_hook", "describe_plugins", "load_driver_registry",
           "make_plugin_manager"]

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
    """Ask every plugin for its drivers; a conflict names both plugins.

    Each plugin registers through its own view of the registry, so whatever
    it adds is credited to it, without shared state between plugins.
    """
    registry = DriverRegistry()
    for plugin_name, caller in _callers_by_plugin(pm, "reconciler_register_drivers"):
        _call(pm, caller, "reconciler_register_drivers", registry=registry.view(plugin_name), _typed=False)
    return registry


def call_hook(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Call a hook through pluggy, so wrappers, ``tryfirst`` and ``firstresult`` work as pluggy's docs say.

    Returns pluggy's result (the list of non-None results). A failure is a
    ``PluginError`` naming the plugin whose implementation raised, and the hook.
    """
    return _call(pm, getattr(pm.hook, hook_name), hook_name, **kwargs)


def call_by_plugin(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call a hook once per plugin that implements it, pairing each result with its plugin's name.

    For hooks whose answers must be credited (a veto names the plugin that
    gave it). Each call goes through pluggy with only that plugin's
    implementation and every wrapper-only plugin, so a wrapper wraps each
    plugin's answer separately.
    """
    out = []
    for plugin_name, caller in _callers_by_plugin(pm, hook_name):
        out += [(plugin_name, result) for result in _call(pm, caller, hook_name, **kwargs)]
    return out


def _callers_by_plugin(pm: pluggy.PluginManager, hook_name: str) -> list[tuple[str, Any]]:
    """(plugin name, a hook caller without the other plugins' plain implementations), in pluggy's order."""
    plain = [impl for impl in getattr(pm.hook, hook_name).get_hookimpls() if not (impl.wrapper or impl.hookwrapper)]
    plugins = {impl.plugin_name: impl.plugin for impl in reversed(plain)}  # pluggy calls the last registered first
    return [(name, pm.subset_hook_caller(hook_name, [p for n, p in plugins.items() if n != name]))
            for name in plugins]


def _call(pm: pluggy.PluginManager, caller: Any, hook_name: str, _typed: bool = True, **kwargs: Any) -> list[Any]:
    try:
        return caller(**kwargs)
    except PluginError:
        raise
    except Exception as exc:  # a plugin's bug must not look like ours
        what = f"{type(exc).__name__}: {exc}" if _typed else str(exc)
        raise PluginError(f"plugin {_culprit(pm, hook_name, exc)!r} failed in {hook_name}: {what}") from exc


def _culprit(pm: pluggy.PluginManager, hook_name: str, exc: BaseException) -> str:
    """The plugin whose implementation raised: the innermost of its frames in the traceback."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name
             for impl in getattr(pm.hook, hook_name).get_hookimpls()}
    culprit = "unknown"
    tb = exc.__traceback__
    while tb is not None:
        culprit = codes.get(tb.tb_frame.f_code, culprit)
        tb = tb.tb_next
    return culprit


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
