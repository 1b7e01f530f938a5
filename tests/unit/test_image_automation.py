"""The daemon's image automation, told what other threads saw: a registry push names which images to check now;
a pass whose rollout put the old container back quarantines the version its image's policy moved to.

The daemon here is a stand-in holding workers whose loops have loaded a spec (pure logic: the real daemon,
registry and git are in tests/integration/test_image_automation.py)."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from reconciler.daemon.automation import ImageAutomation
from reconciler.daemon.config import GitSource, GitWrite, Source
from reconciler.daemon.registryevents import RegistryPush
from reconciler.errors import PermanentError, RolledBack
from reconciler.model import ContainerSpec, DesiredState, ImageSpec, Kind, PolicyKind, UpdatePolicy
from reconciler.plan import Action, Change
from reconciler.report import ApplyReport, Outcome, Status

REF = "127.0.0.1:5000/team/app:1.4.1"
POLICY = UpdatePolicy(kind=PolicyKind.SEMVER, semver=">=1.4 <2")


def desired() -> DesiredState:
    web = ContainerSpec(key="web", name="shop-web-1", replica=1, image_key="app", image_ref=REF)
    return DesiredState(stack="shop", images={"app": ImageSpec(key="app", ref=REF, update=POLICY),
                                              "tool": ImageSpec(key="tool", ref="127.0.0.1:5000/team/tool:1")},
                        containers={web.name: web})


def automation(tmp_path, *, write: bool = True):
    source = Source(name="repo", git=GitSource(url="file:///nowhere.git"), paths=("app",),
                    write=GitWrite() if write else None)
    worker = SimpleNamespace(id="repo:app", source=source, held=False, stack="shop",
                             loop=SimpleNamespace(desired=desired()))
    daemon = SimpleNamespace(config=SimpleNamespace(sources=(source,), state_dir=str(tmp_path)), workers=[worker])
    return ImageAutomation(daemon), worker


def push(host: str, repository: str) -> RegistryPush:
    return RegistryPush(host, repository, "1.4.2", "sha256:" + "0" * 64, datetime.now(timezone.utc))


def test_a_push_makes_only_the_images_of_its_repository_due_now(tmp_path):
    images, worker = automation(tmp_path)
    assert images.enabled
    assert images.pushed([push("127.0.0.1:5000", "team/app")]) == 1
    assert images._due == {(worker.id, "app"): 0.0}  # "tool" has no policy: never due
    assert images.pushed([push("127.0.0.1:5001", "team/app"), push("127.0.0.1:5000", "team/other")]) == 0


def test_a_source_without_write_is_not_automated(tmp_path):
    images, _ = automation(tmp_path, write=False)
    assert not images.enabled and images.pushed([push("127.0.0.1:5000", "team/app")]) == 0


def _pass(error: BaseException | None) -> SimpleNamespace:
    change = Change(Action.REPLACE, Kind.CONTAINER, "shop-web-1", "web")
    outcome = Outcome(change, Status.FAILED if error else Status.OK, str(error or ""), exception=error)
    return SimpleNamespace(report=ApplyReport(stack="shop", outcomes=(outcome,), seconds=1.0))


def test_a_rolled_back_container_quarantines_the_version_its_image_names(tmp_path):
    images, worker = automation(tmp_path)
    images.passed(worker, _pass(PermanentError("start container shop-web-1: exited with code 3")))
    images.passed(worker, _pass(None))
    assert images._failed == []  # a failure that put nothing back, and a good pass, quarantine nothing
    images.passed(worker, _pass(RolledBack("the new container failed, so the old one was put back: exit 3")))
    assert [(w.id, key, version) for w, key, version, _ in images._failed] == [(worker.id, "app", "1.4.1")]
    assert "put back" in images._failed[0][3]
