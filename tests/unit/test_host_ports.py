"""Two containers of one stack publishing one host port are refused at validate, at the second one's line."""
from __future__ import annotations

import pytest

from reconciler.errors import SpecError
from reconciler.spec import load_desired


def _problems(tmp_path, containers: str) -> list:
    spec = tmp_path / "stack.yaml"
    spec.write_text("name: ports\ncontainers:\n" + containers)
    with pytest.raises(SpecError) as caught:
        load_desired([spec])
    return caught.value.problems


def _loads(tmp_path, containers: str) -> None:
    spec = tmp_path / "stack.yaml"
    spec.write_text("name: ports\ncontainers:\n" + containers)
    load_desired([spec])


def test_a_host_port_published_by_two_containers_is_refused_at_the_second_naming_the_first(tmp_path):
    problems = _problems(tmp_path, """\
  a:
    image: x:1
    ports: ["8080:80"]
  b:
    image: x:1
    ports:
      - "9000:90"
      - {target: 81, published: 8080}
""")
    assert len(problems) == 1, problems
    (problem,) = problems
    assert (problem.path, problem.line) == ("containers.b.ports[1]", 10)
    assert problem.file.endswith("stack.yaml")
    assert "host port 8080/tcp is already published by containers.a.ports[0]" in problem.message


def test_every_address_clashes_with_one_address_of_the_same_port(tmp_path):
    problems = _problems(tmp_path, """\
  a: {image: "x:1", ports: ["127.0.0.1:8080:80"]}
  b: {image: "x:1", ports: ["8080:80"]}
""")
    assert [p.path for p in problems] == ["containers.b.ports[0]"]
    assert "127.0.0.1:8080" not in problems[0].message and "containers.a.ports[0]" in problems[0].message


def test_replicas_publishing_one_host_port_are_refused_at_the_port(tmp_path):
    problems = _problems(tmp_path, """\
  a:
    image: x:1
    replicas: 2
    ports: ["80", "127.0.0.1:8080:80"]
""")
    assert [(p.path, p.line) for p in problems] == [("containers.a.ports[1]", 6)]
    assert "each of the 2 replicas" in problems[0].message


def test_ephemeral_ports_other_addresses_and_protocols_do_not_clash(tmp_path):
    _loads(tmp_path, """\
  a: {image: "x:1", replicas: 3, ports: ["80", "8000-8001"]}
  b: {image: "x:1", ports: ["80", "9000:90", "127.0.0.1:9000:90/udp", "127.0.0.2:9001:90"]}
  c: {image: "x:1", ports: ["127.0.0.1:9001:90", {target: 90, published: 9000, protocol: udp, host_ip: "::1"}]}
""")
