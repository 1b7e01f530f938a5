"""``plan --output markdown``: plans made on the in-memory engine, rendered for a pull request's comment.

What a reviewer reads: the summary line, the collapsible table, refusals and
warnings; no secret value; every cell escaped so a spec's value cannot break
the table or open a tag; the same plan gives the same text; the CLI's exit
codes (``--detailed-exitcode``) and its comment when no plan can be made.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.cli.parser import build_parser
from reconciler.fleet import FleetReconciler, TargetState
from reconciler.errors import EngineUnreachable
from reconciler.model import Fleet, Target
from reconciler.reconcile import ApplyRequest
from reconciler.render import plan_text
from reconciler.render_markdown import code_span, escape_text, failure_markdown, fleet_markdown, plan_markdown
from reconciler.retry import RetryPolicy
from reconciler.spec import load_desired
from reconciler.testing import MemoryEngine, make_reconciler

SECRET, OTHER = "hunter2-7f3e9a", "swordfish-c41d02"
SPEC = """\
name: shop
images: {base: {ref: "busybox:1", pull: always}}
volumes: {db: {options: {size: "1g"}}}
containers:
  db:
    image: base
    volumes: ["db:/data"]
    env: {PASSWORD: {value: "${PASSWORD}", secret: true}, MODE: "${MODE}"}
  web: {image: base}
"""


def spec(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


def desired(tmp_path: Path, reconciler, *, text: str = SPEC, password: str = SECRET, mode: str = "plain"):
    return load_desired([spec(tmp_path, text)], drivers=reconciler.driver_catalog(),
                        environ={"PASSWORD": password, "MODE": mode})


def applied(tmp_path: Path, engine: MemoryEngine, **env: str):
    """The spec applied on ``engine``, whose registry knows where the image's tag points (so a plan pulls
    again only when a test moves it)."""
    engine.registry.setdefault("busybox:1", "sha256:" + "a" * 64)
    reconciler = make_reconciler(engine)
    assert reconciler.apply(desired(tmp_path, reconciler, **env), ApplyRequest()).ok
    return reconciler


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def cells(row: str) -> list[str]:
    """A table row's cells as GitHub splits them: at every ``|`` not escaped by a backslash."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]


# -- what a plan looks like ------------------------------------------------------------------------------------

def test_a_new_stack_is_a_summary_line_then_a_collapsible_table_of_creations(tmp_path: Path) -> None:
    reconciler = make_reconciler(MemoryEngine())
    text = plan_markdown(reconciler.plan(desired(tmp_path, reconciler)).plan)
    lines = text.splitlines()
    assert lines[:3] == ["### Stack `shop`", "", "Plan: 5 to create, 0 to delete."]
    assert "<details><summary>Show 5 changes</summary>" in lines and lines[-1] == "</details>"
    rows = table_rows(text)
    assert cells(rows[0]) == ["Action", "Kind", "Name", "Reason", "Changes"]
    assert [cells(r)[:3] for r in rows[2:]] == [
        ["`+` pull", "image", "`busybox:1`"], ["`+` create", "network", "`shop_default`"],
        ["`+` create", "volume", "`shop_db`"], ["`+` create", "container", "`shop-db-1`"],
        ["`+` create", "container", "`shop-web-1`"]]
    assert cells(rows[3])[3] == "new"
    # A blank line after <summary> and before </details>: GitHub renders Markdown inside only then.
    assert lines[lines.index("<details><summary>Show 5 changes</summary>") + 1] == ""
    assert lines[-2] == ""


def test_a_converged_stack_says_so_in_one_line_and_has_no_table(tmp_path: Path) -> None:
    engine = MemoryEngine()
    reconciler = applied(tmp_path, engine)
    text = plan_markdown(reconciler.plan(desired(tmp_path, reconciler)).plan)
    assert text == "### Stack `shop`\n\nNo changes. The stack matches the spec."


def test_replace_update_and_delete_with_reasons_fields_and_what_forces_them(tmp_path: Path) -> None:
    engine = MemoryEngine()
    reconciler = applied(tmp_path, engine)
    engine.registry["busybox:1"] = "sha256:" + "b" * 64  # the tag moved upstream: the image is pulled again
    without_web = SPEC.replace("  web: {image: base}\n", "")
    plan = reconciler.plan(desired(tmp_path, reconciler, text=without_web, mode="debug")).plan
    text = plan_markdown(plan)
    assert "Plan: 0 to create, 1 to update, 1 to replace, 1 to delete." in text
    by_name = {cells(r)[2]: cells(r) for r in table_rows(text)[2:]}
    image = by_name["`busybox:1`"]
    assert image[:2] == ["`~` pull", "image"] and image[3].startswith("pull: tag moved upstream (sha256:")
    db = by_name["`shop-db-1`"]
    assert db[0] == "`-/+` replace" and "forced by `env.MODE`, `image`" in db[3]
    assert "`env.MODE: (was different) → \"debug\"`" in db[4].split("<br>")
    assert by_name["`shop-web-1`"][:4] == ["`-` delete", "container", "`shop-web-1`", "no longer in the spec"]
    assert "**Apply would be refused:**" not in text and "**Warnings:**" not in text


