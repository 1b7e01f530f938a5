"""Image automation in the daemon: newer versions committed to git, failed ones quarantined and reverted.

Why git and not the engine: the source stays the single truth. When a
policy (``images.<key>.update``) allows a newer version, the daemon commits
the new reference to the stack's source, editing only the text of the tag at
the file:line:col the loader recorded (``reconciler.daemon.writeback``), and
the loop applies that commit like any other, so ``history`` names the commit
that did it. Only git sources with a ``write:`` block are automated.

When: each image is checked every ``interval`` of its policy (one registry
request when nothing changed), at once when the registry's own push
notification names its repository (``pushed``), and its stack's spec is read
as the loop last loaded it. A stack held at an older revision (``reconcile
rollback``) is left alone until released.

Quarantine: when a pass rolls back a container of an image this automation
moved (its new version failed the health gate), that version is recorded in
the state database for the stack and never proposed again until a person
releases it (``reconcile images release``); the commit that brought it is
reverted (on the tracked ref: a failed rollout is not left waiting for a
review), or, if it cannot be, the newest allowed version that is not
quarantined is written. Plugins are told (``reconciler_image_event``).

Everything runs on one thread (``images``), so a thousand stacks add one
thread; no exception ends it.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import ReconcilerError, RolledBack
from ..following import unexpected
from ..imagepolicy import current_tag
from ..imageupdates import ImageCheck, check_images, commit_message, describe_policy, repository_of, \
    spec_file_edit, updatable
from ..model import ImageEvent, ImageEventKind, Kind
from ..plugins import PluginError, call_hook
from ..spec.textedit import EditRefused
from .registryevents import RegistryPush
from .writeback import FileEdit, GitWriter, branch_name

__all__ = ["ImageAutomation"]

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between looks at what is due, at most


@dataclass(frozen=True)
class _Written:
    """A version this automation committed for one stack's image."""

    commit: str
    check: ImageCheck
    branch: str | None


