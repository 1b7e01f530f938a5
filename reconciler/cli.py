"""The ``reconcile`` command: parse arguments, call the library, render, exit.

No reconcile logic lives here. Expected failures (``ReconcilerError``) become
one clear message and exit code 1; no traceback reaches the user for them.
Imports are lazy so ``reconcile validate`` never pays for the Docker SDK.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .errors import ReconcilerError, SpecError
from .redact import RedactingFilter, redact
from .plugins import describe_plugins, load_driver_registry, make_plugin_manager
from .reconcile import ApplyRequest, Reconciler
from .render import (
    history_json,
    history_text,
    outcome_line,
    pass_json,
    pass_text,
    plan_json,
    plan_text,
    plugins_json,
    plugins_text,
    report_json,
    report_text,
    servers_history_text,
    servers_status_text,
    status_json,
    status_text,
)
from .report import ApplyOptions
from .spec import load_desired
from .names import require_stack_name

__all__ = ["main"]

DEFAULT_FILES = ("stack.yaml", "stack.yml", "reconcile.yaml", "reconcile.yml",
                 "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
_READER_GONE = threading.Event()  # set once stdout's reader has gone away (``reconcile plan | head``)


def _parser() -> argparse.ArgumentParser:
    if not hasattr(argparse._, "cache_info"):
        # argparse looks each of its messages up in the locale's catalogue, again for every parser it builds:
        # a few hundred stat() calls, half the parser's cost at every start. The answer never changes.
        argparse._ = functools.cache(argparse._)
    parser = argparse.ArgumentParser(prog="reconcile", description="Make a Docker engine match a YAML stack.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="warning",
                        help="what plugins and drivers log to stderr (default warning)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, *, engine: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("-f", "--file", action="append", dest="files", metavar="PATH",
                       help="spec file or directory (repeatable; default: ./stack.yaml)")
        p.add_argument("--stack", help="stack name (default: name: in the spec, else the spec's directory)")
        p.add_argument("--allow-outside-paths", action="store_true",
                       help="let paths in the spec (build contexts, env files, bind mounts, archives), "
                            "relative or absolute, point outside its repository")
        p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                       help="load a plugin module by import path (repeatable)")
        _compose_flags(p)
        _strict_flag(p)
        if engine:
            p.add_argument("--engine", metavar="URL",
                           help="engine URL (default: $DOCKER_HOST, then the local socket), or the comma-separated "
                                "URLs of one swarm's managers (the first that answers is used); with a spec that "
                                "names targets:, run on this one engine instead of the fleet")
            p.add_argument("--target", action="append", default=[], metavar="NAME",
                           help="with a spec that names targets:, only these of the selected targets (repeatable)")
        return p

    command("validate", "check the spec (schema and references); no engine needed", engine=False)
    convert = command("convert", "print the stack spec equivalent to Compose files (-f compose.yaml)", engine=False)
    convert.add_argument("-o", "--out", metavar="FILE", help="write the spec to FILE instead of printing it")
    plan = command("plan", "show what apply would change, and why")
    plan.add_argument("--output", choices=("text", "json"), default="text")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 0 when there are no changes, 2 when changes are pending, 1 on error")
    plan.add_argument("--prune-volumes", action="store_true", help="plan deleting volumes no longer in the spec")
    _adopt_flag(plan)
    plan.add_argument("--out", metavar="FILE", help="also save the plan, for 'reconcile apply FILE'")
    apply = command("apply", "make the engine match the spec")
    apply.add_argument("planfile", nargs="?", metavar="PLAN",
                       help="a plan saved by 'plan --out': apply exactly it, or refuse if it is stale")
    _apply_flags(apply)
    _adopt_flag(apply)
    apply.add_argument("--recreate-networks", action="store_true",
                       help="allow recreating networks whose config changed")
    apply.add_argument("--recreate-volumes", action="store_true",
                       help="allow recreating volumes whose config changed (their data is lost)")
    status = command("status", "every object: desired vs live, state, health, drift")
    status.add_argument("--output", choices=("text", "json"), default="text")
    _server_flags(status, "ask these daemons for every stack they run instead (one line per host per stack)")
    destroy = command("destroy", "remove everything the stack owns (volumes kept unless --prune-volumes)")
    _apply_flags(destroy)
    _adopt_flag(destroy)
    watch = command("watch", "apply now, then again whenever the spec's files or the stack's objects change")
    _apply_flags(watch)
    watch.add_argument("--resync", type=float, default=60.0, metavar="SECONDS",
                       help="also apply every SECONDS when nothing changed (default 60)")
    daemon = sub.add_parser("daemon", help="follow git repositories and directories; keep every stack converged")
    daemon.add_argument("--config", required=True, metavar="FILE", help="the daemon's configuration (daemon.yaml)")
    daemon.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="load a plugin module by import path (repeatable)")
    _strict_flag(daemon)
    daemon.add_argument("--log-format", choices=("text", "json"), help="overrides log_format in the configuration")
    history = sub.add_parser("history", help="the syncs of a stack (or of every stack), newest first")
    history.add_argument("stack", nargs="?", help="the stack (default: every stack)")
    history.add_argument("--limit", type=int, default=20, help="how many syncs (default 20)")
    history.add_argument("--state-dir", metavar="DIR",
                         help="the state directory (default: $RECONCILER_STATE_DIR, /var/lib/reconciler as root, "
                              "else ~/.local/state/reconciler; a daemon's is its state_dir)")
    history.add_argument("--output", choices=("text", "json"), default="text")
    _server_flags(history, "ask these daemons instead of a state directory")
    rollback = sub.add_parser("rollback", help="hold a daemon's stack at an older revision of its source")
    rollback.add_argument("stack")
    rollback.add_argument("--to", required=True, metavar="REV", help="the full commit id to go back to")
    rollback.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory")
    release = sub.add_parser("release", help="let a held stack follow its source again")
    release.add_argument("stack")
    release.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory")
    for verb, text in (("suspend", "stop the watch and daemon loops from applying a stack (drift is still reported)"),
                       ("resume", "let the loops apply a suspended stack again")):
        toggle = sub.add_parser(verb, help=text, description=text)
        toggle.add_argument("stack")
        toggle.add_argument("--state-dir", metavar="DIR", help="the state directory (as for history)")
        _server_flags(toggle, "ask these daemons instead of a state directory")
    text = "have daemons fetch a stack's source and apply it now"
    sync = sub.add_parser("sync", help=text, description=text)
    sync.add_argument("stack")
    sync.add_argument("--output", choices=("text", "json"), default="text")
    _server_flags(sync, "the daemons to ask (required)")
    schema = sub.add_parser("schema", help="print the stack's JSON Schema, with the loaded drivers' options, "
                                           "for editors")
    schema.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="also load a plugin module by import path (repeatable)")
    _strict_flag(schema)
    plugins = sub.add_parser("plugins", help="the plugins loaded, their drivers and hooks")
    plugins_sub = plugins.add_subparsers(dest="plugins_command", required=True, metavar="COMMAND")
    listing = plugins_sub.add_parser("list", help="each plugin: version, distribution, drivers and hooks")
    listing.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                         help="also load a plugin module by import path (repeatable)")
    _strict_flag(listing)
    listing.add_argument("--output", choices=("text", "json"), default="text")
    return parser


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


def _compose_options(args: argparse.Namespace):
    """The Compose flags given, or None (a stack spec's load then never imports the Compose reader)."""
    if not (args.env_file or args.profile or args.project_name or args.ignore_unsupported):
        return None
    from .spec.compose import ComposeOptions

    return ComposeOptions(env_files=tuple(args.env_file), profiles=tuple(args.profile),
                          project_name=args.project_name, ignore_unsupported=args.ignore_unsupported)


def _strict_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict-plugins", action="store_true", default=None,
                   help="a plugin that fails to load is an error, not a warning (default: $RECONCILER_STRICT_PLUGINS)")


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


