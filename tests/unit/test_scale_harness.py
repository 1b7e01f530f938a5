"""reconciler.testing.scale without an engine: the stacks and daemon.yaml it writes, /proc, percentiles, paging."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.daemon.config import load_config
from reconciler.spec import load_desired
from reconciler.testing import scale


def desired(setup: scale.ScaleSetup, i: int):
    return load_desired([setup.work / setup.paths[i] / "stack.yaml"], environ={})


def test_one_source_lists_every_stack_and_each_stack_is_one_container_on_its_default_network(tmp_path: Path) -> None:
    setup = scale.make_stacks(tmp_path, 3, sources="one")
    config = load_config(str(setup.config))
    assert [len(source.paths) for source in config.sources] == [3]
    state = desired(setup, 2)
    assert state.stack == setup.names[2] and list(state.containers) == [f"{setup.names[2]}-web-1"]
    assert list(state.networks) == ["default"] and state.networks["default"].name == f"{setup.names[2]}_default"
    assert setup.git("status", "--porcelain") == "" and setup.git("ls-remote", str(setup.remote), "main")


def test_many_sources_have_one_path_each_and_the_daemon_defaults_are_left_alone(tmp_path: Path) -> None:
    setup = scale.make_stacks(tmp_path, 3, sources="many", default_network=False)
    text = setup.config.read_text()
    assert [source.paths for source in load_config(str(setup.config)).sources] == [(p,) for p in setup.paths]
    assert '"workers"' not in text and '"resync"' not in text and '"interval": 1' in text
    assert desired(setup, 0).networks == {}  # network_mode: none
    assert oct(Path(setup.root / "tokens").stat().st_mode & 0o777) == "0o600"


def test_sources_must_be_one_or_many(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'one' or 'many'"):
        scale.make_stacks(tmp_path, 1, sources="some")


def test_sample_reads_this_process(tmp_path: Path) -> None:
    got = scale.sample(os.getpid())
    assert got.rss_mib > 1 and got.threads >= 1 and got.fds >= 3 and got.cpu_seconds > 0
    assert 0 <= scale.idle_cpu(os.getpid(), 0.05) < 150


def test_percentiles_are_nearest_rank() -> None:
    timings = scale.Percentiles(tuple(float(x) for x in range(1, 101)))
    assert (timings.p50, timings.p99, scale.Percentiles((3.0,)).p99) == (50.0, 99.0, 3.0)


def test_next_link_follows_rel_next_only() -> None:
    base = "http://127.0.0.1:1"
    assert scale._next_link(f'<{base}/api/stacks?after=x>; rel="next"', base) == "/api/stacks?after=x"
    assert scale._next_link('</api/stacks?page=1>; rel="prev", </api/stacks?page=3>; rel="next"', base) \
        == "/api/stacks?page=3"
    assert scale._next_link("", base) == ""


def test_passes_sums_every_result() -> None:
    from prometheus_client.parser import text_string_to_metric_families
    text = ('# TYPE reconciler_syncs_total counter\nreconciler_syncs_total{stack="a",result="converged"} 2.0\n'
            'reconciler_syncs_total{stack="b",result="failed"} 1.0\n')
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert scale.passes(families) == 3 and scale.passes({}) == 0


def test_a_repair_ends_at_the_start_event_of_another_container_of_the_victims_name():
    import threading
    import time as clock

    from reconciler.testing import scaledrift

    release = threading.Event()

    class Stream:
        def __iter__(self):
            release.wait(5)
            for cid, name in (("old", "web"), ("other", "db"), ("new", "web")):
                yield {"id": cid, "Actor": {"Attributes": {"name": name}}}

        def close(self):
            release.set()

    class Client:
        def events(self, **kwargs):
            assert kwargs["filters"] == {"type": "container", "event": "start"}
            return Stream()

    starts = scaledrift._Starts(Client())
    before = clock.monotonic()
    release.set()
    at = starts.wait("web", "old", before, timeout=5)  # the victim's own start (an echo) does not count
    assert at >= before
    with pytest.raises(TimeoutError):
        starts.wait("db", "other", before, timeout=0.2)  # only its own id started: not back
    starts.close()