def test_a_blocked_change_is_a_warning_and_a_vetoed_plan_says_apply_would_refuse(tmp_path: Path) -> None:
    engine = MemoryEngine()
    reconciler = applied(tmp_path, engine)
    plan = reconciler.plan(desired(tmp_path, reconciler, text=SPEC.replace('"1g"', '"2g"'))).plan
    text = plan_markdown(plan, vetoes=["policy.yaml: no | volume changes on Friday"])
    refused = text.split("**Apply would be refused:**")[1].split("**Warnings:**")[0]
    assert refused.strip() == "- plugin policy: policy.yaml: no \\| volume changes on Friday"
    warnings = text.split("**Warnings:**")[1].strip().splitlines()
    assert warnings == ["- volume `shop_db`: blocked: volume shop\\_db must be recreated to change options.size; "
                        "rerun with --recreate-volumes (its data is lost)"]
    assert "**blocked:**" in {cells(r)[2]: cells(r) for r in table_rows(text)[2:]}["`shop_db`"][3]


def test_the_plans_notes_are_warnings_and_an_empty_plan_with_notes_still_says_no_changes(tmp_path: Path) -> None:
    engine = MemoryEngine()
    reconciler = applied(tmp_path, engine)
    without_volume = "name: shop\nimages: {base: {ref: \"busybox:1\", pull: always}}\ncontainers:\n  web: {image: base}\n"
    plan = reconciler.plan(load_desired([spec(tmp_path, without_volume)], drivers=reconciler.driver_catalog())).plan
    text = plan_markdown(plan)
    assert plan.notes and "Plan: 0 to create, 1 to delete." in text
    assert text.split("**Warnings:**")[1].strip().splitlines() == [f"- {escape_text(n)}" for n in plan.notes]


def test_a_takeover_is_its_own_table_before_the_changes() -> None:
    from reconciler.model import Kind
    from reconciler.plan import Plan, Takeover

    plan = Plan("shop", takeovers=(Takeover(Kind.VOLUME, "shop_db", "db", "adopt", reasons=("data kept",)),
                                   Takeover(Kind.CONTAINER, "shop-web-1", "web", "keep", renamed_from="shop_web_1")),
                left_alone=("container shop_run_1: a one-off run",))
    text = plan_markdown(plan)
    assert "Plan: 2 to take over, 0 to create, 0 to delete." in text and "Show 2 to take over" in text
    rows = [cells(r) for r in table_rows(text)]
    assert rows[0] == ["Takeover", "Kind", "Name", "Why", "Renamed from"]
    assert rows[2:] == [["adopt", "volume", "`shop_db`", "data kept", ""],
                        ["keep", "container", "`shop-web-1`", "", "`shop_web_1`"],
                        ["left", "", "", "container shop\\_run\\_1: a one-off run", ""]]


def test_a_name_taken_by_an_object_the_stack_does_not_own_is_a_refusal(tmp_path: Path) -> None:
    engine = MemoryEngine()
    stranger = make_reconciler(engine)
    other = "name: other\ncontainers:\n  x: {image: \"busybox:1\", container_name: shop-web-1}\n"
    assert stranger.apply(load_desired([spec(tmp_path, other)], drivers=stranger.driver_catalog()),
                          ApplyRequest()).ok
    reconciler = make_reconciler(engine)
    plan = reconciler.plan(desired(tmp_path, reconciler)).plan
    (taken,) = [c for c in plan.changes if c.error]
    text = plan_markdown(plan)
    refused = text.split("**Apply would be refused:**")[1].strip().splitlines()
    assert refused == [f"- container `shop-web-1`: {escape_text(taken.error)}"]


def test_a_secret_env_value_is_redacted_exactly_as_the_text_output_redacts_it(tmp_path: Path) -> None:
    engine = MemoryEngine()
    reconciler = applied(tmp_path, engine)
    plan = reconciler.plan(desired(tmp_path, reconciler, password=OTHER)).plan
    text, markdown = plan_text(plan), plan_markdown(plan, vetoes=[f"{plan.changes[0].name} changes"])
    assert SECRET not in markdown and OTHER not in markdown
    secret_lines = [line.strip() for line in text.splitlines() if "(secret)" in line]
    assert secret_lines == ["env.PASSWORD: + (secret)"]
    assert f"`{secret_lines[0]}`" in markdown


