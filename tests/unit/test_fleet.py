"""Fleets: targets and placement in a spec (located errors, the model), and which targets a stack runs on."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.fleet import FLEET_RETRY, FleetReconciler, TargetState, select_targets
from reconciler.model import Fleet, Placement, Target
from reconciler.retry import RetryPolicy
from reconciler.spec import load_desired

BODY = "containers:\n  web: {image: busybox:latest}\n"


def write(directory: Path, text: str) -> Path:
    path = directory / "stack.yaml"
    path.write_text(text)
    return path


def problems(directory: Path, text: str) -> dict[str, tuple[int, str]]:
    with pytest.raises(SpecError) as caught:
        load_desired([write(directory, text)])
    return {p.path: (p.line, p.message) for p in caught.value.problems}


def test_targets_and_placement_become_the_fleet(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / "certs").mkdir(exist_ok=True)
        (tmp_path / "certs" / name).write_text("x")
    desired = load_desired([write(tmp_path, """\
name: web
targets:
  b: {engine: "tcp://10.0.0.2:2376", tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}}
  a: {engine: "unix:///run/a.sock", labels: {zone: east}}
  c: {engine: "ssh://deploy@c"}
placement: {labels: {zone: east}, count: 1, spread: rack}
""" + BODY)])
    fleet = desired.fleet
    assert [t.name for t in fleet.targets] == ["a", "b", "c"]
    assert fleet.targets[0].labels == {"zone": "east"}
    assert fleet.targets[1].tls.ca == str(tmp_path / "certs" / "ca.pem")
    assert fleet.placement == Placement(labels={"zone": "east"}, count=1, spread="rack")


def test_a_spec_without_targets_has_no_fleet(tmp_path: Path) -> None:
    assert load_desired([write(tmp_path, "name: web\n" + BODY)]).fleet is None


DAEMON_TARGETS = (Target("a", "unix:///run/a.sock", labels={"zone": "east"}), Target("b", "tcp://10.0.0.2:2375"))


def test_a_stack_without_targets_runs_on_the_daemons_and_places_itself_among_them(tmp_path: Path) -> None:
    desired = load_desired([write(tmp_path, "name: web\nplacement: {labels: {zone: east}}\n" + BODY)],
                           targets=DAEMON_TARGETS)
    assert desired.fleet == Fleet(DAEMON_TARGETS, Placement(labels={"zone": "east"}))
    own = load_desired([write(tmp_path, 'name: web\ntargets: {c: {engine: "ssh://deploy@c"}}\n' + BODY)],
                       targets=DAEMON_TARGETS)
    assert [t.name for t in own.fleet.targets] == ["c"]  # its own targets, not the daemon's
    with pytest.raises(SpecError) as caught:
        load_desired([write(tmp_path, "name: web\nplacement: {labels: {zone: west}}\n" + BODY)], targets=DAEMON_TARGETS)
    assert [(p.path, p.line, p.message) for p in caught.value.problems] == [
        ("placement.labels", 2, "no target carries zone=west")]


def test_fleet_errors_are_located(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
name: web
targets:
  a: {engine: "unix:///run/a.sock", labels: {zone: east}}
  b: {engine: "unix:///run/b.sock", tls: {ca: ca.pem, cert: c.pem, key: k.pem}}
  c: {engine: "http://c:2375"}
placement: {count: 0, colour: red}
""" + BODY)
    assert found["targets.b.tls"] == (4, "client certificates are for tcp:// engines only")
    assert found["targets.b.tls.ca"] == (4, f"no such file: {tmp_path / 'ca.pem'}")
    assert found["targets.c.engine"][0] == 5 and "unix:///path, tcp://host:port" in found["targets.c.engine"][1]
    assert found["placement.count"] == (6, "expected a number >= 1, got 0")
    assert found["placement.colour"][0] == 6


