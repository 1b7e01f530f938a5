"""The fake engine's own machinery: its objects, the request every verb makes, its errors and events.

Kept apart from the verbs (``_containers``, ``_images``, ``_networks``) as docker-py
keeps ``APIClient``'s plumbing apart from its per-resource mixins: every verb
opens ``_request``, which records the call, answers a failure the test asked
for, turns the engine's refusals into docker-py's exceptions and hands a
``requests.Response`` to the response hooks.
"""
from __future__ import annotations

import hashlib
import http
import itertools
import json
import queue
import re
import threading
import time
from contextlib import contextmanager
from typing import Iterator, NamedTuple

import docker.constants
import docker.errors
import requests

__all__ = ["Call", "Refused", "api_error"]

ZERO = "0001-01-01T00:00:00Z"  # the engine's "never" (StartedAt of a container that never ran)
PREDEFINED = ("bridge", "host", "none")
_STREAMS = ("pull", "push", "build", "load_image")  # verbs that answer with a stream of progress events
# verb → (HTTP method, path): what docker-py would send, for the recorded call and the response hooks
_ROUTES = {
    "containers": ("GET", "/containers/json"), "inspect_container": ("GET", "/containers/{}/json"),
    "create_container": ("POST", "/containers/create"), "start": ("POST", "/containers/{}/start"),
    "stop": ("POST", "/containers/{}/stop"), "remove_container": ("DELETE", "/containers/{}"),
    "rename": ("POST", "/containers/{}/rename"), "pause": ("POST", "/containers/{}/pause"),
    "unpause": ("POST", "/containers/{}/unpause"), "logs": ("GET", "/containers/{}/logs"),
    "connect_container_to_network": ("POST", "/networks/{1}/connect"),
    "disconnect_container_from_network": ("POST", "/networks/{1}/disconnect"),
    "images": ("GET", "/images/json"), "inspect_image": ("GET", "/images/{}/json"),
    "pull": ("POST", "/images/create"), "push": ("POST", "/images/{}/push"), "build": ("POST", "/build"),
    "tag": ("POST", "/images/{}/tag"), "load_image": ("POST", "/images/load"),
    "remove_image": ("DELETE", "/images/{}"), "networks": ("GET", "/networks"),
    "inspect_network": ("GET", "/networks/{}"), "create_network": ("POST", "/networks/create"),
    "remove_network": ("DELETE", "/networks/{}"), "volumes": ("GET", "/volumes"),
    "inspect_volume": ("GET", "/volumes/{}"), "create_volume": ("POST", "/volumes/create"),
    "remove_volume": ("DELETE", "/volumes/{}"), "info": ("GET", "/info"), "version": ("GET", "/version"),
    "events": ("GET", "/events"),
}


class Call(NamedTuple):
    """One request the fake answered: the ``docker.APIClient`` method, its arguments, the HTTP method."""

    verb: str
    args: tuple
    kwargs: dict
    method: str

    @property
    def write(self) -> bool:
        """Whether the engine would count it as a write (anything but GET and HEAD)."""
        return self.method not in ("GET", "HEAD")


