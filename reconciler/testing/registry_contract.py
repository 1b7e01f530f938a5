"""The registry driver contract as tests: pull, build and push where supported, content changes, errors.

A registry driver makes images present; the planner trusts what its
``observe`` reports. So the kit checks that a pulled image is reported under
its reference with an id, that pulling again changes nothing, that a missing
reference is a ``PermanentError``, that a build carries the labels it is given,
and (when the test can change what a reference holds at its source) that
``LiveObject.content`` says so. A driver that lists tags (``list_tags``, an
optional capability: one that answers None passes) must list a pulled image's
tag, say what it names (``tag_details``: a ``sha256:`` digest, an aware or no
``created``) and refuse a missing repository with a ``PermanentError``. Subclass ``RegistryDriverContract`` as
``Test...`` and give it the fixtures its docstring lists.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from ..drivers import DriverContext, RegistryDriver, TagDetails
from ..errors import PermanentError, TemporaryError
from ..labels import BUILD_HASH
from ..model import ImageSpec, Kind
from .contract import ContractHarness, _DriverContract, assert_maps_errors, with_hash

__all__ = ["RegistryDriverContract"]


class RegistryDriverContract(_DriverContract):
    """The contract of a registry (image) driver.

    Fixtures a subclass defines:

    - ``driver`` (required): the driver under test, from ``driver_context``;
    - ``spec`` (required): an ``ImageSpec`` whose reference the driver can pull;
    - ``missing_spec``: one whose reference does not exist at its source (expects ``PermanentError``, from a pull
      and, for a driver that lists tags, from ``list_tags``); None skips;
    - ``build_spec``: an ``ImageSpec`` with ``build_context`` and a unique ``ref`` to build; None skips
      (a driver that cannot build must then raise ``PermanentError`` from ``build``);
    - ``push_spec``: an image to build and push; None skips;
    - ``change_source``: a function that makes ``spec.ref`` hold other content at its source (a push by
      someone else); None skips the content-changed check;
    - ``unreachable_driver``: the driver pointed at a backend that does not answer (expects ``TemporaryError``).

    ``remove_local(ref)`` (a method) removes a local image after the test; the default does nothing,
    as the core never deletes images.
    """

    kind = Kind.IMAGE
    role = RegistryDriver

    @pytest.fixture
    def spec(self) -> ImageSpec:
        pytest.fail(f"{type(self).__name__} must define a 'spec' fixture: an ImageSpec the driver can pull")

    @pytest.fixture
    def missing_spec(self) -> ImageSpec | None:
        return None

    @pytest.fixture
    def build_spec(self) -> ImageSpec | None:
        return None

    @pytest.fixture
    def push_spec(self) -> ImageSpec | None:
        return None

    @pytest.fixture
    def change_source(self) -> Callable[[ImageSpec], None] | None:
        return None

    def remove_local(self, ref: str) -> None:
        """Remove the local image ``ref`` after a test (default: leave it; images are shared caches)."""

    # -- machinery -------------------------------------------------------------------------------

    @pytest.fixture
    def harness(self, driver: RegistryDriver, driver_context: DriverContext):
        harness = ContractHarness(driver, driver_context, self.kind)
        yield harness
        for ref in sorted(harness.names):
            try:
                self.remove_local(ref)
            except Exception:  # clean-up must not hide the test's own verdict
                pass

    def _pull(self, harness: ContractHarness, spec: ImageSpec) -> Any:
        harness.names.add(spec.ref)
        harness.driver.pull(spec)
        return harness.observe_one(spec)

    # -- the contract ----------------------------------------------------------------------------

    def test_pull_then_observe_reports_it_by_ref(self, harness: ContractHarness, spec: ImageSpec) -> None:
        live = self._pull(harness, with_hash(spec))
        assert live.kind is Kind.IMAGE and live.name == spec.ref, "observe must name an image by its reference"
        assert live.id and live.image_id, "a present image needs an id and image_id (containers are compared by it)"

    def test_pulling_again_changes_nothing_and_observing_writes_nothing(self, harness: ContractHarness,
                                                                       spec: ImageSpec) -> None:
        first = self._pull(harness, with_hash(spec))
        self._pull(harness, with_hash(spec))
        writes = harness.context.stats["write"]
        again = harness.observe_one(with_hash(spec))
        assert again.image_id == first.image_id, "pulling the same content again must give the same image id"
        assert harness.context.stats["write"] == writes, "observe must not write to the backend"
        if again.content is not None:
            assert not again.content.changed, "right after a pull, the content cannot have changed"

    def test_an_image_not_present_is_not_reported(self, harness: ContractHarness,
                                                  missing_spec: ImageSpec | None) -> None:
        if missing_spec is None:
            pytest.skip("define the missing_spec fixture to check missing images")
        assert missing_spec.ref not in harness.observe([with_hash(missing_spec)]), \
            "observe must not report an image that is not present"

    def test_pulling_a_missing_image_is_a_permanent_error(self, harness: ContractHarness,
                                                          missing_spec: ImageSpec | None) -> None:
        if missing_spec is None:
            pytest.skip("define the missing_spec fixture to check that a missing image raises PermanentError")
        harness.names.add(missing_spec.ref)
        assert_maps_errors(lambda: harness.driver.pull(with_hash(missing_spec)), PermanentError)

    def test_build_carries_its_labels(self, harness: ContractHarness, build_spec: ImageSpec | None) -> None:
        if build_spec is None:
            pytest.skip("define the build_spec fixture to check builds")
        spec = with_hash(build_spec)
        harness.names.add(spec.ref)
        labels = harness.labels(spec)
        harness.driver.build(spec, labels)
        live = harness.observe_one(spec)
        assert live.labels.get(BUILD_HASH) == spec.build_hash, \
            "a built image must carry the labels it is given (the build hash tells the planner it is current)"

    def test_push_makes_it_available(self, harness: ContractHarness, push_spec: ImageSpec | None) -> None:
        if push_spec is None:
            pytest.skip("define the push_spec fixture to check pushes")
        spec = with_hash(push_spec)
        harness.names.add(spec.ref)
        harness.driver.build(spec, harness.labels(spec))
        harness.driver.push(spec)
        harness.driver.push(spec)  # pushing what the registry has is not an error

    def test_changed_content_is_reported_and_a_pull_catches_up(self, harness: ContractHarness, spec: ImageSpec,
                                                               change_source) -> None:
        if change_source is None:
            pytest.skip("define the change_source fixture to check that observe reports changed content")
        spec = with_hash(spec)
        self._pull(harness, spec)
        change_source(spec)
        live = harness.observe_one(spec)
        assert live.content is not None and live.content.changed, \
            "after the source changed, observe must report LiveObject.content with changed=True"
        assert live.content.source, "content.source must say what the source holds now"
        after = self._pull(harness, spec)
        assert after.content is not None and not after.content.changed, "after a pull, content must be current"

    def test_unreachable_backend_is_a_temporary_error(self, unreachable_driver: RegistryDriver | None,
                                                      driver_context: DriverContext, spec: ImageSpec) -> None:
        if unreachable_driver is None:
            pytest.skip("define the unreachable_driver fixture to check that an absent backend raises TemporaryError")
        assert_maps_errors(lambda: unreachable_driver.observe(driver_context.stack, {spec.ref: spec}), TemporaryError)

    def test_tags_list_a_pulled_image_and_say_what_it_names(self, harness: ContractHarness, spec: ImageSpec) -> None:
        if type(harness.driver).list_tags is RegistryDriver.list_tags:
            return  # an optional capability: a driver that cannot list tags is not faulted
        spec = with_hash(spec)
        self._pull(harness, spec)
        tags = harness.driver.list_tags(spec)
        if tags is None:
            return
        tag = _tag(spec.ref)
        assert isinstance(tags, list) and tag in tags, \
            f"list_tags must list the tag of an image just pulled ({tag!r}); it gave {tags!r}"
        details = harness.driver.tag_details(spec, tag)
        if details is None:
            return
        assert isinstance(details, TagDetails) and details.tag == tag, "tag_details must return TagDetails of that tag"
        assert details.digest.startswith("sha256:"), f"TagDetails.digest must be a sha256 digest, not {details.digest!r}"
        assert details.created is None or details.created.utcoffset() is not None, \
            "TagDetails.created must be timezone-aware (UTC) or None"

    def test_listing_tags_of_a_missing_repository_is_a_permanent_error(self, harness: ContractHarness,
                                                                      missing_spec: ImageSpec | None) -> None:
        if type(harness.driver).list_tags is RegistryDriver.list_tags:
            return  # an optional capability: a driver that cannot list tags is not faulted
        if missing_spec is None:
            pytest.skip("define the missing_spec fixture to check that listing a missing repository raises PermanentError")
        try:
            answer = harness.driver.list_tags(with_hash(missing_spec))
        except PermanentError as exc:
            assert str(exc).strip(), f"{type(exc).__name__} carries no message: say what failed"
            return
        except Exception as exc:
            pytest.fail(f"listing a missing repository must raise PermanentError, not {type(exc).__name__}: {exc}")
        assert answer is None, f"listing a missing repository must raise PermanentError; it gave {answer!r}"


def _tag(ref: str) -> str:
    """The tag of a tag reference (``latest`` when it names none)."""
    last = ref.partition("@")[0].rsplit("/", 1)[-1]
    return last.rpartition(":")[2] if ":" in last else "latest"
