"""The engine's ``local`` volume driver, with its options (tmpfs, nfs, cifs, bind).

Several storage drivers of this plugin keep their volumes on the engine (the
``hostdir`` driver is one), and the core observes each driver instance on its
own and merges what they report by name. So each driver claims only the
volumes whose ``io.reconciler.driver`` label names it: two drivers never
report the same owned volume, and they share one list call per pass (a
daemon's passes share one list of all volumes: ``EngineDriver.listed``).

The engine gives volumes no id (and their ``CreatedAt`` moves whenever the
volume's root is chmod-ed), so a volume's ``LiveObject.id`` is the id the
core wrote in its ``io.reconciler.volume-id`` label, else its name.

``local`` volumes take snapshots, through the engine only (``volumesnap``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from reconciler.sdk import LiveObject, StorageDriver, VolumeSpec, fresh_read
from reconciler.sdk.docker import EngineDriver, engine_errors, owned_filter
from reconciler.sdk.labels import DRIVER, VOLUME_ID, is_owned

from .adopting import VolumeAdoption
from .volumesnap import VolumeSnapshots

__all__ = ["DockerVolumeDriver", "volume_id"]


def volume_id(volume: dict) -> str:
    """A volume's id as the core records it: the id the core gave it, else its name."""
    return (volume.get("Labels") or {}).get(VOLUME_ID) or volume["Name"]


class DockerVolumeDriver(VolumeSnapshots, VolumeAdoption, EngineDriver, StorageDriver):
    """Volumes made by the engine's ``local`` driver, with the spec's driver options; they take snapshots."""

    #: The runtime driver's stream reports every volume's creation, removal, mounts and unmounts.
    changes_reported = True

    #: The ``io.reconciler.driver`` label values this driver claims ("" = no label).
    claims: frozenset[str] = frozenset({"local", ""})

    def observe(self, stack: str, wanted: Mapping[str, VolumeSpec]) -> list[LiveObject]:
        """The stack's volumes this driver claims, plus unowned volumes under wanted names.

        One list call for the stack, shared with the plugin's other storage
        drivers; a second only for wanted names the stack does not own at all
        (not even through another driver). A daemon lists all volumes once
        per moment for every stack instead.
        """
        with engine_errors("list volumes"):
            found = self.listed(
                stack, wanted, owned=lambda: fresh_read(self.context, f"volumes:{stack}", lambda: self._volumes(
                    owned_filter(stack, self.kind))), everything=lambda: self._volumes(None),
                lookup=lambda names: self._volumes({"name": names}), name_of=lambda vol: vol["Name"])
        return [self._live_volume(vol) for vol in found.values() if self._reports(vol, stack)]

    def _volumes(self, filters: dict | None) -> list[dict]:
        return self.api.volumes(filters=filters).get("Volumes") or []

    def find_labelled(self, selectors: Sequence[str]) -> list[LiveObject]:
        """The engine volumes carrying every one of ``selectors`` (a Compose project's, for adoption)."""
        with engine_errors("list volumes"):
            found = self.api.volumes(filters={"label": list(selectors)}).get("Volumes") or []
        return [self._live_volume(vol) for vol in found if self._reports(vol, self.context.stack)]

    def _live_volume(self, vol: dict) -> LiveObject:
        return self.live(vol["Name"], volume_id(vol), vol.get("Labels"), details=self._details(vol),
                         info=self._info(vol))

    def _reports(self, vol: dict, stack: str) -> bool:
        """Whether this driver reports ``vol``: a stranger's volume, or one of the stack's that it claims."""
        labels = vol.get("Labels") or {}
        return not is_owned(labels, stack, kind=self.kind) or labels.get(DRIVER, "") in self.claims

    @staticmethod
    def _details(vol: dict) -> dict:
        """What ``LiveObject.details`` holds for an engine volume (nothing, for ``local``)."""
        return {}

    @staticmethod
    def _info(vol: dict) -> dict[str, str]:
        """What ``status`` shows for an engine volume: where the engine keeps it."""
        return {"mountpoint": vol["Mountpoint"]} if vol.get("Mountpoint") else {}

    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> str:
        """Create ``spec.name`` with the engine driver ``spec.driver`` and its options; return its id.

        The engine answers the creation of a volume that exists with that
        volume: the id returned is the one it carries.
        """
        with engine_errors(f"create volume {spec.name}"):
            volume = self.api.create_volume(spec.name, driver=spec.driver, driver_opts=dict(spec.options) or None,
                                            labels=dict(labels))
        return volume_id(volume)

    def delete(self, live: LiveObject) -> None:
        """Remove the engine volume (and so its data); one already gone is fine."""
        with engine_errors(f"remove volume {live.name}", missing_ok=True):
            self.api.remove_volume(live.name)
