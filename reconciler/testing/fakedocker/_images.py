"""The fake engine's image verbs (docker-py's ``ImageApiMixin`` and ``BuildApiMixin``), and a registry.

No registry is asked: ``publish`` puts an image where ``pull`` finds it, and
``push`` puts one there. A build makes an image whose id follows its recipe
(context, Dockerfile, build args, target, labels), so an unchanged build gives
the same id. A load reads a ``docker save`` archive's ``manifest.json``.
Progress streams are answered as docker-py gives them (decoded events, JSON
lines, or the whole text when not streamed).
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
import time
from typing import Any

from ._engine import Engine, Refused, full_ref, matches, now

__all__ = ["Images"]


class Images(Engine):
    """``images``, ``pull``, ``push``, ``build``, ``tag``, ``load_image``... and what is on the engine already."""

    def images(self, name=None, quiet=False, all=False, filters=None):
        with self._request("images", name=name, filters=filters):
            out = [{"Id": i["Id"], "ParentId": "", "RepoTags": list(i["RepoTags"]),
                    "RepoDigests": list(i["RepoDigests"]), "Created": int(time.time()), "Size": 0,
                    "SharedSize": -1, "Labels": copy.deepcopy(i["Config"]["Labels"]), "Containers": -1}
                   for i in self._images.values()
                   if matches(filters, labels=i["Config"]["Labels"])
                   and (name is None or any(t == full_ref(name) or t.rpartition(":")[0] == name
                                            for t in i["RepoTags"]))]
            return [i["Id"] for i in out] if quiet else out

    def inspect_image(self, image):
        with self._request("inspect_image", image):
            return copy.deepcopy(self._image(image))

    def pull(self, repository, tag=None, stream=False, auth_config=None, decode=False, platform=None,
             all_tags=False):
        """Pull what ``publish`` put in the registry; 404 for what it did not."""
        ref = repository if "@" in repository else f"{repository}:{tag or 'latest'}"
        with self._request("pull", repository, tag=tag, auth_config=auth_config) as broken:
            events = [{"status": f"Pulling from {repository.partition('@')[0]}", "id": tag or "latest"}]
            if broken:
                return _stream(events, broken, stream, decode)
            digest_of = ref.partition("@")[2]
            held = self._registry.get(ref) or next((v for v in self._registry.values() if v[1] == digest_of), None)
            if held is None:
                raise Refused(404, f"manifest for {ref} not found: manifest unknown: manifest unknown")
            image_id, digest, labels = held
            fresh = image_id not in self._images
            image = self._image_record(image_id, labels)
            if "@" not in ref:
                self._tag_image(image_id, ref)
            repo_digest = f"{repository.partition('@')[0]}@{digest}"
            if repo_digest not in image["RepoDigests"]:
                image["RepoDigests"].append(repo_digest)
            self._emit("image", "pull", ref, image)
            done = "Downloaded newer image" if fresh else "Image is up to date"
            return _stream(events + [{"status": f"Digest: {digest}"}, {"status": f"Status: {done} for {ref}"}],
                           None, stream, decode)

    def push(self, repository, tag=None, stream=False, auth_config=None, decode=False):
        ref = f"{repository}:{tag or 'latest'}"
        with self._request("push", repository, tag=tag, auth_config=auth_config) as broken:
            events = [{"status": f"The push refers to repository [{repository}]"}]
            image = self._find_image(ref)
            if broken or image is None:
                return _stream(events, broken or f"An image does not exist locally with the tag: {repository}",
                               stream, decode)
            digest = self.publish(ref, id=image["Id"], labels=image["Config"]["Labels"])
            if f"{repository}@{digest}" not in image["RepoDigests"]:
                image["RepoDigests"].append(f"{repository}@{digest}")
            self._emit("image", "push", ref, image)
            return _stream(events + [{"status": f"{tag or 'latest'}: digest: {digest} size: 528"}], None,
                           stream, decode)

    def build(self, path=None, tag=None, quiet=False, fileobj=None, nocache=False, rm=False, timeout=None,
              custom_context=False, encoding=None, pull=False, forcerm=False, dockerfile=None,
              container_limits=None, decode=False, buildargs=None, gzip=False, shmsize=None, labels=None,
              cache_from=None, target=None, network_mode=None, squash=None, extra_hosts=None, platform=None,
              isolation=None, use_config_proxy=True):
        """An image whose id follows the context path, Dockerfile, build args, target and labels."""
        if path is None and fileobj is None:
            raise TypeError("Either path or fileobj needs to be provided.")
        with self._request("build", path=path, tag=tag, buildargs=buildargs, labels=labels) as broken:
            events = [{"stream": "Step 1/1 : FROM scratch\n"}]
            if broken:
                return _stream(events, broken, True, decode)
            recipe = json.dumps([path, dockerfile, buildargs, target, labels], sort_keys=True, default=str)
            image_id = self._image_record("sha256:" + hashlib.sha256(recipe.encode()).hexdigest(), labels)["Id"]
            events += [{"aux": {"ID": image_id}}, {"stream": f"Successfully built {image_id[7:19]}\n"}]
            if tag:
                self._tag_image(image_id, tag)
                events.append({"stream": f"Successfully tagged {full_ref(tag)}\n"})
            return _stream(events, None, True, decode)

    def tag(self, image, repository, tag=None, force=False):
        with self._request("tag", image, repository, tag=tag):
            self._tag_image(self._image(image)["Id"], f"{repository}:{tag or 'latest'}")
            return True

    def load_image(self, data, quiet=None):
        """Load a ``docker save`` archive (its ``manifest.json`` names each image's config and tags)."""
        with self._request("load_image") as broken:
            if broken:
                return _stream([], broken, True, True)
            try:
                with tarfile.open(fileobj=io.BytesIO(data) if isinstance(data, bytes) else data) as archive:
                    manifest = json.load(archive.extractfile("manifest.json"))
            except (tarfile.TarError, KeyError, ValueError, TypeError) as exc:
                raise Refused(500, f"failed to load the image archive: {exc}") from None
            events = []
            for entry in manifest:
                image_id = "sha256:" + entry["Config"].rpartition("/")[2].removesuffix(".json")
                self._image_record(image_id, None)
                for ref in entry.get("RepoTags") or []:
                    self._tag_image(image_id, ref)
                    events.append({"stream": f"Loaded image: {ref}\n"})
                if not entry.get("RepoTags"):
                    events.append({"stream": f"Loaded image ID: {image_id}\n"})
            return iter(events)

    def remove_image(self, image, force=False, noprune=False):
        with self._request("remove_image", image, force=force):
            found = self._image(image)
            ref = full_ref(image)
            if ref in found["RepoTags"] and len(found["RepoTags"]) > 1:
                found["RepoTags"].remove(ref)
                return [{"Untagged": ref}]
            users = [c["Id"] for c in self._containers.values() if c["Image"] == found["Id"]]
            if users and not force:
                raise Refused(409, f"conflict: unable to remove repository reference {image!r} (must force) - "
                                   f"container {users[0][:12]} is using its referenced image {found['Id'][7:19]}")
            del self._images[found["Id"]]
            return [{"Untagged": t} for t in found["RepoTags"]] + [{"Deleted": found["Id"]}]

    # -- what the engine and the registry hold already, for tests ----------------------------------
    def add_image(self, ref: str, *, id: str | None = None, digest: str | None = None,
                  labels: dict | None = None) -> str:
        """An image on the engine, tagged ``ref`` (and pulled as ``digest``, if given); its id."""
        with self._lock:
            image = self._image_record(id, labels)
            self._tag_image(image["Id"], ref)
            if digest:
                image["RepoDigests"].append(f"{full_ref(ref).rpartition(':')[0]}@{digest}")
            return image["Id"]

    def publish(self, ref: str, *, id: str | None = None, digest: str | None = None,
                labels: dict | None = None) -> str:
        """An image a registry holds under ``ref``, where ``pull`` finds it; its digest."""
        image_id = id or self._new_id("image", "sha256:")
        digest = digest or "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()
        self._registry[full_ref(ref)] = (image_id, digest, labels)
        return digest

    # -- inside -------------------------------------------------------------------------------
    def _image_record(self, image_id: str | None, labels: dict | None) -> dict:
        image_id = image_id or self._new_id("image", "sha256:")
        return self._images.setdefault(image_id, {
            "Id": image_id, "RepoTags": [], "RepoDigests": [], "Created": now(), "Size": 0, "Os": "linux",
            "Architecture": "amd64", "Config": {"Labels": dict(labels) if labels else None, "Env": [], "Cmd": None}})

    def _tag_image(self, image_id: str, ref: str) -> None:
        """Tag the image ``ref``, taking the tag from the image that had it."""
        ref = full_ref(ref)
        for image in self._images.values():
            if ref in image["RepoTags"]:
                image["RepoTags"].remove(ref)
        self._images[image_id]["RepoTags"].append(ref)
        self._emit("image", "tag", image_id, self._images[image_id], name=ref)


def _stream(events: list[dict], error: str | None, stream: bool, decode: bool) -> Any:
    """A progress stream as docker-py answers it: decoded events, JSON lines, or (not streamed) the text."""
    if error:
        events = events + [{"errorDetail": {"message": error}, "error": error}]
    if stream and decode:
        return iter(events)
    lines = [json.dumps(event).encode() + b"\r\n" for event in events]
    return iter(lines) if stream else b"".join(lines).decode()
