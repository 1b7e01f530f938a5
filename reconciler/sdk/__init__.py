"""The plugin SDK: everything a plugin may import from reconciler, in one namespace.

Why it exists: plugins (the built-in ones in ``plugins/`` and yours) import
only from here, so every other module of reconciler can move without notice
before 1.0. The names below are re-exported from the core's own modules;
``__all__`` lists them all, as pluggy's ``__init__`` does. Two submodules
complete it:

- ``reconciler.sdk.labels``: the names of the labels the core puts on objects,
  and the ownership test (``from reconciler.sdk.labels import STACK, is_owned``);
- ``reconciler.sdk.docker``: the Docker engine kit, for drivers whose objects
  live on a Docker engine (it imports docker-py, so this module does not).

Tests import ``reconciler.testing`` (the contract kit, ``MemoryEngine``) and
``reconciler.testing.fakedocker`` as well. The plugin API this SDK belongs to is
``API_VERSION``; a plugin declares ``RECONCILER_API_VERSION = 2``. See
docs/plugins.md, "The SDK: what a plugin may import".
"""
from __future__ import annotations

from .. import __version__

from ..addresses import DEFAULT_ADDRESS_POOLS, AddressPool, allocate_subnet
from ..drivers import (
    Check,
    DriverContext,
    Factory,
    NetworkDriver,
    ObjectDriver,
    PluginDrivers,
    RegistryDriver,
    RuntimeDriver,
    StorageDriver,
    TagDetails,
    fresh_read,
    owned_plus_wanted,
    stream_opened,
)
from ..errors import (
    ConflictError,
    DriverError,
    EngineUnreachable,
    PermanentError,
    PlanError,
    PluginError,
    Problem,
    ReconcilerError,
    RecreateRequired,
    RolledBack,
    SpecError,
    TemporaryError,
)
from ..hookspecs import API_VERSION, hookimpl
from ..model import (
    Content,
    ContainerSpec,
    DesiredState,
    EngineEvent,
    EnvVar,
    FileContent,
    FileMount,
    HealthCheck,
    ImageEvent,
    ImageEventKind,
    ImageSpec,
    Kind,
    LiveObject,
    Mount,
    NetworkSpec,
    Port,
    Preview,
    Restored,
    RolloutPolicy,
    Snapshot,
    SnapshotRetention,
    snapshot_id,
    TLSFiles,
    VolumeSpec,
)
from ..paths import inside, repo_root
from ..plan import Action, Change, FieldChange, Operation, Plan, Reason
from ..private import NotPrivate, create_private, open_private_dir, private_dir, read_trusted, write_private
from ..redact import redact, register_secrets
from ..report import ApplyReport, Outcome, Status
from ..retry import RetryPolicy, call_with_retries
from ..spec.yamlsafe import Document, compose_file
from ..waiting import PollTimeout, poll_until
from . import labels

__all__ = [
    # the plugin API
    "API_VERSION",
    "__version__",
    "hookimpl",
    # drivers: what a plugin implements, receives and registers
    "Check",
    "DriverContext",
    "Factory",
    "NetworkDriver",
    "ObjectDriver",
    "PluginDrivers",
    "RegistryDriver",
    "RuntimeDriver",
    "StorageDriver",
    "TagDetails",
    "fresh_read",
    "owned_plus_wanted",
    "stream_opened",
    # the model: what a driver is handed and reports
    "Content",
    "ContainerSpec",
    "DesiredState",
    "EngineEvent",
    "EnvVar",
    "FileContent",
    "FileMount",
    "HealthCheck",
    "ImageEvent",
    "ImageEventKind",
    "ImageSpec",
    "Kind",
    "LiveObject",
    "Mount",
    "NetworkSpec",
    "Port",
    "Preview",
    "Restored",
    "RolloutPolicy",
    "Snapshot",
    "SnapshotRetention",
    "snapshot_id",
    "TLSFiles",
    "VolumeSpec",
    # plans and reports: what lifecycle hooks are handed
    "Action",
    "ApplyReport",
    "Change",
    "FieldChange",
    "Operation",
    "Outcome",
    "Plan",
    "Reason",
    "Status",
    # errors
    "ConflictError",
    "DriverError",
    "EngineUnreachable",
    "PermanentError",
    "PlanError",
    "PluginError",
    "Problem",
    "ReconcilerError",
    "RecreateRequired",
    "RolledBack",
    "SpecError",
    "TemporaryError",
    # infrastructure every plugin should share rather than copy
    "AddressPool",
    "DEFAULT_ADDRESS_POOLS",
    "Document",
    "NotPrivate",
    "PollTimeout",
    "RetryPolicy",
    "allocate_subnet",
    "call_with_retries",
    "compose_file",
    "create_private",
    "default_state_dir",
    "inside",
    "labels",
    "open_private_dir",
    "poll_until",
    "private_dir",
    "read_trusted",
    "redact",
    "register_secrets",
    "repo_root",
    "write_private",
]


def default_state_dir():
    """The reconciler's state directory, where ``DriverContext.state_dir`` is None (``$RECONCILER_STATE_DIR``, ...).

    Imported when called: the record's module (and SQLite) stays out of a plugin's import.
    """
    from ..state import default_state_dir as found

    return found()
