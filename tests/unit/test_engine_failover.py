"""Which engine of a list of swarm managers a pass may use (pure: the /info answers are given)."""
from __future__ import annotations

import pytest

from reconciler.sdk.docker import engine_urls, failover_problem

M1, M2, M3 = "tcp://10.232.0.14:2375", "tcp://10.232.0.15:2375", "tcp://10.232.0.16:2375"


def manager(*addresses: str) -> dict:
    return {"LocalNodeState": "active", "ControlAvailable": True, "Cluster": {"ID": "c1"},
            "RemoteManagers": [{"NodeID": f"n{i}", "Addr": f"{a}:2377"} for i, a in enumerate(addresses)]}


WORKER = {"LocalNodeState": "active", "ControlAvailable": False,
          "RemoteManagers": [{"NodeID": "n0", "Addr": "10.232.0.14:2377"}]}
ALONE = {"LocalNodeState": "inactive", "ControlAvailable": False}


def test_a_list_is_comma_separated_and_one_url_is_one():
    assert engine_urls(f"{M1}, {M2},") == [M1, M2]
    assert engine_urls(M1) == [M1]
    assert engine_urls(None) == [] and engine_urls("") == []


def test_the_first_url_is_used_as_it_is_unless_a_worker_is_named_before_other_managers():
    assert failover_problem(manager("10.232.0.14"), [], more=True, first=True) is None
    assert failover_problem(ALONE, [], more=True, first=True) is None  # no swarm: the engine the user named
    assert failover_problem(WORKER, [], more=False, first=True) is None
    assert failover_problem(WORKER, [], more=True, first=True) == "a swarm node that is not a manager"


def test_a_later_manager_is_used_when_its_swarm_lists_every_url_that_did_not_answer():
    swarm = manager("10.232.0.14", "10.232.0.15", "10.232.0.16")
    assert failover_problem(swarm, [M1], more=True, first=False) is None
    assert failover_problem(swarm, [M1, M2], more=False, first=False) is None


def test_another_swarm_or_a_non_manager_is_refused_saying_why():
    other = manager("10.9.9.1", "10.232.0.15")
    assert "does not list tcp://10.232.0.14:2375 among its managers" in failover_problem(other, [M1], more=False,
                                                                                          first=False)
    assert "not a manager" in failover_problem(WORKER, [M1], more=False, first=False)
    assert "not a manager" in failover_problem(ALONE, [M1], more=False, first=False)


def test_a_socket_url_cannot_be_vouched_for():
    problem = failover_problem(manager("10.232.0.14"), ["unix:///var/run/docker.sock"], more=False, first=False)
    assert problem is not None and "tcp:// or ssh://" in problem


@pytest.mark.parametrize("url", ["tcp://localhost:2375", "ssh://admin@127.0.0.1"])
def test_a_manager_named_by_host_name_matches_its_address(url):
    assert failover_problem(manager("127.0.0.1"), [url], more=False, first=False) is None


def test_after_a_worker_named_first_another_url_must_still_be_a_manager(monkeypatch):
    # The worker answered (it was not "down"), so the next URL is no longer first: it is vouched for as a failover.
    from reconciler.testing.fakedocker import FakeDockerAPI
    from reconciler.sdk.docker import _connection as connection

    answers = {M1: WORKER, M2: ALONE}
    monkeypatch.setattr(connection, "_open_one",
                        lambda url, tls, answer: connection.Engine(FakeDockerAPI(), "", swarm=answers[url]))
    with pytest.raises(connection.FailoverRefused) as refused:
        connection.open_engine(f"{M1},{M2}")
    assert f"{M1}: a swarm node that is not a manager" in str(refused.value)
    assert f"{M2}: not a manager of a swarm" in str(refused.value)
    answers[M2] = manager("10.232.0.14", "10.232.0.15")
    assert connection.open_engine(f"{M1},{M2}").swarm is answers[M2]