# -- escaping ----------------------------------------------------------------------------------------------------

NASTY = "a|b`c``d <b>x</b> &amp; *e* _f_ [g](h) ~i~ \\|"


def test_special_characters_in_a_value_stay_inside_their_cell(tmp_path: Path) -> None:
    engine = MemoryEngine()
    reconciler = applied(tmp_path, engine)
    plan = reconciler.plan(desired(tmp_path, reconciler, mode=NASTY + "\nsecond line")).plan
    text = plan_markdown(plan)
    for row in table_rows(text):
        assert len(cells(row)) == 5, row
    (db,) = [cells(r) for r in table_rows(text) if "`shop-db-1`" in r]
    # One code span per line of the value, its fence longer than any run of backticks inside, "|" escaped.
    assert db[4] == ('```env.MODE: (was different) → "a\\|b`c``d <b>x</b> &amp; *e* _f_ [g](h) ~i~ \\\\|```'
                     '<br>`second line"`')
    assert "<b>" not in text.replace(db[4], "")


def test_escape_text_makes_markup_literal_and_newlines_breaks() -> None:
    assert escape_text(NASTY) == ("a\\|b\\`c\\`\\`d &lt;b&gt;x&lt;/b&gt; &amp;amp; \\*e\\* \\_f\\_ \\[g\\](h) "
                                  "\\~i\\~ \\\\\\|")
    assert escape_text("one\ntwo\r\nthree\rfour") == "one<br>two<br>three<br>four"
    assert escape_text("</details>") == "&lt;/details&gt;"


def test_code_span_fences_backticks_and_pads_them_at_the_edges() -> None:
    assert code_span("plain") == "`plain`"
    assert code_span("a`b") == "``a`b``"
    assert code_span("`edge`") == "`` `edge` ``"
    assert code_span("  both  ") == "`   both   `"  # CommonMark strips one space each side
    assert code_span("x|y") == "`x\\|y`"
    assert code_span("") == ""


def test_an_error_is_a_code_block_no_line_of_it_can_close() -> None:
    text = failure_markdown("stack.yaml:3: bad\n```\n</details> `x`", stack="shop")
    assert text.splitlines() == ["### Stack `shop`", "", "**Plan failed:** nothing can be applied.", "",
                                 "````text", "stack.yaml:3: bad", "```", "</details> `x`", "````"]
    assert failure_markdown("no spec").startswith("### reconcile plan\n")


def test_the_same_plan_renders_the_same_text(tmp_path: Path) -> None:
    reconciler = make_reconciler(MemoryEngine())
    first = plan_markdown(reconciler.plan(desired(tmp_path, reconciler)).plan)
    again = make_reconciler(MemoryEngine())
    assert plan_markdown(again.plan(desired(tmp_path, again)).plan) == first


# -- fleets ------------------------------------------------------------------------------------------------------

def test_a_fleet_has_one_section_per_target_and_an_unreachable_one_says_why(tmp_path: Path, capsys) -> None:
    fresh, converged, down = MemoryEngine(), MemoryEngine(), MemoryEngine()
    applied(tmp_path, converged)
    down.fail("observe", EngineUnreachable("connection refused"), times=None)
    targets = Fleet((Target("fresh", "memory://fresh"), Target("same", "memory://same"),
                     Target("down", "tcp://10.0.0.9:2375")))
    runner = FleetReconciler(targets, "shop", plugin_manager=make_reconciler(fresh).pm, state=fresh.state,
                             retry=RetryPolicy(attempts=1, base=0.01, cap=0.01))
    runner.reconcilers = {"fresh": make_reconciler(fresh), "same": make_reconciler(converged),
                          "down": make_reconciler(down)}
    report = runner.plan(desired(tmp_path, runner.reconcilers["fresh"]))
    assert [o.state for o in report.outcomes] == [TargetState.CHANGES, TargetState.CONVERGED,
                                                  TargetState.UNREACHABLE]
    text = fleet_markdown(report)
    sections = text.split("\n#### ")
    assert sections[0] == "### Stack `shop` on 3 targets\n\n1 with changes, 1 without, 1 failed.\n"
    assert sections[1].startswith("Target `fresh`\n\nPlan: 5 to create, 0 to delete.\n\n<details>")
    assert sections[2] == "Target `same`\n\nNo changes. The stack matches the spec.\n"
    assert sections[3].startswith("Target `down`: unreachable\n\n```text\ntarget down (")
    assert "connection refused" in sections[3] and sections[3].endswith("\n```")
    # The command prints it whole at the end (no target's text as it finishes): 1, as a target failed.
    from reconciler.cli.views import callbacks, show_plan

    argv = ["plan", "--output", "markdown", "--detailed-exitcode"]
    args = build_parser(argv).parse_args(argv)
    assert callbacks(args, changes=False) == {}
    assert show_plan(args, report, vetoes=lambda plan: []) == 1
    assert capsys.readouterr().out == text + "\n"
    runner.targets = runner.targets[:2]
    assert show_plan(args, runner.plan(desired(tmp_path, runner.reconcilers["fresh"])), vetoes=lambda plan: []) == 2


