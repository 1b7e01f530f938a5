"""Watching the files a stack is made from, with watchdog: any change triggers a pass.

Editors save in several ways (write in place, write a temporary file and
rename it over the original, delete and create): every event's source and
destination path is checked against what the last loaded spec depends on,
so all of them count. The loop's debounce turns the burst into one pass.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Collection

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .model import DesiredState
from .paths import inside

__all__ = ["SpecWatcher", "is_relevant", "watched_paths"]


class SpecWatcher(FileSystemEventHandler):
    """Calls ``changed()`` whenever a file the desired state depends on changes.

    ``follow(desired)`` (re)points it at what a newly loaded spec depends on;
    until a spec loads, the spec files' directories are watched.
    """

    def __init__(self, spec_paths: list[str], changed: Callable[[], None]) -> None:
        self._changed = changed
        self._observer = Observer()
        self._watched: dict[str, object] = {}
        self._files: set[str] = set()
        self._trees: set[str] = set()
        for given in spec_paths:
            path = Path(given).resolve()
            self._trees.add(str(path)) if path.is_dir() else self._files.add(str(path))
        self._watch_dirs()

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def follow(self, desired: DesiredState) -> None:
        files, trees = watched_paths(desired)
        self._files |= files
        self._trees |= trees
        self._watch_dirs()

    def _watch_dirs(self) -> None:
        wanted = {str(Path(f).parent): False for f in self._files}
        wanted.update({tree: True for tree in self._trees if Path(tree).is_dir()})
        for directory, recursive in wanted.items():
            if directory not in self._watched and Path(directory).is_dir():
                self._watched[directory] = self._observer.schedule(self, directory, recursive=recursive)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads change nothing
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(p and is_relevant(str(Path(p).resolve()), self._files, self._trees) for p in paths):
            self._changed()


def watched_paths(desired: DesiredState) -> tuple[set[str], set[str]]:
    """(files, trees) a pass depends on: spec files, their ``.env``, env files and archives; build contexts."""
    files = {str(Path(s).resolve()) for s in desired.sources}
    files |= {str(Path(s).resolve().parent / ".env") for s in desired.sources}
    files |= set(desired.inputs)
    trees = {spec.build_context for spec in desired.images.values() if spec.build_context}
    return files, trees


def is_relevant(path: str, files: Collection[str], trees: Collection[str]) -> bool:
    """Whether a changed ``path`` is one a pass depends on."""
    return path in files or any(inside(path, tree) for tree in trees)
