"""Building the plugin manager: entry points, development modules, disabled plugins.

Never done at import time: the CLI builds one manager per run with
``make_plugin_manager()``, so tests can build their own.

One broken plugin must not take the tool down: an installed plugin that fails
to import (or calls ``sys.exit``), declares no API version or one this core
does not speak, implements a hook nobody declared, or raises while registering its
drivers is skipped with a warning naming its entry point and distribution, and
``plugins list`` shows it as failed with the reason. Strict mode
(``--strict-plugins``, ``RECONCILER_STRICT_PLUGINS=1``; what CI runs with)
turns each of those into an error. A module named with ``--plugin`` is always
strict: the user asked for it by name.
"""
from __future__ import annotations

import enum
import importlib
import logging
import os
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .drivers import DriverRegistry
from .errors import PluginError
from .model import Kind
from .values import value

__all__ = ["ENTRY_POINT_GROUP", "PluginManager", "PluginState", "PluginStatus", "call_by_plugin", "call_hook",
           "describe_plugins", "load_driver_registry", "make_plugin_manager", "strict_from_env"]

ENTRY_POINT_GROUP = "reconciler"
DISABLED_ENV = "RECONCILER_DISABLED_PLUGINS"
EXTRA_ENV = "RECONCILER_PLUGINS"
STRICT_ENV = "RECONCILER_STRICT_PLUGINS"
log = logging.getLogger(__name__)


class PluginState(enum.Enum):
    """What became of one plugin: loaded, skipped because it failed, or switched off by the user."""

    LOADED = "loaded"
    FAILED = "failed"
    DISABLED = "disabled"


