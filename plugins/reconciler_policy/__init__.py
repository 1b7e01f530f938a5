"""Built-in policy plugin: refuses a plan whose desired state breaks the operator's rules.

It exists to prove the ``reconciler_plan_ready`` veto hook with a real use:
an operator points ``RECONCILER_POLICY_FILE`` at a YAML file of rules (deny
privileged containers, host networking, the Docker socket, host paths; allow-lists
for host paths and registries), and an apply that breaks any of them is refused before
the first write, with every violation listed. See ``docs/policy.md``.

Declared in the ``reconciler`` entry-point group like any third-party plugin.
Without the variable it allows everything; with a broken file it refuses
everything, because a gate that fails open is no gate.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from reconciler.sdk import hookimpl

if TYPE_CHECKING:
    from reconciler.sdk import DesiredState, Plan

__all__ = ["POLICY_ENV", "RECONCILER_API_VERSION", "Policy", "PolicyFileError", "check_policy", "load_policy",
           "reconciler_plan_ready", "registry_of"]

RECONCILER_API_VERSION = 2
POLICY_ENV = "RECONCILER_POLICY_FILE"
_LAZY = {"Policy": "rules", "PolicyFileError": "rules", "load_policy": "rules", "registry_of": "checks"}


def __getattr__(name: str):
    # Every reconcile loads this plugin; only one with a policy file pays for its rules.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_policy(path: str, desired: DesiredState) -> str | None:
    """None when ``desired`` complies with the policy file at ``path``, else the veto reason.

    The reason lists every violation, one per line; a policy file that cannot be
    read or understood is itself a reason naming the file and the problem. A
    desired state without containers (a destroy) cannot break any rule, so it is
    allowed without reading the file: a typo in the policy never blocks a teardown.
    """
    if not desired.containers:
        return None
    from .checks import find_violations
    from .rules import PolicyFileError, load_policy

    try:
        policy = load_policy(path)
    except PolicyFileError as exc:
        return str(exc)
    try:
        violations = find_violations(policy, desired)
    except Exception as exc:  # fail closed: a bug here must refuse, not allow or crash the apply
        return f"policy file {path}: the policy plugin could not check the plan ({type(exc).__name__}: {exc})"
    return "\n".join(violations) or None


@hookimpl
def reconciler_plan_ready(plan: Plan, desired: DesiredState) -> str | None:
    """Veto the plan when the desired state breaks the policy in ``RECONCILER_POLICY_FILE``.

    The variable is read on every call so that each process (and each test) can
    choose its own policy; unset or empty means no policy, and every plan is allowed.
    """
    path = os.environ.get(POLICY_ENV, "").strip()
    if not path:
        return None
    return check_policy(path, desired)
