"""The JSON Schemas of the Docker drivers' ``options:``, read at validation (no Docker import).

Checks a schema cannot express (a path that must be absolute and outside
system directories, an owner looked up on this host) stay in
``hostpaths.option_problems``, which runs at ``validate``, ``plan`` and apply.
"""
from __future__ import annotations

__all__ = ["HOSTDIR_OPTIONS", "LOCAL_VOLUME_OPTIONS", "NO_OPTIONS"]

#: The built-in registry drivers take no options.
NO_OPTIONS = {"type": "object", "additionalProperties": False, "properties": {}}

#: What the engine's ``local`` volume driver accepts (``docker volume create --opt``).
LOCAL_VOLUME_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "type": {"description": "Filesystem type to mount (tmpfs, nfs, ext4, ...), as mount -t.", "type": "string"},
        "device": {"description": "What to mount: a device, tmpfs, or host:/path for nfs.", "type": "string"},
        "o": {"description": "Mount options, comma-separated, as mount -o.", "type": "string"},
        "size": {"description": "Quota, on filesystems that support one (xfs with pquota).", "type": "string"},
    },
}

HOSTDIR_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {"description": "Absolute host directory holding the volume's data.", "type": "string",
                 "minLength": 1},
        "owner": {"description": "USER[:GROUP], names or numbers: the directory's owner.",
                  "type": ["string", "integer"]},
        "mode": {"description": "Three or four octal digits, quoted (\"0750\").", "type": ["string", "integer"]},
        "adopt": {"description": "Use a directory that exists as it is: no marker, never removed.",
                  "enum": [True, False, "true", "false"]},
    },
}
