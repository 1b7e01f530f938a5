"""``fresh_read``: one read per key for the passes of one moment, never one that started before the pass did."""
from __future__ import annotations

import threading
import time

from reconciler.drivers import DriverContext, fresh_read


class Fetch:
    """A fetch that counts its calls, and can be held until a test lets it answer."""

    def __init__(self, *, hold: bool = False) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.failures: list[Exception] = []  # what the next calls raise, in order
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.calls += 1
            answer = self.calls
            failure = self.failures.pop(0) if self.failures else None
        self.started.set()
        assert self.release.wait(10)
        if failure is not None:
            raise failure
        return answer


def _pass(shared: dict | None, stack: str = "s") -> DriverContext:
    """A context whose observe pass starts now, as the core starts one."""
    context = DriverContext(stack, engine_shared=shared)
    context.fresh_after = time.monotonic()
    return context


def _in_threads(n: int, work) -> list:
    answers: list = [None] * n

    def run(i: int) -> None:
        try:
            answers[i] = work(i)
        except Exception as exc:  # the test looks at it
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return answers


def test_without_a_shared_engine_it_reads_once_per_pass():
    fetch = Fetch()
    context = _pass(None)
    assert _in_threads(8, lambda i: fresh_read(context, "k", fetch)) == [1] * 8
    assert fetch.calls == 1
    context.pass_cache.clear()  # the next pass
    assert fresh_read(context, "k", fetch) == 2


def test_a_pass_never_takes_an_answer_that_started_before_it():
    shared: dict = {}
    fetch = Fetch()
    first = _pass(shared)
    assert fresh_read(first, "k", fetch) == 1
    assert fresh_read(first, "k", fetch) == 1  # the same pass, or any that started before the read: no new read
    later = _pass(shared)  # its previous pass wrote: it must see a list made after it started
    assert fresh_read(later, "k", fetch) == 2
    assert fresh_read(first, "k", fetch) == 2  # the newest answer serves every pass it is fresh enough for
    assert fresh_read(_pass(shared), "other", fetch) == 3  # keys are read apart


def test_passes_of_one_moment_share_one_read_in_flight():
    shared: dict = {}
    fetch = Fetch(hold=True)
    passes = [_pass(shared, f"s{i}") for i in range(20)]
    reader = threading.Thread(target=fresh_read, args=(passes[0], "k", fetch))
    reader.start()
    assert fetch.started.wait(5)
    # Every pass started before the read in flight: they wait for its answer, no second read.
    waiting = threading.Thread(target=lambda: _in_threads(19, lambda i: fresh_read(passes[i + 1], "k", fetch)))
    waiting.start()
    time.sleep(0.2)
    assert fetch.calls == 1
    fetch.release.set()
    reader.join(5)
    waiting.join(10)
    assert fetch.calls == 1


def test_passes_that_start_during_a_read_wait_for_it_then_share_one_newer_read():
    shared: dict = {}
    fetch = Fetch(hold=True)
    early = _pass(shared)
    reader = threading.Thread(target=fresh_read, args=(early, "k", fetch))
    reader.start()
    assert fetch.started.wait(5)
    late = [_pass(shared, f"late{i}") for i in range(8)]  # started after the read in flight did
    answers: list = []
    waiting = threading.Thread(target=lambda: answers.extend(_in_threads(8, lambda i: fresh_read(late[i], "k",
                                                                                                   fetch))))
    waiting.start()
    time.sleep(0.2)
    assert fetch.calls == 1  # at most one read in flight: they wait for it to end
    fetch.release.set()
    reader.join(5)
    waiting.join(10)
    assert fetch.calls == 2 and answers == [2] * 8  # then one newer read, for all of them


def test_a_failed_read_is_not_remembered():
    shared: dict = {}
    fetch = Fetch(hold=True)
    fetch.failures = [ConnectionError("engine gone")]
    context = _pass(shared)
    others = [_pass(shared, f"o{i}") for i in range(4)]
    first: list = []
    reader = threading.Thread(target=lambda: first.extend(_in_threads(1, lambda i: fresh_read(context, "k", fetch))))
    reader.start()
    assert fetch.started.wait(5)
    waiting: list = []
    thread = threading.Thread(target=lambda: waiting.extend(_in_threads(4, lambda i: fresh_read(others[i], "k",
                                                                                                 fetch))))
    thread.start()
    time.sleep(0.1)
    fetch.release.set()
    reader.join(5)
    thread.join(10)
    assert fetch.calls == 1 and all(isinstance(answer, ConnectionError) for answer in first + waiting)  # one error
    assert fresh_read(context, "k", fetch) == 2  # the next read reads again
    assert fresh_read(_pass(None), "k", Fetch()) == 1


def test_a_waiter_whose_older_read_failed_reads_again_for_itself():
    shared: dict = {}
    fetch = Fetch(hold=True)
    fetch.failures = [ConnectionError("engine gone")]
    early = _pass(shared)
    first: list = []
    reader = threading.Thread(target=lambda: first.extend(_in_threads(1, lambda i: fresh_read(early, "k", fetch))))
    reader.start()
    assert fetch.started.wait(5)
    late = _pass(shared)  # the failed read started before it: not its answer, nor its error
    answer: list = []
    thread = threading.Thread(target=lambda: answer.append(fresh_read(late, "k", fetch)))
    thread.start()
    time.sleep(0.1)
    fetch.release.set()
    reader.join(5)
    thread.join(5)
    assert isinstance(first[0], ConnectionError) and answer == [2]
