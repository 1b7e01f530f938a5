"""Plans as Markdown, for a pull request's review comment (``reconcile plan --output markdown``).

A reviewer reads a plan where the change is discussed, as Atlantis posts
Terraform's: one summary line, then the changes in a collapsible table
(action, kind, name, reason, changed fields), then what would refuse the
apply and what deserves a second look. It is kept apart from ``render``
(text and JSON for a terminal and for programs) because a forge renders
Markdown and some HTML: every value that comes from a spec or an engine is
escaped here, so a ``|``, a backtick, a ``<`` or a newline in an env value
shows as itself and never breaks the table or opens a tag. Field values sit
in code spans (no mentions, links or emoji are made of them); reasons are
escaped text.

Values are those the text output shows: redacted by the planner (a secret
env value reads ``(secret)``); nothing here sees a secret, and an error's
text is redacted as the CLI's error line is. The output holds no time, so
the same plan gives the same comment.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from .explain import render_field
from .model import Kind
from .plan import Action, Change, Plan, Takeover
from .redact import redact
from .render import _SYMBOL, _VERB

__all__ = ["code_span", "escape_text", "failure_markdown", "fleet_markdown", "plan_markdown", "summary_line"]

#: The counts a summary always names, as Terraform's "to add, to change, to destroy"; the others when not zero.
_ALWAYS = (Action.CREATE, Action.DELETE)
_NEWLINE = re.compile(r"\r\n|\r|\n")
#: Characters that mean something to Markdown inside a line (``|`` ends a table cell).
_MARKUP = re.compile(r"([\\`*_\[\]|~])")


def escape_text(text: str) -> str:
    """``text`` as literal Markdown for a table cell: markup characters escaped, HTML's as entities,
    newlines as ``<br>``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "<br>".join(_MARKUP.sub(r"\\\1", line) for line in _NEWLINE.split(text))


def code_span(text: str) -> str:
    """``text`` as code in a table cell, one code span per line joined by ``<br>``.

    The fence is one backtick longer than the longest run inside; a ``|`` is
    escaped even there, as GitHub's tables require (it still shows as ``|``).
    """
    return "<br>".join(_code_line(line) for line in _NEWLINE.split(text))


def _code_line(line: str) -> str:
    if not line:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", line)), default=0) + 1)
    padded = line.startswith("`") or line.endswith("`") or (line[0] == line[-1] == " " and bool(line.strip()))
    inner = f" {line} " if padded else line
    return fence + inner.replace("|", r"\|") + fence


def summary_line(plan: Plan) -> str:
    """``Plan: 2 to create, 1 to replace, 0 to delete.``, or ``No changes. The stack matches the spec.``"""
    if plan.empty:
        if plan.drifted:
            return ("No changes to apply, but the writable layer of "
                    f"{', '.join(code_span(name) for name in plan.drifted)} changed (see the notes).")
        return "No changes. The stack matches the spec."
    counts = plan.counts()
    parts = [f"{counts.get(action.value, 0)} to {action.value}" for action in Action
             if counts.get(action.value) or action in _ALWAYS]
    if plan.takeovers:
        parts.insert(0, f"{len(plan.takeovers)} to take over")
    return f"Plan: {', '.join(parts)}."


def plan_markdown(plan: Plan, *, vetoes: Sequence[str] = ()) -> str:
    """One stack's plan as a review comment: a heading naming the stack, the summary line, the changes
    in a collapsible table, then what would refuse the apply (``vetoes``: plugin policy; a change's error)
    and the warnings (blocked changes, the plan's notes)."""
    lines = [f"### Stack {code_span(plan.stack)}", "", summary_line(plan)]
    return "\n".join(lines + _body(plan, vetoes))


def _body(plan: Plan, vetoes: Sequence[str]) -> list[str]:
    lines: list[str] = []
    if not plan.empty:
        lines += ["", f"<details><summary>{_details_label(plan)}</summary>", ""]
        lines += _takeover_table(plan)
        if plan.changes:
            lines += _change_table(plan.changes)
        lines += ["", "</details>"]
    refused = [f"plugin policy: {escape_text(line)}" for line in vetoes]
    refused += [f"{_object(c)}: {escape_text(c.error)}" for c in plan.changes if c.error]
    lines += _list("Apply would be refused:", refused)
    warnings = [f"{_object(c)}: blocked: {escape_text(c.blocked)}" for c in plan.changes if c.blocked]
    warnings += [escape_text(note) for note in plan.notes]
    lines += _list("Warnings:", warnings)
    return lines