@value
class PluginStatus:
    """A plugin that is not loaded: its name (entry point or module), where it comes from, and why."""

    name: str
    state: PluginState
    reason: str = ""
    distribution: str | None = None
    version: str | None = None

    def origin(self) -> str:
        return f"{self.distribution} {self.version}" if self.distribution else "no distribution"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus what ``plugins list`` needs: where each plugin came from, and what was not loaded.

    ``strict`` makes any plugin failure an error instead of a skipped plugin.
    """

    def __init__(self, *, strict: bool = False) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.strict = strict
        #: entry-point name → (distribution, version) of every plugin loaded from an entry point
        self.origins: dict[str, tuple[str, str]] = {}
        #: plugins that are not loaded (failed or disabled), by name
        self.unloaded: dict[str, PluginStatus] = {}

    def skip(self, status: PluginStatus) -> None:
        """Record a plugin that failed (a warning, or a ``PluginError`` when strict) or was disabled."""
        if status.name in self.unloaded:
            return
        if self.get_plugin(status.name) is not None:
            self.unregister(name=status.name)
        if status.state is PluginState.FAILED:
            message = f"plugin {status.name!r} ({status.origin()}) {status.reason}"
            if self.strict:
                raise PluginError(message)
            log.warning("%s; it is skipped (--strict-plugins makes this an error)", message)
        self.unloaded[status.name] = status


def strict_from_env() -> bool:
    """Whether ``RECONCILER_STRICT_PLUGINS`` asks for strict plugin loading."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def make_plugin_manager(*, modules: Iterable[str] = (), disabled: Iterable[str] | None = None,
                        strict: bool | None = None) -> PluginManager:
    """A plugin manager with every installed plugin plus ``modules`` (import paths) loaded.

    ``disabled`` (default: the comma-separated ``RECONCILER_DISABLED_PLUGINS``)
    names entry points to skip; a name that matches no plugin is warned about.
    ``strict`` (default: ``RECONCILER_STRICT_PLUGINS``) makes a plugin that
    fails to load an error; otherwise it is skipped with a warning. A module in
    ``modules`` that cannot be imported, and a misspelled hook in it, are
    always errors.
    """
    pm = PluginManager(strict=strict_from_env() if strict is None else strict)
    if disabled is None:
        disabled = [name.strip() for name in os.environ.get(DISABLED_ENV, "").split(",") if name.strip()]
    disabled = list(dict.fromkeys(disabled))
    for name in disabled:
        pm.set_blocked(name)
    found = _load_entry_points(pm)
    extra = [m.strip() for m in os.environ.get(EXTRA_ENV, "").split(",") if m.strip()]
    for module_name in [*modules, *extra]:
        found.add(module_name)
        if pm.has_plugin(module_name) or pm.is_blocked(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PluginError(f"cannot import plugin module {module_name!r}: {exc}") from exc
        if pm.is_registered(module):  # an entry point loaded it already (an installed plugin named again)
            continue
        problem = _api_problem(module)
        if problem:
            raise PluginError(f"plugin module {module_name!r} {problem}")
        pm.register(module, name=module_name)
    for name in disabled:
        if name in found:
            pm.unloaded[name] = PluginStatus(name, PluginState.DISABLED, f"disabled by {DISABLED_ENV}",
                                             *pm.origins.get(name, (None, None)))
        else:
            log.warning("%s names %r, but no plugin has that name (installed: %s)", DISABLED_ENV, name,
                        ", ".join(sorted(found)) or "none")
    _check_hooks(pm, explicit=set(modules) | set(extra))
    return pm


def _load_entry_points(pm: PluginManager) -> set[str]:
    """Import and register every plugin of the entry-point group; return every entry-point name seen.

    What ``pluggy.PluginManager.load_setuptools_entrypoints`` does, one plugin at
    a time, so that one failing is named and skipped instead of aborting the rest.
    The entry points come from ``reconciler.entrypoints`` (remembered between runs).
    """
    from .entrypoints import entry_points

    seen: set[str] = set()
    for ep in entry_points(ENTRY_POINT_GROUP):
        seen.add(ep.name)
        if pm.get_plugin(ep.name) is not None or ep.name in pm.unloaded:
            continue
        origin = (ep.distribution, ep.version)
        pm.origins[ep.name] = origin
        if pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # SystemExit: a plugin calling sys.exit on import
            pm.skip(PluginStatus(ep.name, PluginState.FAILED, f"failed to import: {_describe(exc)}", *origin))
            continue
        problem = _api_problem(plugin)
        if problem:
            pm.skip(PluginStatus(ep.name, PluginState.FAILED, problem, *origin))
            continue
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as exc:  # a hook implementation that does not fit its spec
            pm.skip(PluginStatus(ep.name, PluginState.FAILED, f"cannot be registered: {exc}", *origin))
    return seen


def _api_problem(plugin: Any) -> str:
    """Why ``plugin`` cannot be used with this core's API, or "" (see ``hookspecs.API_VERSION``)."""
    declared = getattr(plugin, "RECONCILER_API_VERSION", None)
    speaks = f"this reconciler speaks plugin API version {hookspecs.API_VERSION} only"
    if declared is None:
        return f"declares no RECONCILER_API_VERSION: {speaks}"
    if not isinstance(declared, int) or isinstance(declared, bool):
        return f"declares RECONCILER_API_VERSION = {declared!r}: expected an integer"
    if declared > hookspecs.API_VERSION:
        return f"needs plugin API version {declared}, but {speaks}: upgrade reconciler"
    if declared < hookspecs.API_VERSION:
        return f"was written for plugin API version {declared}, but {speaks}: upgrade the plugin"
    return ""


def _check_hooks(pm: PluginManager, *, explicit: set[str]) -> None:
    """``check_pending``, plugin by plugin: a misspelled hook skips an installed plugin, fails a named module."""
    for hook_name in list(vars(pm.hook)):
        if hook_name.startswith("_"):
            continue
        caller = getattr(pm.hook, hook_name)
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            message = f"implements unknown hook {hook_name!r} (see reconciler.hookspecs)"
            if impl.plugin_name in explicit:
                raise PluginError(f"plugin module {impl.plugin_name!r} {message}")
            pm.skip(PluginStatus(impl.plugin_name, PluginState.FAILED, message,
                                 *pm.origins.get(impl.plugin_name, (None, None))))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def load_driver_registry(pm: pluggy.PluginManager) -> DriverRegistry:
    """Ask every plugin for its drivers; a plugin that raises is skipped (or, when strict, an error).

    Each plugin registers through its own view of the registry, so whatever
    it adds is credited to it, and a plugin that fails half-way leaves nothing
    behind. Two plugins giving one name are a conflict the registry remembers:
    an error for a spec that uses the name (see ``DriverRegistry.conflicts``).
    A manager not made by ``make_plugin_manager`` is strict.
    """
    registry = DriverRegistry()
    for plugin_name, caller in _callers_by_plugin(pm, "reconciler_register_drivers"):
        try:
            _call(pm, caller, "reconciler_register_drivers", registry=registry.view(plugin_name), _typed=False)
        except PluginError as exc:
            registry.forget(plugin_name)
            if not isinstance(pm, PluginManager) or pm.strict:
                raise
            pm.skip(PluginStatus(plugin_name, PluginState.FAILED, f"failed to register its drivers: {exc.__cause__ or exc}",
                                 *pm.origins.get(plugin_name, (None, None))))
    if (not isinstance(pm, PluginManager) or pm.strict) and registry.conflicts():
        raise PluginError("\n".join(registry.conflicts().values()))
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
    """Every plugin, loaded or not: name, distribution and version, state (and why), API version,
    the drivers and hooks it provides, and the driver names it claims together with another plugin."""
    dists = {id(plugin): (dist.project_name, dist.version) for plugin, dist in pm.list_plugin_distinfo()}
    origins = getattr(pm, "origins", {})
    drivers: dict[str, list[str]] = {}
    for kind in Kind:
        for name in registry.names(kind):
            for provider in registry.providers(kind, name):
                drivers.setdefault(provider, []).append(f"{kind.role}:{name}")
    conflicts: dict[str, list[str]] = {}
    for (kind, name), message in registry.conflicts().items():
        for provider in registry.providers(kind, name):
            conflicts.setdefault(provider, []).append(message)
    hooks: dict[str, list[str]] = {}
    for hook_name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            hooks.setdefault(impl.plugin_name, []).append(hook_name)
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked: described below from ``unloaded``
            continue
        dist = origins.get(name) or dists.get(id(plugin)) or (None, None)
        out.append({
            "name": name,
            "state": PluginState.LOADED.value,
            "reason": None,
            "distribution": dist[0],
            "version": dist[1],
            "module": getattr(plugin, "__name__", type(plugin).__name__),
            "api_version": getattr(plugin, "RECONCILER_API_VERSION", None),
            "drivers": drivers.get(name, []),
            "hooks": hooks.get(name, []),
            "conflicts": conflicts.get(name, []),
        })
    for status in getattr(pm, "unloaded", {}).values():
        out.append({"name": status.name, "state": status.state.value, "reason": status.reason,
                    "distribution": status.distribution, "version": status.version, "module": None,
                    "api_version": None, "drivers": [], "hooks": [], "conflicts": []})
    return sorted(out, key=lambda row: row["name"])