class Refused(Exception):
    """The engine's error answer, raised inside a verb; ``_request`` turns it into docker-py's exception."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(explanation)
        self.status, self.explanation = status, explanation


def _response(status: int, method: str, path: str, explanation: str = "") -> requests.Response:
    response = requests.Response()
    response.status_code, response.reason = status, http.HTTPStatus(status).phrase
    response.url = f"http+docker://localhost/v{docker.constants.DEFAULT_DOCKER_API_VERSION}{path}"
    response.request = requests.Request(method, response.url).prepare()
    response._content = json.dumps({"message": explanation}).encode() if explanation else b"{}"
    return response


def api_error(status: int, explanation: str, *, method: str = "GET", path: str = "/") -> docker.errors.APIError:
    """The exception docker-py raises when the engine answers ``status`` with ``explanation``.

    ``NotFound`` (or ``ImageNotFound``) for a 404, else ``APIError``, made by
    docker-py's own ``create_api_error_from_http_exception``.
    """
    try:
        docker.errors.create_api_error_from_http_exception(
            requests.HTTPError(response=_response(status, method, path, explanation)))
    except docker.errors.APIError as exc:
        return exc
    raise AssertionError("docker-py made no error")  # pragma: no cover


def as_list(value) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple, set)) else [value]


def matches(filters: dict | None, *, labels: dict | None = None, name: str = "", id: str = "", **fields: str) -> bool:
    """The engine's list filters: every ``label`` (``key`` or ``key=value``), ``name`` a regex search,
    ``id`` a prefix, any other field (``status``, ``driver``) one of the values."""
    for key, values in (filters or {}).items():
        values = as_list(values)
        if key == "label":
            present = labels or {}
            for value in values:
                label, has_value, wanted = value.partition("=")
                if label not in present or (has_value and present[label] != wanted):
                    return False
        elif key == "name" and values and not any(re.search(v, name) for v in values):
            return False
        elif key == "id" and values and not any(id.startswith(v) for v in values):
            return False
        elif key in fields and values and fields[key] not in values:
            return False
    return True


def full_ref(ref: str) -> str:
    """``busybox`` → ``busybox:latest``, as the engine lists tags; digests and tagged refs stay."""
    return ref if "@" in ref or ":" in ref.rpartition("/")[2] else f"{ref}:latest"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EventStream:
    """What ``events()`` answers: the engine's events from the call on, until ``close()``."""

    def __init__(self, types: list[str], decode: bool) -> None:
        self.types, self.decode, self.queue = types, decode, queue.Queue()

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        event = self.queue.get()
        if event is None:
            raise StopIteration
        return event if self.decode else json.dumps(event).encode()

    def close(self) -> None:
        self.queue.put(None)


