"""The commands that run here: load the spec, ask its runner (one engine or a fleet), show what it answered.

Each command parses nothing and decides nothing: the spec comes from
``load_desired`` (the files from ``spec.specfiles``), the runner from
``runner.runner_for``, the request from the flags (or a saved plan's
``SavedPlan.request``), and what is shown from ``views``. The record's
commands (``history``, ``suspend``, ``rollback``) read and write the state
directory through ``StateStore``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from pathlib import Path

from ..errors import PlanError, ReconcilerError, SpecError
from ..reconcile import ApplyRequest, Reconciler
from ..report import ApplyOptions
from ..runner import runner_for
from ..spec import load_desired
from ..names import require_stack_name
from ..redact import redact
from .output import out
from .views import callbacks, show_plan, show_run, show_status

__all__ = ["cmd_apply", "cmd_convert", "cmd_daemon", "cmd_destroy", "cmd_history", "cmd_plan",
           "cmd_plugins", "cmd_rollback", "cmd_schema", "cmd_status", "cmd_suspend", "cmd_validate", "cmd_watch",
           "desired_of", "files_of", "reconciler_of", "request_of"]


def files_of(args: argparse.Namespace) -> list[str]:
    """The spec files given with -f, else the default ones in the working directory (``specfiles.default_files``)."""
    if args.files:
        return args.files
    from ..spec.specfiles import DEFAULT_FILES, default_files

    found = default_files(Path("."))
    if found is None:
        raise SpecError(f"no spec given and none of {', '.join(DEFAULT_FILES)} in {os.getcwd()} (use -f PATH)")
    return [str(path) for path in found]


def _compose_options(args: argparse.Namespace):
    """The Compose flags given, or None (a stack spec's load then never imports the Compose reader)."""
    if not (args.env_file or args.profile or args.project_name or args.ignore_unsupported):
        return None
    from ..spec.compose import ComposeOptions

    return ComposeOptions(env_files=tuple(args.env_file), profiles=tuple(args.profile),
                          project_name=args.project_name, ignore_unsupported=args.ignore_unsupported)


def desired_of(args: argparse.Namespace, reconciler: Reconciler, *, allow_empty: bool = False,
               check_options: bool = False):
    """The validated spec; driver names are checked against the plugins ``reconciler`` loaded.

    ``check_options`` also runs the drivers' option check functions (``validate`` and ``plan``;
    the options schemas are checked for every command).
    """
    return load_desired(files_of(args), stack=args.stack, allow_outside=args.allow_outside_paths,
                        drivers=reconciler.driver_catalog(), allow_empty=allow_empty,
                        profiles=tuple(getattr(args, "profile", ())),
                        check_options=reconciler.option_problems if check_options else None,
                        compose=_compose_options(args))


def reconciler_of(args: argparse.Namespace) -> Reconciler:
    """The ``Reconciler`` the flags ask for: its engine, plugins and (apply, destroy) progress lines."""
    return Reconciler(engine_url=getattr(args, "engine", None), plugin_modules=args.plugin,
                      strict_plugins=args.strict_plugins, progress=_progress_lines(args),
                      engine_timeout=getattr(args, "engine_timeout", None), address_pools=_address_pools(args))


def _address_pools(args: argparse.Namespace):
    """The pools ``--default-address-pool`` gives (each a tuple: ``none`` is ()), or None when it is not given."""
    given = getattr(args, "default_address_pool", None)
    return None if given is None else tuple(pool for pools in given for pool in pools)


def _progress_lines(args: argparse.Namespace):
    """For text output of apply and destroy: print drivers' progress lines as they arrive."""
    if args.command not in ("apply", "destroy") or args.output == "json":
        return None
    lock = threading.Lock()  # builds and pulls report from worker threads

    def show(name: str, line: str) -> None:
        with lock:
            out(f"  | {name}: {line}")

    return show


def request_of(args: argparse.Namespace, **flags) -> ApplyRequest:
    """The ``ApplyRequest`` the apply flags make."""
    options = ApplyOptions(workers=args.workers, wait_timeout=args.wait_timeout, rollback=args.rollback,
                           restore=args.restore)
    return ApplyRequest(prune_volumes=args.prune_volumes, adopt=getattr(args, "adopt", False), options=options,
                        lock_timeout=args.lock_timeout, **flags)


def _runner(args: argparse.Namespace, reconciler: Reconciler, desired, *, one_engine: str = ""):
    return runner_for(desired, reconciler, engine=args.engine, targets=args.target, one_engine=one_engine)


def cmd_validate(args: argparse.Namespace) -> int:
    desired = desired_of(args, reconciler_of(args), check_options=True)
    out(f"{', '.join(desired.sources)}: valid stack {desired.stack!r} ({len(desired.images)} images, "
        f"{len(desired.networks)} networks, {len(desired.volumes)} volumes, {len(desired.containers)} containers)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from ..spec.compose import find_files, load_compose
    from ..spec.compose.convert import render_stack

    files = find_files(files_of(args))
    if files is None:
        raise SpecError(f"{', '.join(files_of(args))}: not a Compose project (no top-level services:); "
                        "convert reads Compose files")
    stack = load_compose(files, environ=os.environ, options=_compose_options(args))
    text = render_stack(stack)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        out(text.rstrip("\n"))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        return _plan(args)
    except ReconcilerError as exc:
        if args.output == "markdown":  # the comment says why there is no plan; main says it on stderr, exits 1
            from ..render_markdown import failure_markdown

            out(failure_markdown(redact(str(exc)), stack=args.stack))
        raise


def _plan(args: argparse.Namespace) -> int:
    if args.out and args.adopt_compose:
        raise PlanError("plan --out does not save a takeover: show it with 'reconcile adopt --dry-run', "
                         "then run 'reconcile adopt'")
    reconciler = reconciler_of(args)
    desired = desired_of(args, reconciler, check_options=True)
    args.stack = desired.stack  # for Markdown's comment, should the plan fail
    runner = _runner(args, reconciler, desired,
                     one_engine="plan --out saves one engine's plan: name it with --engine" if args.out else "")
    planned = runner.plan(desired, prune_volumes=args.prune_volumes, adopt=args.adopt,
                          adopt_compose=args.adopt_compose, **callbacks(args, changes=False))
    code = show_plan(args, planned, vetoes=lambda plan: reconciler.vetoes(plan, desired))
    if args.out:
        from ..planfile import write_plan

        write_plan(Path(args.out), planned.plan, desired, engine=args.engine, prune_volumes=args.prune_volumes,
                   adopt=args.adopt)
    return code


def cmd_apply(args: argparse.Namespace) -> int:
    saved = None
    if args.planfile:
        from ..planfile import read_plan

        saved = read_plan(Path(args.planfile))
        args.files = args.files or list(saved.sources)
        args.stack = saved.stack if args.stack is None else args.stack
        args.engine = args.engine or saved.engine
    reconciler = reconciler_of(args)
    desired = desired_of(args, reconciler)
    request = request_of(args, recreate_networks=args.recreate_networks, recreate_volumes=args.recreate_volumes,
                         adopt_compose=args.adopt_compose)
    if saved is not None:
        request = saved.request(request)
    return _apply(args, reconciler, desired, request)


def cmd_adopt(args: argparse.Namespace) -> int:
    """Take over the running Compose project of the stack's name, then apply (``--dry-run``: show it, change nothing)."""
    reconciler = reconciler_of(args)
    desired = desired_of(args, reconciler, check_options=args.dry_run)
    if args.dry_run:
        args.detailed_exitcode, args.adopt = False, False
        planned = _runner(args, reconciler, desired).plan(desired, prune_volumes=args.prune_volumes,
                                                         adopt_compose=True, **callbacks(args, changes=False))
        return show_plan(args, planned, vetoes=lambda plan: reconciler.vetoes(plan, desired))
    request = request_of(args, recreate_networks=args.recreate_networks, recreate_volumes=args.recreate_volumes,
                         adopt_compose=True)
    return _apply(args, reconciler, desired, request)


def _apply(args: argparse.Namespace, reconciler: Reconciler, desired, request: ApplyRequest) -> int:
    with _FinishOnSignals() as signals:
        request = dataclasses.replace(request, options=dataclasses.replace(request.options, stop=signals.stop))
        report = _runner(args, reconciler, desired).apply(desired, request, **callbacks(args))
    code = show_run(args, report)
    if signals.signum:
        print(f"interrupted by {signal.Signals(signals.signum).name}: the steps in flight were finished (or the old "
              "container put back), no other was started; run apply again to continue", file=sys.stderr)
        return 128 + signals.signum
    return code


class _FinishOnSignals:
    """SIGTERM or SIGINT during ``apply``: the steps in flight finish, none other starts (as ``watch`` finishes
    its pass), and the command says so; a second signal ends it at once. Only in the main thread."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signum = 0
        self._saved: dict[int, object] = {}

    def __enter__(self) -> _FinishOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if self.stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        self.stop.set()
        print(f"{signal.Signals(signum).name}: finishing the steps in flight, starting no other "
              "(again to stop at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)


def cmd_destroy(args: argparse.Namespace) -> int:
    reconciler = reconciler_of(args)
    desired = None if args.stack and not args.files else desired_of(args, reconciler, allow_empty=True)
    stack = require_stack_name(args.stack) if args.stack else desired.stack
    runtime = desired.runtime if desired is not None else None
    runner = _runner(args, reconciler, desired)
    return show_run(args, runner.destroy(stack, request_of(args), runtime=runtime, **callbacks(args)))


def cmd_status(args: argparse.Namespace) -> int:
    reconciler = reconciler_of(args)
    desired = desired_of(args, reconciler)
    return show_status(args, _runner(args, reconciler, desired).status(desired, detailed=args.detailed))


def _store(args: argparse.Namespace):
    from ..state import StateStore

    return StateStore.open(Path(args.state_dir) if args.state_dir else None)


def cmd_history(args: argparse.Namespace) -> int:
    from ..render import history_json, history_text

    with _store(args) as store:
        syncs = store.syncs(stack=args.stack, limit=args.limit)
    out(history_json(syncs) if args.output == "json" else history_text(syncs, str(store.path)))
    return 0


def cmd_suspend(args: argparse.Namespace) -> int:
    """``suspend`` or ``resume`` (``args.command``) a stack in the state directory."""
    suspend = args.command == "suspend"
    with _store(args) as store:
        (store.suspend if suspend else store.resume)(args.stack)
    out(f"stack {args.stack} {'suspended: the loops will plan it but apply nothing' if suspend else 'resumed'}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Hold (rollback) or release a daemon's stack; the daemon notices within its fetch interval."""
    from ..render import hold_text, release_text

    with _store(args) as store:
        if args.command == "release":
            store.release(args.stack)
            out(release_text(args.stack))
            return 0
        source = store.hold_at(args.stack, args.to, with_data=args.with_data)
    out(hold_text(args.stack, args.to, source, with_data=args.with_data))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from ..spec.validate import stack_schema

    reconciler = Reconciler(plugin_modules=args.plugin, strict_plugins=args.strict_plugins)
    out(json.dumps(stack_schema(reconciler.driver_catalog()), indent=2))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ..plugins import describe_plugins, load_driver_registry, make_plugin_manager
    from ..render import plugins_json, plugins_text

    pm = make_plugin_manager(modules=args.plugin, strict=args.strict_plugins)
    rows = describe_plugins(pm, load_driver_registry(pm))
    out(plugins_json(rows) if args.output == "json" else plugins_text(rows))
    return 0


def _stop_on_signals(*, then=lambda: None) -> threading.Event:
    """An event set by SIGTERM or SIGINT (then ``then()`` is called): the pass in flight finishes,
    nothing is left half-made."""
    import signal

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: (stop.set(), then()))
    return stop


def cmd_watch(args: argparse.Namespace) -> int:
    from ..filewatch import SpecWatcher
    from ..loop import LoopOptions, StackLoop, Trigger, is_news
    from ..render import pass_json, pass_text

    reconciler = reconciler_of(args)

    def on_pass(result) -> None:
        if args.output == "json":
            out(pass_json(result))
        elif is_news(result):
            out(pass_text(result))
        if loop.desired is not None:
            watcher.follow(loop.desired)

    loop = StackLoop(reconciler, lambda: desired_of(args, reconciler), request=request_of(args),
                     options=LoopOptions(resync=args.resync), on_pass=on_pass)
    stop = _stop_on_signals(then=loop.wake)
    watcher = SpecWatcher(files_of(args), lambda: loop.trigger(Trigger.FILES))
    watcher.start()
    try:
        loop.run(stop)
    finally:
        watcher.stop()
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    """Run the daemon, the one of its state directory; every pass is shown here as a line of text or JSON."""
    from ..daemon import load_config
    from ..daemon.statelock import hold_state_dir
    from ..state import StateStore

    config = load_config(args.config) if args.restore else dataclasses.replace(load_config(args.config), restore=False)
    state = StateStore.open(Path(config.state_dir), history=config.history)  # the directory made private first
    with hold_state_dir(Path(config.state_dir)):  # a second daemon stops here, before it fetches or listens
        return _run_daemon(args, config, state)


def _run_daemon(args: argparse.Namespace, config, state) -> int:
    """The daemon and its API until a signal; every pass shown as it ends (the daemon counts it itself)."""
    import json

    from ..daemon import Daemon
    from ..loop import is_news
    from ..render import pass_json, pass_text

    # The record of what the daemon creates lives in its state directory, beside the checkouts;
    # every stack's passes share one engine connection and the lists of the moment.
    pools = _address_pools(args) if args.default_address_pool is not None else config.default_address_pools
    reconciler = Reconciler(engine_url=config.engine, plugin_modules=args.plugin, strict_plugins=args.strict_plugins,
                            state=state, shared_engine=True, address_pools=pools)
    json_lines = (args.log_format or config.log_format) == "json"
    lock = threading.Lock()

    def on_pass(worker, result) -> None:
        if result.trusted:  # a resync that did not look: no sync to tell (reconciler_settled_passes_total counts it)
            return
        revision = worker.revision or worker.checkout.revision
        with lock:  # one line (or block) per pass, whatever thread it comes from
            if json_lines:
                out(pass_json(result, source=worker.source.name, path=worker.path, revision=revision or None,
                              held=worker.held))
            elif is_news(result):
                where = f"{worker.source.name}:{worker.path}" + (f"@{revision[:12]}" if revision else "") + (
                    " (held: reconcile release to follow the source again)" if worker.held else "")
                out(f"{where} " + pass_text(result))

    daemon = Daemon(config, reconciler=reconciler, on_pass=on_pass)
    server = None
    if config.api is not None:
        from ..daemon.server import build

        server = build(daemon, config.api, config.webhooks, daemon.metrics)
    stop = _stop_on_signals()
    if server is not None:
        url = server.start()
        with lock:
            out(json.dumps({"api": url}) if json_lines else f"api: listening on {url}")
    try:
        daemon.run(stop)
    finally:
        if server is not None:
            server.stop()
    return 0
