"""The data that flows between phases: desired state, live state, and their vocabulary.

Desired objects are built from a validated spec (``reconciler.spec.desired``); live
objects are built by drivers from what the engine reports. Both are frozen so a
phase can never change what an earlier phase computed. Everything here is plain
data: no I/O, no docker import.

This namespace is the package's public face: import from ``reconciler.model``,
never from the modules behind it, which are cut by concern and may move:

- ``kinds``: ``Kind``, with each kind's spec section and driver role;
- ``desired``: ``DesiredState`` and the image, network and volume specs;
- ``container``: ``ContainerSpec`` and its parts (env, ports, mounts, files, rollout, ...);
- ``live``: what drivers observe (``LiveObject``, ``LiveState``) and the record;
- ``events``: what the engine says changed (``EngineEvent``), as drivers stream it;
- ``imageevents``: what image automation did (``ImageEvent``), as plugins are told it;
- ``fleet``: the engines a stack runs on;
- ``buildstep``: a build's steps and the label that keeps their digests;
- ``previews``: a git source's preview rules (``PreviewRules``) and the record of each preview (``Preview``);
- ``snapshots``: a volume's snapshots (``Snapshot``, ``Restored``) and how long they are kept;
- ``updates``: an image's version policy (``images.<key>.update``), which tags it may move to.
"""
from __future__ import annotations

from .buildstep import BuildStep, cache_break, encode_steps
from .container import (
    ContainerSpec, EnvVar, FileContent, FileMount, FilesystemPolicy, HealthCheck, Mount, Port, RolloutPolicy,
)
from .desired import DesiredState, ImageSpec, NetworkSpec, VolumeSpec
from .events import EngineEvent
from .imageevents import ImageEvent, ImageEventKind
from .fleet import Fleet, Placement, Target, TLSFiles
from .kinds import Kind
from .live import Claim, Content, LiveObject, LiveState, Record
from .previews import PREVIEW_STATES, Preview, PreviewRules
from .snapshots import Restored, Snapshot, SnapshotRetention, snapshot_id
from .updates import PolicyKind, UpdatePolicy

__all__ = [
    "BuildStep",
    "Claim",
    "Content",
    "ContainerSpec",
    "DesiredState",
    "EngineEvent",
    "EnvVar",
    "FileContent",
    "Fleet",
    "FileMount",
    "FilesystemPolicy",
    "HealthCheck",
    "ImageEvent",
    "ImageEventKind",
    "ImageSpec",
    "Kind",
    "LiveObject",
    "LiveState",
    "Mount",
    "NetworkSpec",
    "Placement",
    "PolicyKind",
    "Port",
    "PREVIEW_STATES",
    "Preview",
    "PreviewRules",
    "Record",
    "Restored",
    "RolloutPolicy",
    "Snapshot",
    "SnapshotRetention",
    "Target",
    "TLSFiles",
    "UpdatePolicy",
    "VolumeSpec",
    "cache_break",
    "encode_steps",
    "snapshot_id",
]
