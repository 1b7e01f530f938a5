"""The runtime driver contract as tests: create, start, wait, observe by labels, delete, errors.

A runtime driver runs containers; the planner relies on its ``observe``
reporting what the stack owns with the config hash and labels it was given,
on ``start`` and ``wait`` meaning what they say, and on deleting what is gone
being quiet. Subclass ``RuntimeDriverContract`` as ``Test...``.
"""
from __future__ import annotations

import dataclasses

import pytest

from ..drivers import DriverContext, RuntimeDriver
from ..errors import DriverError, PermanentError
from ..labels import STACK as STACK_LABEL
from ..model import ContainerSpec, Kind, LiveObject
from .contract import ContractHarness, _OwnedObjectContract, assert_maps_errors, with_hash

__all__ = ["RuntimeDriverContract"]


class RuntimeDriverContract(_OwnedObjectContract):
    """The contract of a runtime (container) driver.

    Fixtures a subclass defines:

    - ``driver`` (required): the driver under test, from ``driver_context``;
    - ``image_ref`` (required): an image present on the backend whose default command keeps running,
      or give ``spec`` a ``command`` that does (``("sleep", "3600")``);
    - ``spec``: the ``ContainerSpec`` to run (default: ``image_ref`` with ``command`` below);
    - ``unreachable_driver``: the driver pointed at a backend that does not answer (expects ``TemporaryError``).

    ``command`` (a class attribute) is the command of the default ``spec``; ``invalid(spec)``
    returns a spec the backend refuses (default: an image that does not exist).
    """

    kind = Kind.CONTAINER
    role = RuntimeDriver
    noun = "container"
    command: tuple[str, ...] | None = ("sleep", "3600")
    timeout = 30.0

    @pytest.fixture
    def image_ref(self) -> str:
        pytest.fail(f"{type(self).__name__} must define an 'image_ref' fixture: an image present on the backend")

    @pytest.fixture
    def spec(self, unique_name: str, image_ref: str, driver_context: DriverContext) -> ContainerSpec:
        return ContainerSpec(key="app", name=unique_name, replica=1, image_key=None, image_ref=image_ref,
                             command=self.command, stop_grace_period=1, init=True)

    def invalid(self, spec: ContainerSpec) -> ContainerSpec | None:
        """``spec`` with a config the backend refuses (expects ``PermanentError``); None skips."""
        return dataclasses.replace(spec, image_ref=f"{spec.name}-no-such-image:contract")

    # -- the contract ----------------------------------------------------------------------------

    def test_create_then_observe_shows_it_owned_hashed_and_not_running(self, harness: ContractHarness,
                                                                      desired: ContainerSpec) -> None:
        harness.create(desired)
        assert desired.name in harness.observe(), "observe must list what the stack owns by its labels"
        live = harness.observe_one(desired)
        assert live.owned and live.id, "an owned container must be reported with owned=True and an id"
        assert live.labels.get(STACK_LABEL) == harness.stack, "observe must report the stack label"
        assert live.config_hash == desired.config_hash, "observe must report the config hash it was created with"
        lost = {k for k, v in harness.labels(desired).items() if live.labels.get(k) != v}
        assert not lost, f"observe must report every label given to create; lost or changed: {sorted(lost)}"
        assert live.state != "running", "create must not start the container"
        assert live.image_id, "observe must report the image a container runs (image_id)"

    def test_start_then_wait_started_shows_it_running(self, harness: ContractHarness, desired: ContainerSpec) -> None:
        harness.create(desired)
        harness.driver.start(desired.name)
        harness.driver.wait(desired.name, "started", timeout=self.timeout)
        assert harness.observe_one(desired).state == "running", "a started container must be observed running"
        harness.driver.start(desired.name)  # starting a running container is not an error

    def test_observe_lists_only_its_own_stack(self, harness: ContractHarness, desired: ContainerSpec) -> None:
        harness.create(desired)
        assert desired.name not in harness.observe(stack=harness.stack + "-other")

    def test_create_twice_leaves_one_container(self, harness: ContractHarness, desired: ContainerSpec) -> None:
        harness.create(desired)
        try:
            harness.create(desired)
        except DriverError:
            pass
        assert list(harness.observe([desired])) == [desired.name]

    def test_delete_a_running_container_then_it_is_gone(self, harness: ContractHarness,
                                                        desired: ContainerSpec) -> None:
        harness.create(desired)
        harness.driver.start(desired.name)
        live = harness.observe_one(desired)
        harness.driver.delete(dataclasses.replace(live, state="running"))
        assert desired.name not in harness.observe([desired]), "a deleted container must not be reported"
        harness.driver.delete(live)  # what is gone: quiet
        harness.driver.delete(LiveObject(kind=Kind.CONTAINER, name=desired.name, id=desired.name))

    def test_unowned_container_with_a_wanted_name_is_reported_not_owned(self, harness: ContractHarness,
                                                                       desired: ContainerSpec) -> None:
        harness.create(desired, labels={})
        assert desired.name not in harness.observe(), "a container without the stack's label is not the stack's"
        assert not harness.observe_one(desired).owned

    def test_invalid_config_is_a_permanent_error(self, harness: ContractHarness, desired: ContainerSpec) -> None:
        bad = self.invalid(desired)
        if bad is None:
            pytest.skip("invalid(spec) returned None")
        assert_maps_errors(lambda: harness.create(with_hash(bad)), PermanentError)