def _adopt_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--adopt", action="store_true",
                   help="take over objects whose labels claim the stack but which the reconciler's record does "
                        "not list, and let --prune-volumes/--recreate-volumes delete data it did not create")


def _version() -> str:
    return __version__


def _files(args: argparse.Namespace) -> list[str]:
    if args.files:
        return args.files
    for name in DEFAULT_FILES:
        if os.path.exists(name):
            return [name, *_compose_override(name)]
    raise SpecError(f"no spec given and none of {', '.join(DEFAULT_FILES)} in {os.getcwd()} (use -f PATH)")


def _compose_override(name: str) -> list[str]:
    """``docker compose`` without -f also reads the override file beside its default file."""
    from .spec.composefiles import OVERRIDE_FILES

    if not name.startswith(("compose.", "docker-compose.")):
        return []
    return next(([o] for o in OVERRIDE_FILES if os.path.exists(o)), [])


def _desired(args: argparse.Namespace, reconciler, *, allow_empty: bool = False, check_options: bool = False):
    """The validated spec; driver names are checked against the plugins ``reconciler`` loaded.

    ``check_options`` also runs the drivers' option check functions (``validate`` and ``plan``;
    the options schemas are checked for every command).
    """
    return load_desired(_files(args), stack=args.stack, allow_outside=args.allow_outside_paths,
                        drivers=reconciler.driver_catalog(), allow_empty=allow_empty,
                        profiles=tuple(getattr(args, "profile", ())),
                        check_options=reconciler.option_problems if check_options else None,
                        compose=_compose_options(args))


