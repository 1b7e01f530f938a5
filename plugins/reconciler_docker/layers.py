"""An image's layers from the engine's history, and the labelling that keeps a build's output honest.

The classic builder turns each label of the build API's ``labels`` parameter
into a ``LABEL`` step of its own: a two-line Dockerfile printed "Step 2/7".
So a build runs as the user wrote it (no labels: "Step 1/2", "Step 2/2"), and
a second build, ``FROM`` that image with only the ``labels`` parameter, puts
the reconciler's labels on it without a word in the output. Its ``LABEL``
steps add no layer; ``history_items`` leaves them out.

``history_items`` maps ``docker history`` onto ``RegistryDriver.layers``'
items; the build's output says which steps the cache reused, kept in
``BUILD_CACHE`` so that status can tell reused layers from made ones.
"""
from __future__ import annotations

import hashlib
import io
import re
import tarfile
from typing import Iterable, Mapping

from reconciler.sdk.labels import BUILD_CACHE, PREFIX

__all__ = ["CacheSteps", "history_items", "label_context"]

_STEP = re.compile(r"^Step \d+/\d+ : (\S+)")
_OURS = re.compile(r"LABEL " + re.escape(PREFIX))
_CACHE = re.compile(r"LABEL " + re.escape(BUILD_CACHE) + r"=\W?([cm]*)")
CREATED_BY = 80  # characters of a step kept in a layer item


class CacheSteps:
    """Reads a build's ``stream`` lines: which steps of its final stage the cache reused ("c") or made ("m")."""

    def __init__(self) -> None:
        self.flags: list[str] = []
        self._open = False

    def line(self, text: str) -> None:
        found = _STEP.match(text)
        if found:
            if found.group(1).upper() == "FROM":
                self.flags, self._open = [], False  # a new stage: only the final one's layers are the image's
            else:
                self.flags.append("m")
                self._open = True
        elif self._open and text.strip() == "---> Using cache":
            self.flags[-1] = "c"

    @property
    def label(self) -> str:
        return "".join(self.flags)


def label_context(image_id: str) -> io.BytesIO:
    """A build context of one Dockerfile, ``FROM image_id``: built with the ``labels`` parameter only."""
    dockerfile = f"FROM {image_id}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    return buffer


def history_items(history: Iterable[Mapping]) -> list[dict]:
    """``RegistryDriver.layers`` items from the engine's history (newest first), our own LABEL steps left out.

    ``id`` is the short id of the step's image, or, where the engine has none
    (the layers of a pulled image), a short digest of the step and everything
    below it: two images share a layer when they share its id. ``reused`` is
    known for the steps the image's last build made (``BUILD_CACHE``, read from
    the LABEL step that set it): True when the cache gave the layer, False
    when the build made it; None below.
    """
    history = list(history)
    cache = next((found.group(1) for h in history if (found := _CACHE.search(str(h.get("CreatedBy") or "")))), "")
    entries = [h for h in history if not _OURS.search(str(h.get("CreatedBy") or ""))]
    chain, ids = hashlib.sha256(), []
    for entry in reversed(entries):  # oldest first: an id without the engine's names the whole chain below
        chain.update(f"{entry.get('CreatedBy')}\0{entry.get('Size')}\0{entry.get('Created')}\0".encode())
        known = str(entry.get("Id") or "")
        ids.append(known.removeprefix("sha256:")[:12] if known.startswith("sha256:") else chain.hexdigest()[:12])
    ids.reverse()
    flags = list(reversed(cache))  # newest first, as the history
    return [{
        "id": ids[index],
        "size": int(entry.get("Size") or 0),
        "created_by": _step(str(entry.get("CreatedBy") or "")),
        "reused": (flags[index] == "c") if index < len(flags) else None,
    } for index, entry in enumerate(entries)]


def _step(created_by: str) -> str:
    """The Dockerfile step as people wrote it: the classic builder's ``/bin/sh -c #(nop)`` prefix dropped."""
    text = re.sub(r"^/bin/sh -c #\(nop\)\s+", "", created_by.strip())
    text = re.sub(r"^/bin/sh -c ", "RUN ", text)
    text = re.sub(r"\b(dir|file|multi):([0-9a-f]{12})[0-9a-f]{52}\b", r"\1:\2", text)  # the engine's content digests
    text = " ".join(text.split())
    return text if len(text) <= CREATED_BY else text[: CREATED_BY - 1] + "…"