class ImageAutomation:
    """Checks the images of the daemon's writable git sources and commits what their policies allow.

    ``daemon`` is the runner's ``Daemon`` and each worker one of its ``StackWorker`` s; they are typed ``Any``
    here because the runner imports this module (naming them would be an import circle).
    """

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        state_dir = Path(daemon.config.state_dir)
        self.writers = {s.name: GitWriter(s, state_dir) for s in daemon.config.sources if s.git and s.write}
        self._due: dict[tuple[str, str], float] = {}  # (worker id, image key) → when it is checked next (monotonic)
        self._written: dict[tuple[str, str], _Written] = {}
        self._failed: list[tuple[Any, str, str, str]] = []  # (worker, image key, version, why) to quarantine
        self._wake = threading.Condition()

    @property
    def enabled(self) -> bool:
        return bool(self.writers)

    # -- told by other threads -------------------------------------------------------------------

    def pushed(self, pushes: Iterable[RegistryPush]) -> int:
        """The registry says these were pushed: check the images of those repositories now. How many match."""
        named = {(p.host, p.repository) for p in pushes}
        matched = 0
        with self._wake:
            for worker, spec in self._images():
                host, repository = repository_of(spec.ref)
                if (host, repository) in named:
                    self._due[(worker.id, spec.key)] = 0.0
                    matched += 1
            self._wake.notify()
        return matched

    def passed(self, worker: Any, result: Any) -> None:
        """After each pass: a container of an updated image put back by its rollout quarantines that version."""
        if worker.source.name not in self.writers or result.report is None or worker.loop is None:
            return
        desired = worker.loop.desired
        if desired is None:
            return
        for outcome in result.report.outcomes:
            if outcome.change.kind is not Kind.CONTAINER or not isinstance(outcome.exception, RolledBack):
                continue
            container = desired.containers.get(outcome.change.name)
            spec = desired.images.get(container.image_key) if container and container.image_key else None
            if spec is None or spec.update is None:
                continue
            with self._wake:
                self._failed.append((worker, spec.key, current_tag(spec.ref), outcome.error))
                self._wake.notify()

    # -- the thread ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Check what is due, quarantine what failed, until ``stop``; one thread, never ended by an exception."""
        while not stop.is_set():
            try:
                self._round()
            except Exception as exc:  # reported and counted; the next round tries again
                unexpected(exc, self.daemon.metrics.worker_error)
            with self._wake:
                if not self._failed:
                    self._wake.wait(timeout=self._sleep())
        with self._wake:
            self._wake.notify_all()

    def _sleep(self) -> float:
        now = time.monotonic()
        return min([TICK] + [max(at - now, 0.0) for at in self._due.values()])

    def _round(self) -> None:
        with self._wake:
            failed, self._failed = self._failed, []
        for worker, key, version, why in failed:
            self._guarded(worker, lambda w=worker, k=key, v=version, y=why: self._quarantine(w, k, v, y))
        now = time.monotonic()
        due: dict[str, tuple[Any, set[str]]] = {}
        with self._wake:
            for worker, spec in self._images():
                at = self._due.setdefault((worker.id, spec.key), now)
                if at <= now:
                    due.setdefault(worker.id, (worker, set()))[1].add(spec.key)
                    self._due[(worker.id, spec.key)] = now + spec.update.interval
        for worker, keys in due.values():
            self._guarded(worker, lambda w=worker, k=keys: self._check(w, k))

    def _images(self):
        """(worker, image spec) of every automated image, as each stack's loop last loaded it."""
        for worker in self.daemon.workers:
            if worker.source.name in self.writers and not worker.held and worker.loop and worker.loop.desired:
                for spec in updatable(worker.loop.desired):
                    yield worker, spec

    def _guarded(self, worker: Any, work) -> None:
        thread = threading.current_thread()
        idle, thread.name = thread.name, f"images-{worker.id}"
        try:
            work()
        except ReconcilerError as exc:
            log.warning("images of %s: %s", worker.id, exc)
        except Exception as exc:
            unexpected(exc, self.daemon.metrics.worker_error)
        finally:
            thread.name = idle

    # -- the work --------------------------------------------------------------------------------

    def _checks(self, worker: Any, keys: set[str]) -> list[ImageCheck]:
        """The images ``keys`` of the worker's stack, as its loop last loaded it, checked with its quarantines."""
        desired, reconciler = worker.loop.desired, self.daemon.reconciler
        return check_images(desired, reconciler.drivers(desired.stack),
                            quarantined=reconciler.state.quarantined(desired.stack), only=keys)

    def _check(self, worker: Any, keys: set[str]) -> None:
        for check in self._checks(worker, keys):
            if check.error:
                log.warning("image %s of stack %s not checked: %s", check.key, check.stack, check.error)
            elif check.outdated:
                written = self._written.get((worker.id, check.key))
                if written is None or written.check.new_ref != check.new_ref:
                    self._write(worker, check)

    def _write(self, worker: Any, check: ImageCheck, *, reason: str = "", tracked: bool = False) -> str:
        """Commit ``check.new_ref`` in place of ``check.ref``; the commit's id ("" when there was nothing to do)."""
        source = worker.source
        template = source.write.branch if not tracked else None
        branch = branch_name(template, stack=check.stack, image=check.key, version=check.new_tag) if template else None
        commit = self.writers[source.name].commit(lambda root: self._edits(worker, check, root),
                                                  commit_message(check, reason=reason), branch=branch)
        if not commit:
            return ""
        self._written[(worker.id, check.key)] = _Written(commit, check, branch)
        log.warning("image %s of stack %s: %s → %s, committed %s%s", check.key, check.stack, check.ref,
                    check.new_ref, commit[:12], f" to branch {branch}" if branch else "")
        self._tell(ImageEvent(ImageEventKind.UPDATED, check.stack, check.key, check.ref, check.new_ref,
                              version=check.new_tag, policy=describe_policy(check.policy), commit=commit,
                              branch=branch or "", reason=reason))
        if branch is None:
            self.daemon.fetch([source.name])  # the loop applies it now, not at the next poll
        return commit

    def _edits(self, worker: Any, check: ImageCheck, root: Path) -> list[FileEdit]:
        """Where the reference is written in the clone at ``root`` now (it may have moved since the check)."""
        where = worker.checkout.path(worker.path, root)
        if where is None or not where.exists():
            raise EditRefused(f"{worker.path} is not in the source any more")
        spec = self.daemon.read_spec(worker, where, None, "").images.get(check.key)
        if spec is None or spec.ref == check.new_ref:
            return []  # gone, or written already (by us before a restart, or by a person)
        if spec.ref != check.ref:
            raise EditRefused(f"image {check.key} of {worker.path} names {spec.ref} now, not {check.ref}: "
                              "checked again at its next interval")
        at = spec_file_edit(spec, root)
        if at is None:
            raise EditRefused(f"the reference of image {check.key} is not written in a file of the repository")
        path, line, col = at
        return [FileEdit(path, line, col, check.ref, check.new_ref)]

    def _quarantine(self, worker: Any, key: str, version: str, why: str) -> None:
        stack = worker.stack
        if not self.daemon.reconciler.state.quarantine(stack, key, version, why):
            return
        log.warning("image %s of stack %s: version %s failed its rollout and is quarantined: %s", key, stack,
                    version, why)
        reason = f"quarantine: {key} {version} failed its rollout in stack {stack} and was rolled back: {why}"
        written = self._written.get((worker.id, key))
        revert = ""
        if written is not None and written.check.new_tag == version:
            try:
                revert = self.writers[worker.source.name].revert(written.commit, f"Revert image {key} {version} "
                                                                 f"in stack {stack}\n\n{reason}\n")
            except ReconcilerError as exc:
                log.warning("image %s of stack %s: reverting %s failed (%s); writing the newest allowed version "
                            "instead", key, stack, written.commit[:12], exc)
        if not revert:
            for check in self._checks(worker, {key}):
                if check.outdated:
                    revert = self._write(worker, check, reason=reason, tracked=True)
        else:
            self.daemon.fetch([worker.source.name])
        before = written.check.new_ref if written else ""
        self._tell(ImageEvent(ImageEventKind.QUARANTINED, stack, key, before, version=version, commit=revert,
                              reason=why))

    def _tell(self, event: ImageEvent) -> None:
        try:
            call_hook(self.daemon.reconciler.pm, "reconciler_image_event", event=event)
        except PluginError as exc:
            log.warning("%s", exc)