# -- the command line --------------------------------------------------------------------------------------------

def test_the_plan_command_offers_markdown_output() -> None:
    argv = ["plan", "--output", "markdown", "--detailed-exitcode"]
    args = build_parser(argv).parse_args(argv)
    assert args.output == "markdown" and args.detailed_exitcode
    with pytest.raises(SystemExit):
        build_parser(["apply"]).parse_args(["apply", "--output", "markdown"])


@pytest.fixture
def cli_engine(monkeypatch):
    """``reconcile`` run through ``main`` against one in-memory engine (the command's own flags otherwise)."""
    engine = MemoryEngine()
    engine.registry["busybox:1"] = "sha256:" + "a" * 64
    monkeypatch.setattr("reconciler.cli.local.reconciler_of", lambda args: make_reconciler(engine))
    return engine


def test_the_command_prints_one_comment_and_detailed_exitcode_says_whether_changes_are_pending(
        tmp_path: Path, cli_engine: MemoryEngine, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PASSWORD", SECRET)
    monkeypatch.setenv("MODE", "plain")
    path = str(spec(tmp_path))
    saved = tmp_path / "plan.json"
    assert main(["plan", "-f", path, "--output", "markdown", "--detailed-exitcode", "--out", str(saved)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("### Stack `shop`\n\nPlan: 5 to create, 0 to delete.\n") and out.count("### ") == 1
    assert SECRET not in out and SECRET not in saved.read_text()
    assert main(["apply", str(saved)]) == 0
    capsys.readouterr()
    assert main(["plan", "-f", path, "--output", "markdown", "--detailed-exitcode"]) == 0
    assert capsys.readouterr().out == "### Stack `shop`\n\nNo changes. The stack matches the spec.\n"


def test_registry_credentials_in_an_error_are_redacted_in_the_comment_as_on_stderr(
        tmp_path: Path, cli_engine, capsys, monkeypatch) -> None:
    """A registry's password is registered when its credentials are read; a driver's error that quotes it
    (here a pull refused while planning) reaches neither the comment nor the error line."""
    from reconciler.errors import PermanentError
    from reconciler.reconcile import Reconciler
    from reconciler.redact import register_secrets

    def refused(self, desired, **flags):
        raise PermanentError("registry.local: login bot:registry-token-51f0 refused")

    monkeypatch.setattr(Reconciler, "plan", refused)
    monkeypatch.setenv("PASSWORD", SECRET)
    monkeypatch.setenv("MODE", "plain")
    register_secrets(["registry-token-51f0"])  # forgotten after the test (conftest)
    assert main(["plan", "-f", str(spec(tmp_path)), "--output", "markdown"]) == 1
    captured = capsys.readouterr()
    assert "registry-token-51f0" not in captured.out + captured.err
    assert "login bot:(secret) refused" in captured.out and "login bot:(secret) refused" in captured.err


def test_a_plan_that_cannot_be_made_is_still_a_comment_and_exits_1(tmp_path: Path, cli_engine, capsys) -> None:
    path = str(spec(tmp_path, "name: shop\nvolumes: {db: {external: true}}\n"
                              "containers:\n  db: {image: \"busybox:1\", volumes: [\"db:/data\"]}\n"))
    assert main(["plan", "-f", path, "--output", "markdown", "--detailed-exitcode"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("### Stack `shop`\n\n**Plan failed:** nothing can be applied.\n\n```text\n")
    assert "external volume 'db' does not exist" in captured.out and captured.err.startswith("error: ")
    broken = str(spec(tmp_path, "containers: {web: {image: nowhere}}\n"))
    assert main(["plan", "-f", broken, "--output", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("### reconcile plan\n\n**Plan failed:**") and "image 'nowhere' is not defined" in out
