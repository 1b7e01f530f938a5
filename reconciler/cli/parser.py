"""The ``reconcile`` command line as argparse sees it: commands, flags, help. Nothing here runs a command."""
from __future__ import annotations

import argparse
import functools
from typing import Callable, Sequence

from .. import __version__

__all__ = ["build_parser"]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``reconcile`` command line: every command, its flags and their help.

    Every command is listed (``reconcile --help`` shows them all), but only the
    one ``argv`` names gets its flags: a run pays for one command's parser, not
    for sixteen (about a hundred and sixty ``add_argument`` calls, a few
    milliseconds of every start). Without ``argv``, or when it names no
    command, every command is built.
    """
    if not hasattr(argparse._, "cache_info"):
        # argparse looks each of its messages up in the locale's catalogue, again for every parser it builds:
        # a few hundred stat() calls, half the parser's cost at every start. The answer never changes.
        argparse._ = functools.cache(argparse._)
    parser = argparse.ArgumentParser(prog="reconcile", description="Make a Docker engine match a YAML stack.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_flags(parser, default="warning")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((word for word in argv or () if word in _COMMANDS), None)
    for name, (help, flags) in _COMMANDS.items():
        command = sub.add_parser(name, help=help, description=help)
        if named is None or name == named:
            flags(command)
            _global_flags(command, default=argparse.SUPPRESS)
    return parser


def _global_flags(p: argparse.ArgumentParser, *, default: str) -> None:
    """``--log-level`` and ``--strict-plugins``, taken before the command or after it (``default``: SUPPRESS
    on a command, so that not repeating a flag there keeps what was given before it)."""
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=default,
                   help="what plugins and drivers log to stderr (default warning)")
    p.add_argument("--strict-plugins", action="store_true", default=None if default != argparse.SUPPRESS
                   else argparse.SUPPRESS,
                   help="a plugin that fails to load is an error, not a warning (default: $RECONCILER_STRICT_PLUGINS)")


def _stack_command(*, engine: bool = True) -> Callable[[argparse.ArgumentParser], None]:
    """The flags of a command that works on a spec: files, stack name, plugins, Compose's, the engine."""
    def flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("-f", "--file", action="append", dest="files", metavar="PATH",
                       help="spec file or directory (repeatable; default: ./stack.yaml)")
        p.add_argument("--stack", help="stack name (default: name: in the spec, else the spec's directory)")
        p.add_argument("--allow-outside-paths", action="store_true",
                       help="let the files the spec makes the reconciler read (build contexts, env files, "
                            "config files, archives) and relative bind sources point outside its repository "
                            "(absolute and ~ bind sources need no flag)")
        _plugin_flag(p, "load a plugin module by import path (repeatable)")
        _compose_flags(p)
        if engine:
            p.add_argument("--engine", metavar="URL",
                           help="engine URL (default: $DOCKER_HOST, then the local socket), or the comma-separated "
                                "URLs of one swarm's managers (the first that answers is used); with a spec that "
                                "names targets:, run on this one engine instead of the fleet")
            p.add_argument("--target", action="append", default=[], metavar="NAME",
                           help="with a spec that names targets:, only these of the selected targets (repeatable)")
            p.add_argument("--engine-timeout", type=seconds, metavar="SECONDS",
                           help="seconds each engine may take to answer a read (its first /info, observe's lists) "
                                "before it is reported unreachable (default: $RECONCILER_ENGINE_TIMEOUT, else 10); "
                                "builds, pulls, pushes and health waits keep their own limits")
    return flags


def _address_pool_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--default-address-pool", action="append", type=address_pools, metavar="base=CIDR,size=N",
                   help="where a bridge network without ipam.subnet gets its subnet: the lowest free block of these "
                        "pools (repeatable, as docker's own flag: base=172.16.0.0/16,size=26; 'none': the engine's "
                        "pools; default: $RECONCILER_DEFAULT_ADDRESS_POOLS, else 172.16.0.0/16 in /26 blocks)")


def address_pools(text: str) -> tuple:
    """One ``--default-address-pool``: (pool,), or () for ``none`` (argparse's ``type``; its usage error says why)."""
    from ..addresses import PoolError, parse_pool, parse_pools

    try:
        return parse_pools(text) if text.strip().lower() in ("none", "off") else (parse_pool(text),)
    except PoolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse's ``type``: a ValueError is its usage error)."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError(text)
    return value


def _validate(p: argparse.ArgumentParser) -> None:
    _stack_command(engine=False)(p)


def _convert(p: argparse.ArgumentParser) -> None:
    _stack_command(engine=False)(p)
    p.add_argument("-o", "--out", metavar="FILE", help="write the spec to FILE instead of printing it")