def test_placement_must_be_satisfiable(tmp_path: Path) -> None:
    head = 'name: web\ntargets:\n  a: {engine: "unix:///a", labels: {zone: east}}\n  b: {engine: "unix:///b"}\n'
    assert problems(tmp_path, head + "placement: {labels: {zone: west}}\n" + BODY) == {
        "placement.labels": (5, "no target carries zone=west")}
    assert problems(tmp_path, head + "placement: {labels: {zone: east}, count: 2}\n" + BODY) == {
        "placement.count": (5, "2 targets wanted, and only 1 match (a)")}
    assert problems(tmp_path, "name: web\nplacement: {count: 1}\n" + BODY) == {
        "placement": (2, "placement chooses among targets, and the stack names none (targets:)")}


def fleet(n: int, placement: Placement = Placement(), zones: int = 1) -> Fleet:
    return Fleet(tuple(Target(f"t{i}", f"unix:///t{i}", labels={"zone": f"z{i % zones}", "role": "web"})
                       for i in range(n)), placement)


def test_all_targets_by_default_and_by_label() -> None:
    assert [t.name for t in select_targets(fleet(3), "s")] == ["t0", "t1", "t2"]
    chosen = select_targets(fleet(4, Placement(labels={"zone": "z1"}), zones=2), "s")
    assert [t.name for t in chosen] == ["t1", "t3"]


def test_count_is_stable_and_spreads_stacks_over_the_fleet() -> None:
    five = fleet(5, Placement(count=2))
    picks = {stack: select_targets(five, stack) for stack in (f"stack{i}" for i in range(200))}
    assert all(len(p) == 2 for p in picks.values())
    assert all(select_targets(five, s) == p for s, p in picks.items())  # the same answer every run
    load = Counter(t.name for p in picks.values() for t in p)
    assert set(load) == {f"t{i}" for i in range(5)} and min(load.values()) > 50  # 80 each on average
    # A sixth target takes over some stacks and moves no other stack between the first five.
    six = Fleet(five.targets + (Target("t5", "unix:///t5"),), five.placement)
    for stack, before in picks.items():
        after = select_targets(six, stack)
        assert {t.name for t in after} - {"t5"} <= {t.name for t in before}


def test_spread_takes_each_value_of_the_label_before_a_second() -> None:
    zoned = fleet(6, Placement(count=3, spread="zone"), zones=3)
    for stack in (f"stack{i}" for i in range(50)):
        assert sorted(t.labels["zone"] for t in select_targets(zoned, stack)) == ["z0", "z1", "z2"]


def test_an_unreachable_target_is_retried_then_reported_and_the_others_converge(tmp_path: Path) -> None:
    from reconciler.errors import EngineUnreachable
    from reconciler.testing.memory import MemoryEngine, make_reconciler

    up, down = MemoryEngine(), MemoryEngine()
    down.fail("observe", EngineUnreachable("connection refused"), times=None)
    targets = Fleet((Target("up", "memory://up"), Target("down", "memory://down")))
    runner = FleetReconciler(targets, "web", plugin_manager=make_reconciler(up).pm, state=up.state,
                             retry=RetryPolicy(attempts=2, base=0.01, cap=0.01))
    runner.reconcilers = {"up": make_reconciler(up), "down": make_reconciler(down)}  # each its own engine
    seen = []
    report = runner.apply(load_desired([write(tmp_path, "name: web\n" + BODY)]), on_target=seen.append)
    states = {o.target.name: o for o in report.outcomes}
    assert states["up"].state is TargetState.CONVERGED and states["up"].attempts == 1
    assert "web-web-1" in up.containers and not down.containers
    assert states["down"].state is TargetState.UNREACHABLE and states["down"].attempts == 2
    assert states["down"].error.startswith("target down (memory://down): connection refused")
    assert not report.ok and sorted(o.target.name for o in seen) == ["down", "up"]
    assert FLEET_RETRY.attempts >= 2