def _details_label(plan: Plan) -> str:
    parts = []
    if plan.changes:
        parts.append(f"{len(plan.changes)} change{'s' if len(plan.changes) != 1 else ''}")
    if plan.takeovers:
        parts.append(f"{len(plan.takeovers)} to take over")
    return "Show " + " and ".join(parts)


def _list(title: str, items: list[str]) -> list[str]:
    return ["", f"**{title}**", "", *(f"- {item}" for item in items)] if items else []


def _object(change: Change) -> str:
    return f"{_kind(change)} {code_span(change.name)}"


def _kind(change: Change) -> str:
    return "service" if change.scheduled else change.kind.value


def _change_table(changes: Sequence[Change]) -> list[str]:
    rows = [_row(_action(c), _kind(c), code_span(c.name), _reasons(c), _fields(c)) for c in changes]
    return [_row("Action", "Kind", "Name", "Reason", "Changes"), _row(*["---"] * 5), *rows]


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _action(change: Change) -> str:
    verb = change.reason.image_verb if change.kind is Kind.IMAGE else _VERB[change.action]
    return f"{code_span(_SYMBOL[change.action])} {verb}"


def _reasons(change: Change) -> str:
    """The change's reasons as the text shows them, then what forces it, its rollout, and why it cannot run."""
    parts = [escape_text(reason) for reason in change.reasons if reason != "new" or change.error]
    if change.forced_by and change.action is Action.REPLACE:
        parts.append("forced by " + ", ".join(code_span(field) for field in change.forced_by))
    if change.rollout is not None:
        why = f" ({change.rollout.why})" if change.rollout.why != "default" else ""
        parts.append(escape_text(f"rollout: {change.rollout.order}{why}"))
    if change.blocked:
        parts.append(f"**blocked:** {escape_text(change.blocked)}")
    if change.error:
        parts.append(f"**error:** {escape_text(change.error)}")
    return "<br>".join(parts) or escape_text(change.reason.value)


def _fields(change: Change) -> str:
    return "<br>".join(code_span(line) for field in change.fields for line in render_field(field))


def _takeover_table(plan: Plan) -> list[str]:
    """What ``adopt`` takes over from the Compose project, before the changes (``plan --adopt-compose``)."""
    if not plan.takeovers and not plan.left_alone:
        return []
    rows = [_takeover_row(taken) for taken in plan.takeovers]
    rows += [_row("left", "", "", escape_text(line), "") for line in plan.left_alone]
    return [_row("Takeover", "Kind", "Name", "Why", "Renamed from"), _row(*["---"] * 5), *rows, ""]


def _takeover_row(taken: Takeover) -> str:
    renamed = code_span(taken.renamed_from) if taken.renamed_from else ""
    return _row(escape_text(taken.verdict), taken.kind.value, code_span(taken.name),
                "<br>".join(escape_text(r) for r in taken.reasons), renamed)


def failure_markdown(message: str, *, stack: str | None = None) -> str:
    """A plan that could not be made (an invalid spec, a missing external object, an engine that did not
    answer), as a comment: what the CLI says on stderr, in a code block. ``message`` must be redacted."""
    title = f"Stack {code_span(stack)}" if stack else "reconcile plan"
    return "\n".join([f"### {title}", "", "**Plan failed:** nothing can be applied.", "", *_block(message)])


def _block(text: str) -> list[str]:
    """``text`` verbatim in a fenced block whose fence no line of it can close."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return [f"{fence}text", *text.splitlines(), fence]


def fleet_markdown(report: Any) -> str:
    """A fleet's plan (a ``fleet.FleetReport``, a front end's: not imported here) as one comment: the stack,
    how its targets stand, then one section per target."""
    outcomes = report.outcomes
    pending = sum(1 for o in outcomes if o.ok and o.plan is not None and not o.plan.empty)
    failed = sum(1 for o in outcomes if not o.ok)
    lines = [f"### Stack {code_span(report.stack)} on {len(outcomes)} target{'s' if len(outcomes) != 1 else ''}",
             "", f"{pending} with changes, {len(outcomes) - pending - failed} without, {failed} failed."]
    for outcome in outcomes:
        lines += ["", _target_markdown(outcome)]
    return "\n".join(lines)


def _target_markdown(outcome: Any) -> str:
    """One target's section, headed by its name (not its engine's address): its plan, or why it has none
    (the error the text output shows, redacted)."""
    title = f"#### Target {code_span(outcome.target.name)}"
    if outcome.plan is None or not outcome.ok:
        error = redact(outcome.error or outcome.state.value)
        return "\n".join([f"{title}: {outcome.state.value}", "", *_block(error)])
    return "\n".join([title, "", summary_line(outcome.plan), *_body(outcome.plan, ())])
