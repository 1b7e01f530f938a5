"""A Docker engine's low-level API held in memory, for unit tests of drivers built on docker-py.

Why it exists: the docker plugin's drivers talk to a ``docker.APIClient``, and
testing them without an engine used to mean a hand-made double per test file,
each answering the one or two verbs its test needed. ``FakeDockerAPI`` is one
stand-in for that client (as docker-py keeps ``tests/unit/fake_api.py``), shipped
beside ``MemoryEngine`` so that authors of plugins built on docker-py can use it
too. Hand it to every driver of a run at the engine kit's one seam, ``use_client``::

    from reconciler.testing.fakedocker import FakeDockerAPI
    from reconciler.sdk.docker import use_client

    fake = FakeDockerAPI()
    use_client(context, fake)               # every driver of the run now talks to it
    fake.add_image("busybox:1")
    ...
    assert fake.count("containers") == 1 and not fake.writes()

It keeps containers, images, networks and volumes in the engine's JSON shapes
(``Id``, ``Name``, ``Config.Labels``, ``State.Status``, ``HostConfig``, ``Mounts``...;
request bodies are built by docker-py's own ``ContainerConfig`` and ``HostConfig``),
answers as the engine does where drivers rely on it (each verb module says
which answers), and raises docker-py's own exceptions (``NotFound`` for a 404,
``APIError`` with its ``status_code`` and ``explanation``). Every request is
recorded in ``calls`` (the builders such as ``create_host_config`` make none)
and handed to ``hooks["response"]`` as a ``requests`` session does, so the
plugin counts reads and writes as it does for a real client; ``fail`` makes a
verb answer an error, or raise one such as ``requests.ConnectionError``.

What it does not do: run processes (a started container runs until it is
stopped; ``exit_container``, ``set_health`` and ``write_logs`` play what a process
would do, ``mark_removing`` a removal in flight), talk to registries (``publish`` puts an image where ``pull`` finds
it), or check platforms. The verbs live in ``_containers``, ``_images`` and
``_networks``, over ``_engine`` (the objects, the request, the errors), as
docker-py composes ``APIClient`` from one mixin per resource.

It imports the Docker SDK, so it is imported from here:
``reconciler.testing`` itself imports no Docker.
"""
from __future__ import annotations

import docker.types

from ._containers import Containers
from ._engine import Call, EventStream, api_error, as_list
from ._images import Images
from ._networks import NetworksAndVolumes

__all__ = ["Call", "FakeDockerAPI", "api_error"]


class FakeDockerAPI(Containers, Images, NetworksAndVolumes):
    """The ``docker.APIClient`` verbs a driver uses, answered from memory (see the module's docstring).

    ``engine_id`` and ``swarm`` are what ``info()`` says (the ``ID``, the ``Swarm`` part).
    """

    def info(self):
        with self._request("info"):
            return {"ID": self.engine_id, "Name": "fake", "ServerVersion": "fake", "Swarm": dict(self.swarm),
                    "Containers": len(self._containers), "Images": len(self._images)}

    def version(self, api_version=True):
        with self._request("version"):
            return {"ApiVersion": self.api_version, "Version": "fake", "MinAPIVersion": "1.24"}

    def events(self, since=None, until=None, filters=None, decode=None):
        """The events that happen from the call on (of the ``type`` filter's types), until the stream is closed."""
        with self._request("events", filters=filters):
            stream = EventStream(as_list((filters or {}).get("type")), bool(decode))
            self._streams.append(stream)
            return stream

    def close(self) -> None:
        """What closing the client's session does here: nothing but remember it."""
        self.closed = True

    # docker-py's builders of request parts: no request, so no call recorded.
    def create_host_config(self, *args, **kwargs):
        return docker.types.HostConfig(*args, version=self._version, **kwargs)

    def create_networking_config(self, *args, **kwargs):
        return docker.types.NetworkingConfig(*args, **kwargs)

    def create_endpoint_config(self, *args, **kwargs):
        return docker.types.EndpointConfig(self._version, *args, **kwargs)
