"""Our built-in registry and runtime drivers pass the same contracts a plugin author runs."""
from __future__ import annotations

import io
import uuid

import pytest

from reconciler.model import ImageSpec
from reconciler.testing import RegistryDriverContract, RuntimeDriverContract
from reconciler_docker.containers import DockerRuntimeDriver
from reconciler_docker.images import DockerRegistryDriver

from .conftest import BASE_IMAGE
from .registry import credentials_env

pytestmark = pytest.mark.engine


class TestDockerRuntimeDriver(RuntimeDriverContract):
    @pytest.fixture
    def driver(self, driver_context):
        return DockerRuntimeDriver(driver_context)

    @pytest.fixture
    def image_ref(self, engine):
        return BASE_IMAGE

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return DockerRuntimeDriver(unreachable_context)


class TestDockerRegistryDriver(RegistryDriverContract):
    """Against a real, password-protected registry; each test pulls a repository of its own."""

    @pytest.fixture(autouse=True)
    def _credentials(self, tmp_path, registry, monkeypatch):
        for name, value in credentials_env(tmp_path, registry).items():
            monkeypatch.setenv(name, value)

    @pytest.fixture
    def engine_client(self, engine):
        self._engine = engine
        return engine

    @pytest.fixture
    def driver(self, driver_context, engine_client):
        return DockerRegistryDriver(driver_context)

    @pytest.fixture
    def spec(self, registry, engine):
        ref = registry.server.push_base(engine, BASE_IMAGE, repo=f"contract/{uuid.uuid4().hex[:8]}")
        return ImageSpec(key="app", ref=ref)

    @pytest.fixture
    def missing_spec(self, registry):
        return ImageSpec(key="app", ref=f"{registry.host}/contract/missing-{uuid.uuid4().hex[:8]}:1")

    @pytest.fixture
    def build_spec(self, tmp_path):
        (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nLABEL contract=yes\n")
        return ImageSpec(key="built", ref=f"rtest-contract-{uuid.uuid4().hex[:8]}:latest", pull="never",
                         build_context=str(tmp_path), build_hash=f"sha256:{uuid.uuid4().hex}")

    @pytest.fixture
    def change_source(self, registry, engine):
        def push_other_content(spec: ImageSpec) -> None:
            # Another image under the same tag: the base with one more label, pushed by "someone else".
            repo, _, tag = spec.ref.rpartition(":")
            pulled = engine.inspect_image(spec.ref)["Id"]
            dockerfile = f"FROM {BASE_IMAGE}\nLABEL moved={uuid.uuid4().hex}\n".encode()
            for _ in engine.build(fileobj=io.BytesIO(dockerfile), tag=f"{repo}-next:{tag}", rm=True, decode=True):
                pass
            engine.tag(f"{repo}-next:{tag}", repo, tag=tag)
            for event in engine.push(repo, tag=tag, auth_config=registry.server.auth_config, stream=True,
                                     decode=True):
                assert "error" not in event, event
            engine.remove_image(f"{repo}-next:{tag}")
            engine.tag(pulled, repo, tag=tag)  # locally, the tag stays on what was pulled
        return push_other_content

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return DockerRegistryDriver(unreachable_context)

    def remove_local(self, ref: str) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None:
            try:
                engine.remove_image(ref, force=True)
            except Exception:
                pass