class Engine:
    """The engine's objects in the engine's JSON shapes, and what every verb does around its work."""

    base_url = "http+docker://localhost"

    def __init__(self, *, engine_id: str = "FAKE:ENGINE", swarm: dict | None = None,
                 api_version: str = docker.constants.DEFAULT_DOCKER_API_VERSION) -> None:
        self.engine_id, self.swarm, self.api_version = engine_id, dict(swarm or {}), api_version
        self._version = api_version  # what docker-py's builders read
        self.calls: list[Call] = []
        self.hooks: dict[str, list] = {"response": []}  # as requests.Session's: called with each response
        self.closed = False
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._failures: dict[str, list] = {}
        self._containers: dict[str, dict] = {}
        self._images: dict[str, dict] = {}
        self._registry: dict[str, tuple[str, str, dict | None]] = {}  # ref → (image id, digest, labels)
        self._networks: dict[str, dict] = {}
        self._volumes: dict[str, dict] = {}
        self._logs: dict[str, bytes] = {}
        self._streams: list[EventStream] = []
        for name in PREDEFINED:
            self._add_network(name, driver="null" if name == "none" else name)

    def fail(self, verb: str, error: int | BaseException = 500, explanation: str = "fake engine error", *,
             times: int | None = None, in_stream: bool = False) -> None:
        """Make ``verb`` fail: the engine answers HTTP ``error`` with ``explanation``, or ``error`` is raised.

        Pass an exception (``requests.ConnectionError()``) for a failure with no
        answer. ``times``: that many calls fail, then the verb works again
        (default: every call). ``in_stream`` (pull, push, build, load_image):
        the request succeeds and its stream ends with an ``{"error": ...}`` event.
        """
        self._failures[verb] = [error, explanation, times, in_stream]

    def count(self, verb: str) -> int:
        """How many ``verb`` requests were made."""
        return sum(call.verb == verb for call in self.calls)

    def writes(self) -> list[Call]:
        """The requests that would change something on the engine."""
        return [call for call in self.calls if call.write]

    @contextmanager
    def _request(self, verb: str, *args, **kwargs) -> Iterator[str | None]:
        """Record the call, answer an injected failure, run the verb's body, then the response hooks.

        Yields the error a stream must end with (``fail(..., in_stream=True)``), else None.
        """
        method, path = _ROUTES[verb]
        path = path.format(*args) if "{" in path else path
        with self._lock:
            self.calls.append(Call(verb, args, kwargs, method))
            status, explanation = 200, ""
            try:
                yield self._injected(verb)
            except Refused as refused:
                status, explanation = refused.status, refused.explanation
                raise api_error(status, explanation, method=method, path=path) from None
            except Exception:
                status = 0  # no answer: nothing for the hooks
                raise
            finally:
                if status:
                    response = _response(status, method, path, explanation)
                    for hook in self.hooks["response"]:
                        hook(response)

    def _injected(self, verb: str) -> str | None:
        """Raise the failure ``fail`` asked of ``verb``; the text its stream must end with; else None."""
        failure = self._failures.get(verb)
        if failure is None:
            return None
        error, explanation, times, in_stream = failure
        if times is not None:
            failure[2] = times - 1
            if failure[2] <= 0:
                del self._failures[verb]
        if in_stream and verb in _STREAMS:
            return explanation
        if isinstance(error, BaseException):
            raise error
        raise Refused(error, explanation)

    # -- finding and making objects ------------------------------------------------------------
    def _new_id(self, kind: str, prefix: str = "") -> str:
        return prefix + hashlib.sha256(f"{kind}-{next(self._ids)}".encode()).hexdigest()

    @staticmethod
    def _find(objects: dict, key: str, name_of) -> dict | None:
        """By id, by name, else by a unique id prefix of three characters or more."""
        key = key.removeprefix("/")
        found = objects.get(key) or next((o for o in objects.values() if name_of(o) == key), None)
        if found is None and len(key) >= 3:
            short = key.removeprefix("sha256:")
            prefixed = [o for i, o in objects.items() if i.removeprefix("sha256:").startswith(short)]
            found = prefixed[0] if len(prefixed) == 1 else None
        return found

    def _container(self, key: str) -> dict:
        found = self._find(self._containers, key, lambda c: c["Name"][1:])
        if found is None:
            raise Refused(404, f"No such container: {key}")
        return found

    def _network(self, key: str) -> dict:
        found = self._find(self._networks, key, lambda n: n["Name"])
        if found is None:
            raise Refused(404, f"network {key} not found")
        return found

    def _volume(self, name: str) -> dict:
        if name not in self._volumes:
            raise Refused(404, f"get {name}: no such volume")
        return self._volumes[name]

    def _find_image(self, ref: str) -> dict | None:
        full = full_ref(ref)
        tagged = (i for i in self._images.values() if full in i["RepoTags"] or ref in i["RepoDigests"])
        return next(tagged, None) or self._find(self._images, ref, lambda i: None)

    def _image(self, ref: str) -> dict:
        found = self._find_image(ref)
        if found is None:
            raise Refused(404, f"No such image: {ref}")
        return found

    def _add_network(self, name: str, *, driver: str, options=None, ipam=None, labels=None, internal=False,
                     attachable=False, enable_ipv6=False) -> dict:
        net = {"Name": name, "Id": self._new_id("network"), "Created": now(), "Scope": "local", "Driver": driver,
               "EnableIPv6": enable_ipv6,
               "IPAM": {"Driver": "default", "Options": None, "Config": list((ipam or {}).get("Config") or [])},
               "Internal": internal, "Attachable": attachable, "Ingress": False, "ConfigFrom": {"Network": ""},
               "ConfigOnly": False, "Containers": {}, "Options": dict(options or {}), "Labels": dict(labels or {})}
        self._networks[net["Id"]] = net
        self._emit("network", "create", net["Id"], net)
        return net

    def _add_volume(self, name: str | None, driver: str | None, options: dict | None, labels: dict | None) -> dict:
        name = name or self._new_id("volume")
        volume = {"CreatedAt": now(), "Driver": driver or "local", "Labels": dict(labels) if labels else None,
                  "Mountpoint": f"/var/lib/docker/volumes/{name}/_data", "Name": name,
                  "Options": dict(options) if options else None, "Scope": "local"}
        self._volumes[name] = volume
        self._emit("volume", "create", name, volume, driver=volume["Driver"])
        return volume

    def _volume_users(self, name: str) -> list[str]:
        return [c["Id"] for c in self._containers.values() if any(m.get("Name") == name for m in c["Mounts"])]

    # -- events ----------------------------------------------------------------------------------
    def _emit(self, kind: str, action: str, id: str, subject: dict, **attributes: str) -> None:
        """Hand an event to every open stream that follows ``kind``, shaped as the engine's."""
        if kind == "container":
            attributes = {**subject["Config"]["Labels"], "image": subject["Config"]["Image"],
                          "name": subject["Name"][1:], **attributes}
        elif kind != "image":
            attributes = {"name": subject["Name"], **attributes}
        stamp = time.time_ns()
        event = {"Type": kind, "Action": action, "Actor": {"ID": id, "Attributes": attributes}, "scope": "local",
                 "time": stamp // 10**9, "timeNano": stamp}
        for stream in self._streams:
            if not stream.types or kind in stream.types:
                stream.queue.put(event)
