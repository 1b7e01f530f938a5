"""From a read Compose project to the data of a stack spec, with every position carried over.

The stack spec is close to Compose by design, so most of the work is
renaming (``services`` → ``containers``, ``environment`` → ``env``,
``driver_opts`` → ``options``) and reshaping (``depends_on`` conditions,
``deploy.replicas``, ``ipam.config``, long-syntax mounts). Every value the
translator writes remembers the Compose path it came from: its position goes
into the stack's marks, so the normal validation reports problems at the
Compose file's line, and ``paths`` maps each written field back to the
Compose key it came from, so the message names that key too.

A key that cannot be expressed is never dropped silently: it is an error at
its line (or, with ``ignore_unsupported``, a warning) that says what to do.
"""
from __future__ import annotations

from ..locations import KEY
from . import keys
from .project import ComposeProject
from .services import ServiceWriter
from .writer import Translation, as_text, cast, labels_map

__all__ = ["Translation", "translate"]


def translate(project: ComposeProject, *, ignore_unsupported: bool = False) -> Translation:
    """The stack spec data equivalent to ``project``; problems listed, never raised."""
    return _Translator(project, ignore_unsupported).run()


class _Translator(ServiceWriter):
    """The whole project: top-level sections here, services in ``ServiceWriter``."""

    def run(self) -> Translation:
        data = self.project.data
        self.out.data["name"] = self.project.name
        self._mark(("name",), ("name",))
        for key in data:
            if key.startswith("x-") or key in ("name", "services", "networks", "volumes", "configs", "secrets"):
                continue
            if key in keys.IGNORED:
                self.out.notes.append(((), f"{key}: dropped ({keys.IGNORED[key]})"))
            elif key in keys.UNSUPPORTED_TOP:
                self._unsupported((key,), keys.UNSUPPORTED_TOP[key])
            else:
                self._error((key,), f"unknown top-level Compose key {key!r} (expected services, networks, "
                                    "volumes, configs, secrets, name or x-*)")
        for section, method in (("volumes", self._volume), ("networks", self._network),
                                ("configs", self._config), ("secrets", self._secret)):
            self._section(section, method)
        services = data.get("services")
        if not isinstance(services, dict):
            self._error(("services",), "services must be a mapping of service name to service")
            return self.out
        for name, service in services.items():
            if isinstance(service, dict):
                self._service(name, service)
            else:
                self._error(("services", name), "a service must be a mapping")
        self._default_network()
        return self.out

    def _section(self, section: str, method) -> None:
        entries = self.project.data.get(section)
        if entries is None:
            return
        if not isinstance(entries, dict):
            self._error((section,), f"{section} must be a mapping")
            return
        made = {}
        for key, value in entries.items():
            theirs = (section, key)
            if value is not None and not isinstance(value, dict):
                self._error(theirs, "expected a mapping or nothing")
                continue
            value = value or {}
            if section in ("networks", "volumes") and cast("external", value.get("external")):
                made[key] = self._external(section, key, value)
                continue
            made[key] = {}
            self._mark((section, key), theirs)
            method(made[key], (section, key), value, theirs)
        if made:
            self.out.data[section] = made

    def _external(self, section: str, key: str, value: dict) -> dict:
        """An external network or volume: ``name:`` (or the legacy ``external: {name: x}``), nothing else.

        As the Compose specification says, it is not prefixed with the project's name:
        its engine name is ``name:``, else the key as written; and any attribute but
        ``name`` beside ``external`` makes the file invalid.
        """
        theirs, ours = (section, key), (section, key)
        made: dict = {"external": True}
        self._mark(ours, theirs)
        self._mark((*ours, "external"), (*theirs, "external"))
        for path in ((*theirs, "external", KEY), (*theirs, KEY)):  # the plan's refusal names external:'s line
            if path in self.project.marks:
                self.out.marks[(*ours, "external", KEY)] = self.project.marks[path]
                break
        legacy = value["external"] if isinstance(value["external"], dict) else {}
        for item in legacy:
            if item != "name":
                self._error((*theirs, "external", item), "only name may be set in the legacy external: {name: ...}")
        if "name" in legacy:
            if value.get("name") not in (None, legacy["name"]):
                self._error((*theirs, "name"), f"name {value['name']!r} conflicts with external.name "
                                               f"{legacy['name']!r}: keep one (external.name is the legacy form)")
            self._put(made, (*ours, "name"), str(legacy["name"]), (*theirs, "external", "name"))
            self.out.notes.append((ours, "external.name: written as name (Compose's current form)"))
        elif value.get("name") is not None:
            self._put(made, (*ours, "name"), str(value["name"]), (*theirs, "name"))
        for item in value:
            if item not in ("name", "external") and not str(item).startswith("x-"):
                self._error((*theirs, item), f"{item} cannot be set on an external {section[:-1]} (Compose allows "
                                             f"only name beside external: true); remove {item}: or external:")
        return made

    def _common(self, target: dict, ours: tuple, value: dict, theirs: tuple, known: set[str]) -> None:
        for key, item in value.items():
            here = (*theirs, key)
            if key.startswith("x-") or key == "external":
                continue
            if key == "driver_opts":
                target["options"] = {str(k): as_text(v) for k, v in (item or {}).items()}
                self._mark((*ours, "options"), here, subtree=True)
            elif key == "labels":
                target["labels"] = labels_map(item)
                self._mark((*ours, "labels"), here, subtree=True)
            elif key in known:
                self._put(target, (*ours, key), item, here)
            else:
                self._unsupported(here, keys.NOT_YET)

    def _volume(self, target: dict, ours: tuple, value: dict, theirs: tuple) -> None:
        self._common(target, ours, value, theirs, {"name", "driver"})
        extension = value.get("x-reconcile")
        if extension is None:
            return
        for key, item in (extension.items() if isinstance(extension, dict) else [(None, extension)]):
            if key == "snapshots":  # the retention of a release's snapshots: Compose has no place for it
                self._put(target, (*ours, "snapshots"), item, (*theirs, "x-reconcile", key))
            else:
                self._error((*theirs, "x-reconcile", *([key] if key is not None else [])),
                            "a volume's x-reconcile takes snapshots: (keep, max_age) only")

    def _network(self, target: dict, ours: tuple, value: dict, theirs: tuple) -> None:
        rest = {k: v for k, v in value.items() if k != "ipam"}
        self._common(target, ours, rest, theirs, {"name", "driver", "internal", "attachable"})
        ipam = value.get("ipam")
        if not isinstance(ipam, dict):
            return
        for key in ipam:
            if key not in ("config", "driver") or (key == "driver" and ipam[key] != "default"):
                self._unsupported((*theirs, "ipam", key), keys.NOT_YET)
        configs = ipam.get("config") or []
        if len(configs) > 1:
            self._unsupported((*theirs, "ipam", "config", 1), "more than one subnet per network: " + keys.NOT_YET)
        if configs and isinstance(configs[0], dict):
            here = (*theirs, "ipam", "config", 0)
            made = {}
            for key, item in configs[0].items():
                if key in ("subnet", "gateway", "ip_range"):
                    made[key] = item
                    self._mark((*ours, "ipam", key), (*here, key))
                else:
                    self._unsupported((*here, key), keys.NOT_YET)
            target["ipam"] = made
            self._mark((*ours, "ipam"), here)

    def _config(self, target: dict, ours: tuple, value: dict, theirs: tuple) -> None:
        for key, item in value.items():
            here = (*theirs, key)
            if key == "file":
                target["file"] = self._path(str(item), here)
                self._mark((*ours, "file"), here)
            elif key == "content":
                self._put(target, (*ours, "content"), item, here)
            elif key == "environment" and theirs[0] == "secrets":
                self._put(target, (*ours, "environment"), item, here)
            elif key == "environment":
                # A stack config has no environment source: its content is the variable's value now.
                if str(item) not in self.project.variables:
                    self._error(here, f"variable {item} is not set")
                    continue
                target["content"] = self.project.variables[str(item)]
                self._mark((*ours, "content"), here)
                self.out.notes.append((ours, f"content: the value of ${item} when converted"))
            elif key in ("name", "template_driver", "external"):  # a config or secret made outside: Swarm's
                self._unsupported(here, keys.SWARM_REASON)
            elif not key.startswith("x-"):
                self._unsupported(here, keys.NOT_YET)

    _secret = _config

    def _default_network(self) -> None:
        """Compose's ``default`` network, written out when a service names it without defining it."""
        networks = self.out.data.get("networks", {})
        named = any("default" in (c.get("networks") or {}) for c in self.out.data.get("containers", {}).values())
        if named and "default" not in networks:
            self.out.data.setdefault("networks", {})["default"] = {}
            self.out.notes.append((("networks", "default"), "the project's default network, named explicitly"))

    # -- services -------------------------------------------------------------------
