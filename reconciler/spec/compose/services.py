"""Compose services to stack containers: one method per Compose service key that needs more than a rename.

Keys the stack spec spells as Compose does pass through, renamed keys are
renamed (both listed in ``keys``); each key in ``keys.TRANSLATED`` has a
``_service_<key>`` method here that reshapes it: ``build``/``image``/
``pull_policy`` into an image entry, ``depends_on`` conditions, long-syntax
ports and mounts, ``tmpfs``, ``deploy``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from . import keys
from .writer import Writer, as_number, cast, labels_map

__all__ = ["ServiceWriter"]

_CONDITIONS = {"service_started": "started", "service_healthy": "healthy",
               "service_completed_successfully": "completed"}
_PULL = {"always": "always", "never": "never", "missing": "if-not-present", "if_not_present": "if-not-present"}
_RESTART = {"none": "no", "any": "always", "on-failure": "on-failure"}
_VOLUME_FLAGS_DROPPED = {"cached", "delegated", "consistent"}  # Docker Desktop only; no-ops on Linux


class ServiceWriter(Writer):
    """Translates the ``services`` section into ``containers`` (and ``images`` for builds)."""

    def _service(self, name: str, service: dict) -> None:
        ours, theirs = ("containers", name), ("services", name)
        container: dict[str, Any] = {"image": None}  # first, as people write it
        self.out.data.setdefault("containers", {})[name] = container
        self._mark(ours, theirs)
        for key, value in service.items():
            here = (*theirs, key)
            if key.startswith("x-"):
                continue
            if key in keys.PASSED:
                self._put(container, (*ours, key), value, here)
            elif key in keys.RENAMED:
                self._put(container, (*ours, keys.RENAMED[key]), value, here)
            elif key in keys.TRANSLATED:
                getattr(self, f"_service_{key}")(name, container, value, here)
            elif key in keys.UNSUPPORTED:
                self._unsupported(here, keys.UNSUPPORTED[key])
            else:
                self._error(here, f"unknown Compose service key {key!r}")
        self._image_of(name, service, container)

    def _image_of(self, name: str, service: dict, container: dict) -> None:
        theirs = ("services", name)
        image, build, pull = service.get("image"), service.get("build"), service.get("pull_policy")
        if build is None and image is None:
            del container["image"]
            self._error(theirs, "a service needs image: or build:")
            return
        spec: dict[str, Any] = {}
        if image is not None:
            spec["ref"] = str(image)
        self._extension(name, service, spec, container)
        if build is not None:
            spec["build"] = self._build(name, build, (*theirs, "build"))
        if pull is not None:
            if pull in _PULL and build is None:
                spec["pull"] = _PULL[pull]
                self._mark(("images", name, "pull"), (*theirs, "pull_policy"))
            elif pull != "build" and not (pull in _PULL and build is not None):
                self._unsupported((*theirs, "pull_policy"), f"pull_policy {pull!r}: {keys.NOT_YET} "
                                  "(always, never, missing, build are)")
        bare = image is not None and not any(c in str(image) for c in ":/@")
        if build is None and not bare and "pull" not in spec and "update" not in spec:
            container["image"] = str(image)
            self._mark(("containers", name, "image"), (*theirs, "image"))
            return
        self.out.data.setdefault("images", {})[name] = spec
        self._mark(("images", name), (*theirs, "build" if build is not None else "image"))
        if bare and build is None:
            self.out.notes.append((("images", name), f"the image {image!r} of service {name} (in a stack spec "
                                                     "a bare word names an image key)"))
        if image is not None:
            self._mark(("images", name, "ref"), (*theirs, "image"))
        container["image"] = name
        self._mark(("containers", name, "image"), (*theirs, "build" if build is not None else "image"))

    def _extension(self, name: str, service: dict, spec: dict, container: dict) -> None:
        """``x-reconcile``: what the stack spec says that Compose has no place for: the service's image's
        ``update:`` (the version policy), and the container's ``snapshot:`` and ``restore:`` (its release's
        data, beside ``deploy.update_config``); checked with the spec, at the Compose file's lines."""
        theirs = ("services", name, "x-reconcile")
        extension = service.get("x-reconcile")
        if extension is None:
            return
        if not isinstance(extension, dict):
            self._error(theirs, "x-reconcile must be a mapping (keys: update, snapshot, restore)")
            return
        for key, value in extension.items():
            if key in ("snapshot", "restore"):
                self._put(container.setdefault("update", {}), ("containers", name, "update", key), value,
                          (*theirs, key))
            elif key != "update":
                self._error((*theirs, key), f"unknown x-reconcile key {key!r} (expected: update, snapshot, restore)")
            elif service.get("image") is None:
                self._error((*theirs, key), "update moves the tag of image:, and this service has none")
            else:
                self._put(spec, ("images", name, "update"), value, (*theirs, key))

    def _service_image(self, *_: Any) -> None:
        """Handled with build and pull_policy, in ``_image_of``."""

    _service_build = _service_pull_policy = _service_image

    def _build(self, name: str, build: Any, theirs: tuple) -> dict:
        ours = ("images", name, "build")
        if isinstance(build, str):
            self._mark((*ours, "context"), theirs)
            return {"context": self._path(build, theirs)}
        if not isinstance(build, dict):
            self._error(theirs, "build must be a context path or a mapping")
            return {}
        made: dict[str, Any] = {"context": self._path(str(build.get("context", ".")), (*theirs, "context"))}
        self._mark((*ours, "context"), (*theirs, "context") if "context" in build else theirs)
        for key, value in build.items():
            here = (*theirs, key)
            if key in ("dockerfile", "target"):
                self._put(made, (*ours, key), value, here)
            elif key == "args":
                made["args"] = self._resolved(value, here, (*ours, "args"))
            elif key != "context" and not key.startswith("x-"):
                self._unsupported(here, keys.NOT_YET)
        return made

    def _resolved(self, mapping: Any, theirs: tuple, ours: tuple) -> dict:
        """A mapping whose null values take the variable of the same name, or are left out (Compose's rule)."""
        if not isinstance(mapping, dict):
            self._error(theirs, "expected a mapping or a list of KEY=VALUE")
            return {}
        made = {}
        for key, value in mapping.items():
            if value is None:
                if key not in self.project.variables:
                    continue
                value = self.project.variables[key]
                self.out.notes.append(((*ours, key), f"the value of ${key} when converted"))
            made[key] = value
            self._mark((*ours, key), (*theirs, key), subtree=True)
        self._mark(ours, theirs)
        return made

    def _service_environment(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        container["env"] = self._resolved(value, theirs, ("containers", name, "env"))

    def _service_labels(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        container["labels"] = labels_map(value)
        self._mark(("containers", name, "labels"), theirs, subtree=True)

    def _service_env_file(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        items = value if isinstance(value, list) else [value]
        files = []
        for index, item in enumerate(items):
            here = (*theirs, index) if isinstance(value, list) else theirs
            path, required = (item.get("path"), item.get("required", True)) if isinstance(item, dict) else (item, True)
            resolved = self._path(str(path), here)
            if not required and not (self.project.directory / Path(resolved).expanduser()).exists():
                continue
            self._mark(("containers", name, "env_file", len(files)), here)
            files.append(resolved)
        container["env_file"] = files
        self._mark(("containers", name, "env_file"), theirs)

    def _service_profiles(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        """Consumed when the project was read: only services of active profiles are left."""
        self.out.notes.append((("containers", name), f"profiles {value} dropped: converted because active"))

    def _service_ports(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        ours = ("containers", name, "ports")
        made = []
        for index, item in enumerate(value if isinstance(value, list) else []):
            here = (*theirs, index)
            if isinstance(item, dict):
                item = {k: cast(k, v) for k, v in item.items() if k not in ("mode", "name", "app_protocol")}
                for key in [k for k in item if k not in ("target", "published", "protocol", "host_ip")]:
                    self._unsupported((*here, key), keys.NOT_YET)
                    del item[key]
            self._mark((*ours, len(made)), here, subtree=True)
            made.append(item)
        container["ports"] = made
        self._mark(ours, theirs)

    def _service_volumes(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        ours = ("containers", name, "volumes")
        made = container.setdefault("volumes", [])
        for index, item in enumerate(value if isinstance(value, list) else []):
            here = (*theirs, index)
            mount = self._mount(item, here)
            if mount is not None:
                self._mark((*ours, len(made)), here, subtree=True)
                made.append(mount)
        self._mark(ours, theirs)

    def _mount(self, item: Any, theirs: tuple) -> Any:
        if isinstance(item, str):
            return self._short_mount(item, theirs)
        if not isinstance(item, dict):
            return item  # validation says what is wrong with it
        made = {}
        for key, value in item.items():
            here = (*theirs, key)
            if key in ("type", "target", "read_only"):
                made[key] = cast(key, value) if key == "read_only" else value
            elif key == "source":
                made[key] = self._path(str(value), here) if item.get("type") == "bind" else value
            elif key == "tmpfs" and isinstance(value, dict):
                for option, size in value.items():
                    if option == "size":
                        made["size"] = size
                    else:
                        self._unsupported((*here, option), keys.NOT_YET)
            elif key == "bind" and isinstance(value, dict):
                for option, setting in value.items():
                    if option == "create_host_path":  # the short syntax implies it; the long one asks
                        made[option] = cast(option, setting)
                    else:
                        self._unsupported((*here, option), keys.NOT_YET)
            elif key == "volume" and isinstance(value, dict):
                for option, setting in value.items():
                    if not (option == "nocopy" and setting is False):
                        self._unsupported((*here, option), keys.NOT_YET)
            elif key != "consistency":
                self._unsupported(here, keys.NOT_YET)
        return made

    def _short_mount(self, text: str, theirs: tuple) -> str:
        parts = text.split(":")
        if len(parts) < 2:
            return text  # an anonymous volume: the stack spec decides
        flags = [f for f in parts[2].split(",") if f] if len(parts) > 2 else []
        kept = [f for f in flags if f in ("ro", "rw")]
        for flag in flags:
            if flag not in ("ro", "rw") and flag not in _VOLUME_FLAGS_DROPPED:
                self._unsupported(theirs, f"the mount option {flag!r}: {keys.NOT_YET}")
        source = parts[0]
        if source.startswith((".", "/", "~")):
            source = self._path(source, theirs)
        return ":".join([source, parts[1], *kept[-1:]])

    def _service_tmpfs(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        ours = ("containers", name, "volumes")
        made = container.setdefault("volumes", [])
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            here = (*theirs, index) if isinstance(value, list) else theirs
            target, _, options = str(item).partition(":")
            mount: dict[str, Any] = {"type": "tmpfs", "target": target}
            for option in filter(None, options.split(",")):
                key, _, setting = option.partition("=")
                if key == "size":
                    mount["size"] = setting
                else:
                    self._unsupported(here, f"the tmpfs option {key!r}: {keys.NOT_YET}")
            self._mark((*ours, len(made)), here)
            made.append(mount)

    def _service_networks(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        self._mapping(container, ("containers", name, "networks"), value, theirs, self._networks)

    def _networks(self, ours: tuple, value: dict, theirs: tuple) -> dict:
        made: dict[str, Any] = {}
        for network, settings in value.items():
            here = (*theirs, network)
            made[network] = None
            self._mark((*ours, network), here)
            if not isinstance(settings, dict):
                continue
            entry = {}
            for key, item in settings.items():
                if key in ("aliases", "ipv4_address", "ipv6_address"):
                    self._put(entry, (*ours, network, key), item, (*here, key))
                else:
                    self._unsupported((*here, key), keys.NOT_YET)
            made[network] = entry or None
        return made

    def _service_depends_on(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        ours = ("containers", name, "depends_on")
        made = {}
        for other, settings in (value or {}).items():
            here = (*theirs, other)
            settings = settings if isinstance(settings, dict) else {}
            condition = settings.get("condition", "service_started")
            if condition not in _CONDITIONS:
                self._error((*here, "condition"), f"unknown condition {condition!r} (expected one of: "
                                                  f"{', '.join(_CONDITIONS)})")
                continue
            for key in settings:
                if key == "restart" and settings[key]:
                    self._unsupported((*here, key), "restarting dependents when a dependency is replaced: "
                                      + keys.NOT_YET)
                elif key not in ("condition", "required", "restart"):
                    self._unsupported((*here, key), keys.NOT_YET)
            made[other] = {"condition": _CONDITIONS[condition]}
            self._mark((*ours, other), here)
            self._mark((*ours, other, "condition"), (*here, "condition"))
        container["depends_on"] = made
        self._mark(ours, theirs)

    def _service_healthcheck(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        self._mapping(container, ("containers", name, "healthcheck"), value, theirs, self._healthcheck)

    def _healthcheck(self, ours: tuple, value: dict, theirs: tuple) -> dict:
        made: dict[str, Any] = {}
        if value.get("disable"):
            made["test"] = ["NONE"]
            self._mark((*ours, "test"), (*theirs, "disable"))
            self.out.notes.append((ours, "disable: true written as test: [NONE]"))
            return made
        for key, item in value.items():
            if key in ("test", "interval", "timeout", "retries", "start_period"):
                self._put(made, (*ours, key), item, (*theirs, key))
            elif key != "disable":
                self._unsupported((*theirs, key), keys.NOT_YET)
        return made

    def _mapping(self, container: dict, ours: tuple, value: Any,
                 theirs: tuple, translate: Callable[[tuple, dict, tuple], dict]) -> None:
        """``container``'s key ``ours[-1]``: a mapping as ``translate`` makes it, any other value as written
        (the schema says what is wrong with it)."""
        if not isinstance(value, dict):
            self._put(container, ours, value, theirs)
            return
        container[ours[-1]] = translate(ours, value, theirs)
        self._mark(ours, theirs)

    def _service_configs(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        self._put(container, ("containers", name, theirs[-1]), value, theirs)

    _service_secrets = _service_configs

    def _service_deploy(self, name: str, container: dict, value: Any, theirs: tuple) -> None:
        ours = ("containers", name)
        for key, item in (value or {}).items():
            here = (*theirs, key)
            if key == "replicas":
                self._put(container, (*ours, "replicas"), as_number(item), here)
            elif key == "resources" and isinstance(item, dict):
                self._resources(container, ours, item, here)
            elif key == "restart_policy" and isinstance(item, dict):
                self._restart_policy(container, ours, item, here)
            elif key == "update_config" and isinstance(item, dict):
                update = {}
                for option, setting in item.items():
                    if option in ("order", "parallelism", "delay"):
                        self._put(update, (*ours, "update", option), setting, (*here, option))
                    else:
                        self._unsupported((*here, option), keys.SWARM_REASON)
                container["update"] = update
                self._mark((*ours, "update"), here)
            elif key == "mode" and item == "replicated":
                continue
            elif not key.startswith("x-"):
                self._unsupported(here, keys.SWARM_REASON if key in keys.SWARM_DEPLOY else keys.NOT_YET)

    def _resources(self, container: dict, ours: tuple, item: dict, theirs: tuple) -> None:
        for kind, settings in item.items():
            here = (*theirs, kind)
            if kind != "limits" or not isinstance(settings, dict):
                self._unsupported(here, keys.NOT_YET)
                continue
            for key, value in settings.items():
                if key == "cpus":
                    self._put(container, (*ours, "cpus"), as_number(value), (*here, key))
                elif key == "memory":
                    self._put(container, (*ours, "memory"), value, (*here, key))
                else:
                    self._unsupported((*here, key), keys.NOT_YET)

    def _restart_policy(self, container: dict, ours: tuple, item: dict, theirs: tuple) -> None:
        condition = item.get("condition", "any")
        policy = _RESTART.get(condition)
        if policy is None:
            self._error((*theirs, "condition"), f"unknown condition {condition!r} (expected none, on-failure or any)")
            return
        if policy == "on-failure" and item.get("max_attempts"):
            policy = f"on-failure:{item['max_attempts']}"
        for key in item:
            if key not in ("condition", "max_attempts"):
                self._unsupported((*theirs, key), keys.SWARM_REASON)
        container["restart"] = policy
        self._mark((*ours, "restart"), theirs)