def _reconciler(args: argparse.Namespace):
    return Reconciler(engine_url=getattr(args, "engine", None), plugin_modules=args.plugin,
                      strict_plugins=args.strict_plugins, progress=_progress_lines(args))


def _progress_lines(args: argparse.Namespace):
    """For text output of apply and destroy: print drivers' progress lines as they arrive."""
    if args.command not in ("apply", "destroy") or args.output == "json":
        return None
    lock = threading.Lock()  # builds and pulls report from worker threads

    def show(name: str, line: str) -> None:
        with lock:
            _out(f"  | {name}: {line}")

    return show


def _out(text: str) -> None:
    """Print one block; once the reader has gone, keep going silently.

    An apply whose output nobody reads any more must still finish rather than
    stop half-way, so a broken pipe only silences stdout (the recipe in
    Python's ``signal`` docs: point it at devnull so no later flush fails).
    """
    if _READER_GONE.is_set():
        return
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _READER_GONE.set()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def cmd_validate(args: argparse.Namespace) -> int:
    desired = _desired(args, _reconciler(args), check_options=True)
    _out(f"{', '.join(desired.sources)}: valid stack {desired.stack!r} ({len(desired.images)} images, "
         f"{len(desired.networks)} networks, {len(desired.volumes)} volumes, {len(desired.containers)} containers)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    import os

    from .spec.compose import find_files, load_compose
    from .spec.compose.convert import render_stack

    files = find_files(_files(args))
    if files is None:
        raise SpecError(f"{', '.join(_files(args))}: not a Compose project (no top-level services:); "
                        "convert reads Compose files")
    stack = load_compose(files, environ=os.environ, options=_compose_options(args))
    text = render_stack(stack)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        _out(text.rstrip("\n"))
    return 0


def _fleet(args: argparse.Namespace, reconciler, desired):
    """A ``FleetReconciler`` when the spec names targets and no --engine overrides them, else None."""
    if desired.fleet is None or args.engine:
        return None
    from .fleet import FleetReconciler

    unknown = sorted(set(args.target) - {t.name for t in desired.fleet.targets})
    if unknown:
        raise SpecError(f"--target: no target named {', '.join(unknown)} in the spec "
                        f"(targets: {', '.join(t.name for t in desired.fleet.targets)})")
    return FleetReconciler(desired.fleet, desired.stack, plugin_manager=reconciler.pm, progress=reconciler.progress,
                           only=args.target)


def _fleet_run(args: argparse.Namespace, run):
    """Run a fleet command (``run(on_target)``), showing each target's section as it finishes (text) or one
    JSON document at the end; returns the ``FleetReport``."""
    from .render_fleet import fleet_json, fleet_summary, target_text

    lock = threading.Lock()

    def on_target(outcome) -> None:
        if args.output != "json":
            with lock:
                _out(target_text(outcome) + "\n")

    report = run(on_target)
    _out(fleet_json(report) if args.output == "json" else fleet_summary(report))
    return report


def cmd_plan(args: argparse.Namespace) -> int:
    reconciler = _reconciler(args)
    desired = _desired(args, reconciler, check_options=True)
    fleet = _fleet(args, reconciler, desired)
    if fleet is not None:
        if args.out:
            raise SpecError("plan --out saves one engine's plan: name it with --engine")
        report = _fleet_run(args, lambda on: fleet.plan(desired, prune_volumes=args.prune_volumes, adopt=args.adopt,
                                                        on_target=on))
        if not report.ok:
            return 1
        pending = any(o.plan is not None and not o.plan.empty for o in report.outcomes)
        return 2 if args.detailed_exitcode and pending else 0
    plan, _ = reconciler.plan(desired, prune_volumes=args.prune_volumes, adopt=args.adopt)
    vetoes = reconciler.vetoes(plan, desired)
    _out(plan_json(plan, vetoes=vetoes) if args.output == "json" else plan_text(plan, vetoes=vetoes))
    if args.out:
        from .planfile import write_plan

        write_plan(Path(args.out), plan, desired, engine=args.engine, prune_volumes=args.prune_volumes,
                   adopt=args.adopt)
    if vetoes or any(c.error for c in plan.changes):
        return 1
    if args.detailed_exitcode and not plan.empty:
        return 2
    return 0


def _request(args: argparse.Namespace, **flags: Any):
    options = ApplyOptions(workers=args.workers, wait_timeout=args.wait_timeout, rollback=args.rollback)
    return ApplyRequest(prune_volumes=args.prune_volumes, adopt=getattr(args, "adopt", False), options=options,
                        lock_timeout=args.lock_timeout, **flags)


def _progress(args: argparse.Namespace) -> dict:
    if args.output == "json":
        return {}
    return {"on_plan": lambda plan: _out(plan_text(plan) + ("\n" if not plan.empty else "")),
            "after": lambda outcome: _out(outcome_line(outcome))}


def _finish(args: argparse.Namespace, report) -> int:
    _out(report_json(report) if args.output == "json" else report_text(report))
    return 0 if report.ok else 1


def cmd_apply(args: argparse.Namespace) -> int:
    saved = None
    if args.planfile:
        from .planfile import read_plan

        saved = read_plan(Path(args.planfile))
        args.files = args.files or list(saved.sources)
        args.stack = args.stack or saved.stack
        args.engine = args.engine or saved.engine
        args.prune_volumes = args.prune_volumes or saved.prune_volumes
        args.adopt = args.adopt or saved.adopt
    reconciler = _reconciler(args)
    desired = _desired(args, reconciler)
    request = _request(args, recreate_networks=args.recreate_networks, recreate_volumes=args.recreate_volumes,
                       saved=saved)
    fleet = _fleet(args, reconciler, desired)
    if fleet is not None:
        report = _fleet_run(args, lambda on: fleet.apply(desired, request, on_target=on))
        return 0 if report.ok else 1
    report = reconciler.apply(desired, request, **_progress(args))
    return _finish(args, report)


def cmd_destroy(args: argparse.Namespace) -> int:
    reconciler = _reconciler(args)
    desired = None if args.stack and not args.files else _desired(args, reconciler, allow_empty=True)
    stack = require_stack_name(args.stack) if args.stack else desired.stack
    runtime = desired.runtime if desired is not None else None
    fleet = _fleet(args, reconciler, desired) if desired is not None else None
    if fleet is not None:
        report = _fleet_run(args, lambda on: fleet.destroy(stack, _request(args), runtime=runtime, on_target=on))
        return 0 if report.ok else 1
    report = reconciler.destroy(stack, _request(args), runtime=runtime, **_progress(args))
    return _finish(args, report)


def cmd_status(args: argparse.Namespace) -> int:
    if args.server:
        return _remote_status(args)
    reconciler = _reconciler(args)
    desired = _desired(args, reconciler)
    fleet = _fleet(args, reconciler, desired)
    if fleet is not None:
        return _fleet_status(args, fleet, desired)
    plan, live = reconciler.plan(desired)
    from .status import status_rows

    rows = status_rows(desired, live, plan)
    render = status_json if args.output == "json" else status_text
    _out(render(desired.stack, rows, converged=plan.empty))
    return 0


def _fleet_status(args: argparse.Namespace, fleet, desired) -> int:
    """One line per target (text), or per target its state, drift, last sync and objects (JSON); 1 if any is down."""
    from .render_fleet import fleet_status_json, fleet_status_text
    from .status import status_rows

    report = fleet.plan(desired)
    last = [fleet.last_sync(o.target, fleet.reconcilers[o.target.name], live=o.plan is not None)
            for o in report.outcomes]
    if args.output == "json":
        objects = [status_rows(desired, o.live, o.plan) if o.plan is not None else None for o in report.outcomes]
        _out(fleet_status_json(report, last, objects))
    else:
        _out(fleet_status_text(report, last))
    return 0 if report.ok else 1


def cmd_history(args: argparse.Namespace) -> int:
    from .state import StateStore

    if args.server:
        return _remote_history(args)
    with StateStore.open(Path(args.state_dir) if args.state_dir else None) as store:
        syncs = store.syncs(stack=args.stack, limit=args.limit)
    _out(history_json(syncs) if args.output == "json" else history_text(syncs))
    return 0


def cmd_suspend(args: argparse.Namespace) -> int:
    from .state import StateStore

    if args.server:
        return _remote_post(args, args.command)
    with StateStore.open(Path(args.state_dir) if args.state_dir else None) as store:
        (store.suspend if args.command == "suspend" else store.resume)(args.stack)
    _out(f"stack {args.stack} {'suspended: the loops will plan it but apply nothing' if args.command == 'suspend' else 'resumed'}")
    return 0


def _server_flags(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--server", action="append", default=[], metavar="URL", help=f"{help} (repeatable)")
    parser.add_argument("--token-file", metavar="FILE", help="the API token for --server (default: $RECONCILER_TOKEN)")
    parser.add_argument("--cacert", metavar="FILE", help="CA certificate(s) to trust for https:// servers")


def _clients(args: argparse.Namespace) -> list:
    from .client import DaemonClient, token_from

    token = token_from(args.token_file)
    return [DaemonClient(url, token, cacert=args.cacert) for url in args.server]


def _ask_each(args: argparse.Namespace, ask: Callable[[Any], Any]) -> tuple[list[tuple[str, Any]], int]:
    """(url, answer or error text) per server, and 1 when any server failed."""
    results, code = [], 0
    for client in _clients(args):
        try:
            results.append((client.url, ask(client)))
        except ReconcilerError as exc:
            results.append((client.url, str(exc)))
            code = 1
    return results, code


def _show_each(args: argparse.Namespace, results: list[tuple[str, Any]], key: str,
               text: Callable[[list[tuple[str, Any]]], str]) -> None:
    """Each server's answer (under ``key``) or error, as JSON or as ``text`` renders them."""
    import json

    if args.output == "json":
        _out(json.dumps([{"server": url, key: None if isinstance(r, str) else r,
                          "error": r if isinstance(r, str) else None} for url, r in results], indent=2))
    else:
        _out(text(results))


def _remote_status(args: argparse.Namespace) -> int:
    results, code = _ask_each(args, lambda c: c.stacks())
    _show_each(args, results, "stacks", servers_status_text)
    return code


def _remote_history(args: argparse.Namespace) -> int:
    def ask(client) -> list:
        names = [args.stack] if args.stack else [s["name"] or s["id"] for s in client.stacks()]
        rows = [row for name in names for row in client.history(name, args.limit)]
        return sorted(rows, key=lambda row: row["started_at"], reverse=True)[:args.limit]

    results, code = _ask_each(args, ask)
    _show_each(args, results, "syncs", servers_history_text)
    return code


def _remote_post(args: argparse.Namespace, verb: str) -> int:
    results, code = _ask_each(args, lambda c: c.post(args.stack, verb))
    done = {"sync": "asked to sync", "suspend": "suspended", "resume": "resumed"}[verb]
    for url, answer in results:
        if isinstance(answer, str):
            print(f"error: {redact(answer)}", file=sys.stderr, flush=True)
        else:
            _out(f"{url}: stack {args.stack} {done}")
    return code


def cmd_sync(args: argparse.Namespace) -> int:
    if not args.server:
        raise SpecError("sync asks running daemons: give --server URL (repeatable); "
                        "to apply a spec here, use reconcile apply")
    return _remote_post(args, "sync")


def cmd_rollback(args: argparse.Namespace) -> int:
    """Hold (rollback) or release a daemon's stack; the daemon notices within its fetch interval."""
    import re

    from .state import StateStore

    with StateStore.open(Path(args.state_dir) if args.state_dir else None) as store:
        if args.command == "release":
            store.release(args.stack)
            _out(f"stack {args.stack} released: it follows its source again")
            return 0
        if not re.fullmatch(r"[0-9a-f]{40}", args.to):
            raise SpecError(f"--to: {args.to!r} is not a full commit id (40 hex digits)")
        held = store.holds().get(args.stack)
        last = store.syncs(stack=args.stack, limit=1)
        source = held[1] if held else (last[0].revision if last else "")  # a second rollback keeps the first's
        if not source:
            raise SpecError(f"stack {args.stack!r} has no synced git revision in this state directory")
        store.hold(args.stack, args.to, source_revision=source)
    _out(f"stack {args.stack} held at {args.to[:12]} until its source moves past {source[:12]} "
         f"or 'reconcile release {args.stack}'")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from .spec.validate import stack_schema

    reconciler = Reconciler(plugin_modules=args.plugin, strict_plugins=args.strict_plugins)
    _out(json.dumps(stack_schema(reconciler.driver_catalog()), indent=2))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    pm = make_plugin_manager(modules=args.plugin, strict=args.strict_plugins)
    rows = describe_plugins(pm, load_driver_registry(pm))
    _out(plugins_json(rows) if args.output == "json" else plugins_text(rows))
    return 0


def _stop_on_signals(*, then: Callable[[], None] = lambda: None) -> threading.Event:
    """An event set by SIGTERM or SIGINT (then ``then()`` is called): the pass in flight finishes,
    nothing is left half-made."""
    import signal

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: (stop.set(), then()))
    return stop


def cmd_watch(args: argparse.Namespace) -> int:
    from .filewatch import SpecWatcher
    from .loop import LoopOptions, StackLoop, Trigger, is_news

    reconciler = _reconciler(args)

    def on_pass(result) -> None:
        if args.output == "json":
            _out(pass_json(result))
        elif is_news(result):
            _out(pass_text(result))
        if loop.desired is not None:
            watcher.follow(loop.desired)

    loop = StackLoop(reconciler, lambda: _desired(args, reconciler), request=_request(args),
                     options=LoopOptions(resync=args.resync), on_pass=on_pass)
    stop = _stop_on_signals(then=loop.wake)
    watcher = SpecWatcher(_files(args), lambda: loop.trigger(Trigger.FILES))
    watcher.start()
    try:
        loop.run(stop)
    finally:
        watcher.stop()
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    import json

    from .daemon import Daemon, load_config
    from .daemon.metrics import Metrics
    from .daemon.view import drifted, pass_result
    from .loop import is_news
    from .model import Kind
    from .state import StateStore

    config = load_config(args.config)
    # The record of what the daemon creates lives in its state directory, beside the checkouts.
    reconciler = Reconciler(engine_url=config.engine, plugin_modules=args.plugin, strict_plugins=args.strict_plugins,
                            state=StateStore.open(Path(config.state_dir)))
    json_lines = (args.log_format or config.log_format) == "json"
    lock = threading.Lock()
    metrics = Metrics()

    def on_pass(worker, result) -> None:
        revision = worker.revision or worker.checkout.revision
        origin = {"source": worker.source.name, "path": worker.path, "revision": revision or None,
                  "held": worker.held}
        desired = worker.loop.desired if worker.loop else None
        metrics.observe_pass(worker.stack or worker.id, pass_result(result), seconds=result.seconds,
                             drifted=drifted(result), managed=sum(len(desired.of(k)) for k in Kind) if desired else 0,
                             suspended=result.suspended is not None)
        with lock:  # one line (or block) per pass, whatever thread it comes from
            if json_lines:
                _out(pass_json(result, **origin))
            elif is_news(result):
                where = f"{worker.source.name}:{worker.path}" + (f"@{revision[:12]}" if revision else "") + (
                    " (held: reconcile release to follow the source again)" if worker.held else "")
                _out(f"{where} " + pass_text(result))

    daemon = Daemon(config, reconciler=reconciler, on_pass=on_pass)
    server = None
    if config.api is not None:
        from .daemon.server import build

        server = build(daemon, config.api, config.webhooks, metrics)
    stop = _stop_on_signals()
    if server is not None:
        url = server.start()
        with lock:
            _out(json.dumps({"api": url}) if json_lines else f"api: listening on {url}")
    try:
        daemon.run(stop)
    finally:
        if server is not None:
            server.stop()
    return 0


COMMANDS = {
    "validate": cmd_validate,
    "convert": cmd_convert,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "status": cmd_status,
    "destroy": cmd_destroy,
    "watch": cmd_watch,
    "daemon": cmd_daemon,
    "history": cmd_history,
    "suspend": cmd_suspend,
    "rollback": cmd_rollback,
    "release": cmd_rollback,
    "resume": cmd_suspend,
    "sync": cmd_sync,
    "plugins": cmd_plugins,
    "schema": cmd_schema,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _READER_GONE.clear()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # every record ends here, third-party loggers' too
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    try:
        code = COMMANDS[args.command](args)
    except ReconcilerError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    # 141 is what a shell reports for a writer killed by SIGPIPE: the output was cut short.
    return EXIT_BROKEN_PIPE if _READER_GONE.is_set() else code


if __name__ == "__main__":
    sys.exit(main())