def _plan(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    _address_pool_flag(p)
    p.add_argument("--output", choices=("text", "json", "markdown"), default="text",
                   help="markdown: for a pull request's comment (a summary line, the changes in a collapsible table)")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 0 when there are no changes, 2 when changes are pending, 1 on error")
    p.add_argument("--prune-volumes", action="store_true", help="plan deleting volumes no longer in the spec")
    _adopt_flag(p)
    _adopt_compose_flag(p)
    p.add_argument("--out", metavar="FILE", help="also save the plan, for 'reconcile apply FILE'")


def _apply(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    _address_pool_flag(p)
    p.add_argument("planfile", nargs="?", metavar="PLAN",
                   help="a plan saved by 'plan --out': apply exactly it, or refuse if it is stale")
    _apply_flags(p)
    _adopt_flag(p)
    _adopt_compose_flag(p)
    _recreate_flags(p)


def _adopt(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    _address_pool_flag(p)
    _apply_flags(p)
    p.add_argument("--dry-run", action="store_true",
                   help="show what the takeover would do to each object, and the plan after it; change nothing")
    _recreate_flags(p)


def _recreate_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recreate-networks", action="store_true",
                   help="allow recreating networks whose config changed")
    p.add_argument("--recreate-volumes", action="store_true",
                   help="allow recreating volumes whose config changed (their data is lost)")


def _status(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("--detailed", action="store_true",
                   help="also list the paths changed in each checked container's writable layer, "
                        "each image's layers, sizes and shared bytes, and each field that differs")
    _server_flags(p, "ask these daemons for every stack they run instead (one line per host per stack)")


def _destroy(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    _apply_flags(p)
    _adopt_flag(p)


def _watch(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    _address_pool_flag(p)
    _apply_flags(p)
    p.add_argument("--resync", type=float, default=60.0, metavar="SECONDS",
                   help="also apply every SECONDS when nothing changed (default 60)")


def _daemon(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="the daemon's configuration (daemon.yaml)")
    _plugin_flag(p, "load a plugin module by import path (repeatable)")
    p.add_argument("--log-format", choices=("text", "json"), help="overrides log_format in the configuration")
    _no_restore_flag(p)
    _address_pool_flag(p)  # overrides default_address_pools in the configuration


def _logs(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    p.add_argument("stack_name", nargs="?", metavar="STACK",
                   help="the stack, found by its labels (no spec needed); default: the spec's (-f)")
    p.add_argument("containers", nargs="*", metavar="CONTAINER", help="only these containers (default: all)")
    p.add_argument("--follow", action="store_true",
                   help="keep printing new lines until Ctrl-C (-f is the spec file here, as in every stack command)")
    _since_flag(p)
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines of each container (default: all)")
    p.add_argument("--timestamps", action="store_true", help="show each line's time")
    p.add_argument("--no-color", action="store_true",
                   help="no colour in the container prefixes (also when NO_COLOR is set or stdout is not a terminal)")
    _server_flags(p, "ask this daemon (its API) instead of the engine")


def _events(p: argparse.ArgumentParser) -> None:
    _stack_command()(p)
    p.add_argument("stack_name", nargs="?", metavar="STACK",
                   help="the stack, found by its labels (no spec needed); default: the spec's (-f)")
    p.add_argument("--follow", action="store_true", help="keep printing new events until Ctrl-C")
    _since_flag(p)
    p.add_argument("--output", choices=("text", "json"), default="text", help="json: one JSON object per line")
    p.add_argument("--state-dir", metavar="DIR", help="the state directory holding the passes (as for history)")
    _server_flags(p, "ask this daemon (its API) instead of the engine and a state directory")


def _since_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="WHEN",
                   help="only what happened since WHEN: a duration ago (10m, 2h) or an RFC 3339 time")


def _history(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", nargs="?", help="the stack (default: every stack)")
    p.add_argument("--limit", type=int, default=20, help="how many syncs (default 20)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the state directory (default: $RECONCILER_STATE_DIR, /var/lib/reconciler as root, "
                        "else ~/.local/state/reconciler; a daemon's is its state_dir)")
    p.add_argument("--output", choices=("text", "json"), default="text")
    _server_flags(p, "ask these daemons instead of a state directory")


def _rollback(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack")
    p.add_argument("--to", required=True, metavar="REV", help="the commit to go back to: its full id, or its first "
                   "digits as history shows them (only revisions the history still keeps)")
    p.add_argument("--with-data", action="store_true",
                   help="also restore the volumes' data as it was at REV: the daemon's next pass restores, per "
                        "volume, the newest snapshot taken when the stack left REV (refused when there is none)")
    _hold_flags(p)


def _release(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack")
    _hold_flags(p)


def _hold_flags(p: argparse.ArgumentParser) -> None:
    """Where ``rollback`` and ``release`` write: a daemon's state directory, or its API."""
    p.add_argument("--state-dir", metavar="DIR",
                   help="the daemon's state directory (the daemon notices within its fetch interval)")
    _server_flags(p, "ask these daemons instead of a state directory (each applies it at once)")


def _toggle(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack")
    p.add_argument("--state-dir", metavar="DIR", help="the state directory (as for history)")
    _server_flags(p, "ask these daemons instead of a state directory")


def _sync(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack")
    p.add_argument("--output", choices=("text", "json"), default="text")
    _server_flags(p, "the daemons to ask (required)")


def _previews(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", metavar="NAME", help="only the previews of this git source")
    p.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory, whose record keeps its previews "
                   "(default: $RECONCILER_STATE_DIR, /var/lib/reconciler as root, else ~/.local/state/reconciler)")
    p.add_argument("--output", choices=("text", "json"), default="text")
    _server_flags(p, "ask these daemons instead of a state directory")


def _schema(p: argparse.ArgumentParser) -> None:
    _plugin_flag(p, "also load a plugin module by import path (repeatable)")


def _plugins(p: argparse.ArgumentParser) -> None:
    plugins_sub = p.add_subparsers(dest="plugins_command", required=True, metavar="COMMAND")
    listing = plugins_sub.add_parser("list", help="each plugin: version, distribution, drivers and hooks")
    _plugin_flag(listing, "also load a plugin module by import path (repeatable)")
    _global_flags(listing, default=argparse.SUPPRESS)
    listing.add_argument("--output", choices=("text", "json"), default="text")


def _images(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="images_command", required=True, metavar="COMMAND")
    for name, help in (("outdated", "each image with an update policy: current, newest allowed, newest published, "
                                    "and why newer ones were not taken"),
                       ("update", "write the newest allowed version of each image into the spec files (no commit)")):
        command = sub.add_parser(name, help=help, description=help)
        _stack_command(engine=False)(command)
        _global_flags(command, default=argparse.SUPPRESS)
        command.add_argument("--image", action="append", default=[], metavar="KEY",
                             help="only this image (its key under images:, or a Compose service; repeatable)")
        command.add_argument("--state-dir", metavar="DIR", help="where quarantined versions are recorded (a daemon's "
                             "state_dir; default: $RECONCILER_STATE_DIR, else the user's state directory)")
        command.add_argument("--output", choices=("text", "json"), default="text")
        if name == "outdated":
            command.add_argument("--detailed-exitcode", action="store_true",
                                 help="exit 0 when every image is at its newest allowed version, 2 when one is not, "
                                      "1 on error")
    release = sub.add_parser("release", help="let a quarantined version be proposed again")
    _global_flags(release, default=argparse.SUPPRESS)
    release.add_argument("stack")
    release.add_argument("image", help="the image's key under images: (a Compose service's name)")
    release.add_argument("version", help="the quarantined tag")
    release.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory")


def _snapshots(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="snapshots_command", required=True, metavar="COMMAND")
    for name, help, words in (
            ("list", "each snapshot of the stack's volumes: when, size, for which container and revision, state",
             ("[STACK [VOLUME]]", "the volume (its key in the spec, or its name; default: every volume)")),
            ("restore", "put a volume back as a snapshot found it (the stack's containers that mount it are "
                        "stopped, then started again); what was written since is discarded",
             ("STACK VOLUME [SNAPSHOT_ID]", "the volume (its key in the spec, or its name)")),
            ("delete", "delete snapshots of a volume (its storage driver's copy, then the record's row)",
             ("STACK VOLUME SNAPSHOT_ID...", "the volume (its key in the spec, or its name)"))):
        command = sub.add_parser(name, help=help, description=help,
                                 usage=f"reconcile snapshots {name} [-f PATH | --stack NAME] [options] {words[0]}")
        _stack_command()(command)
        _global_flags(command, default=argparse.SUPPRESS)
        command.add_argument("stack_name", nargs="?", metavar="STACK",
                             help="the stack (no spec needed); with -f or --stack, the words start at VOLUME")
        command.add_argument("volume", nargs="?", metavar="VOLUME", help=words[1])
        command.add_argument("snapshot_ids", nargs="*", metavar="SNAPSHOT_ID",
                             help="the snapshot (restore: default its newest; list --output json shows the ids)")
        command.add_argument("--state-dir", metavar="DIR", help="the record to read (a daemon's state_dir; default: "
                             "$RECONCILER_STATE_DIR, else the user's state directory)")
        if name == "list":
            command.add_argument("--output", choices=("text", "json"), default="text")
            _server_flags(command, "ask these daemons instead of the engine and the record here")
        if name == "restore":
            command.add_argument("--yes", action="store_true",
                                 help="do not ask (needed when stdin is not a terminal): the data written since the "
                                      "snapshot is discarded")
            command.add_argument("--lock-timeout", type=float, default=10.0,
                                 help="seconds to wait for an apply on the same stack (default 10)")


#: Every command, in the order ``--help`` lists them: its help line and what adds its flags.
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "validate": ("check the spec (schema and references); no engine needed", _validate),
    "convert": ("print the stack spec equivalent to Compose files (-f compose.yaml)", _convert),
    "plan": ("show what apply would change, and why", _plan),
    "apply": ("make the engine match the spec", _apply),
    "adopt": ("take over a running Compose project of the same name (docker compose up), then apply", _adopt),
    "status": ("every object: desired vs live, state, health, drift", _status),
    "destroy": ("remove everything the stack owns (volumes kept unless --prune-volumes)", _destroy),
    "watch": ("apply now, then again whenever the spec's files or the stack's objects change", _watch),
    "daemon": ("follow git repositories and directories; keep every stack converged", _daemon),
    "logs": ("the output of a stack's containers, each line prefixed with its container", _logs),
    "events": ("the engine's events about a stack's objects and its reconcile passes, in time order", _events),
    "history": ("the syncs of a stack (or of every stack), newest first", _history),
    "rollback": ("hold a daemon's stack at an older revision of its source", _rollback),
    "release": ("let a held stack follow its source again", _release),
    "suspend": ("stop the watch and daemon loops from applying a stack (drift is still reported)", _toggle),
    "resume": ("let the loops apply a suspended stack again", _toggle),
    "sync": ("have daemons fetch a stack's source and apply it now", _sync),
    "images": ("image automation: versions allowed by each image's update policy, written into the spec", _images),
    "snapshots": ("a stack's volume snapshots: list, restore or delete them", _snapshots),
    "previews": ("the preview stacks a daemon runs for its sources' branches: branch, revision, age, state, URLs",
                 _previews),
    "schema": ("print the stack's JSON Schema, with the loaded drivers' options, for editors", _schema),
    "plugins": ("the plugins loaded, their drivers and hooks", _plugins),
}


def _plugin_flag(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE", help=help)


def _compose_flags(p: argparse.ArgumentParser) -> None:
    """What ``docker compose`` takes besides -f; they apply when the files are Compose files."""
    p.add_argument("--env-file", action="append", default=[], metavar="PATH",
                   help="Compose files: read variables from PATH instead of the project's .env (repeatable)")
    p.add_argument("--profile", action="append", default=[], metavar="NAME",
                   help="also run the containers (or Compose services) that list profile NAME in profiles: "
                        "(repeatable; * for all)")
    p.add_argument("-p", "--project-name", metavar="NAME",
                   help="Compose files: the project (stack) name, over COMPOSE_PROJECT_NAME and name:")
    p.add_argument("--ignore-unsupported", action="store_true",
                   help="Compose files: drop keys reconcile cannot honour, with a warning, instead of refusing")


def _apply_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune-volumes", action="store_true", help="also delete volumes the spec no longer names")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("--workers", type=int, default=4,
                   help="pulls, builds, creates and starts run in parallel (default 4); stops and waits do not count")
    p.add_argument("--wait-timeout", type=float, default=120.0,
                   help="seconds to wait for a dependency to be healthy/completed (default 120)")
    p.add_argument("--lock-timeout", type=float, default=10.0,
                   help="seconds to wait for another apply on the same stack (default 10)")
    p.add_argument("--no-rollback", dest="rollback", action="store_false",
                   help="when a replacement fails, keep the failed new container (the old one waits, renamed "
                        "<name>-old-<id>) instead of putting the old one back")
    _no_restore_flag(p)


def _no_restore_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-restore", dest="restore", action="store_false",
                   help="when a release that snapshotted its volumes (update.snapshot) fails, put the old container "
                        "back on the data as the new one left it, instead of restoring the snapshots")


def _adopt_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--adopt", action="store_true",
                   help="take over objects whose labels claim the stack but which the reconciler's record does "
                        "not list, and let --prune-volumes/--recreate-volumes delete data it did not create")


def _adopt_compose_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--adopt-compose", action="store_true",
                   help="first take over the running Compose project of the stack's name (as 'reconcile adopt')")


def _server_flags(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--server", action="append", default=[], metavar="URL", help=f"{help} (repeatable)")
    parser.add_argument("--token-file", metavar="FILE", help="the API token for --server (default: $RECONCILER_TOKEN)")
    parser.add_argument("--cacert", metavar="FILE", help="CA certificate(s) to trust for https:// servers")
