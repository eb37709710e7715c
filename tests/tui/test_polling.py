"""tui.data.polling.Poller: the one polling loop every TUI poller uses (store, checklist, GPUs, logs, wizards)."""

from __future__ import annotations

import queue
import threading
import time

from tui.data.polling import Poller, next_delay

DEADLINE_S = 30.0  # generous: the machine may be loaded; nothing here is timed


def take(q: queue.Queue, what: str):
    try:
        return q.get(timeout=DEADLINE_S)
    except queue.Empty:
        raise AssertionError(f"no {what} within {DEADLINE_S} s") from None


def test_reads_in_its_own_thread_deliver_each_result_and_stop_closes_the_resource():
    delivered: queue.Queue = queue.Queue()
    threads: dict[str, int] = {}
    count = iter(range(1000))

    def setup() -> str:
        threads["setup"] = threading.get_ident()
        return "conn"

    def read(conn: str) -> tuple[str, int]:
        threads["read"] = threading.get_ident()
        return conn, next(count)

    def teardown(conn: str) -> None:
        threads["teardown"] = threading.get_ident()

    poller = Poller(read, delivered.put, 0.01, name="test", setup=setup, teardown=teardown).start()
    assert [take(delivered, "result") for _ in range(3)] == [("conn", 0), ("conn", 1), ("conn", 2)]
    poller.stop()
    assert poller.join(DEADLINE_S)
    here = threading.get_ident()
    assert threads["setup"] == threads["read"] == threads["teardown"] != here  # SQLite stays in its thread


def test_nothing_new_is_not_delivered_and_wake_reads_at_once():
    reads: queue.Queue = queue.Queue()
    delivered: list[int] = []
    # An hour between reads: only a wake can bring the second one within the deadline.
    poller = Poller(lambda _: reads.put("read"), delivered.append, 3600.0, name="test").start()
    take(reads, "first read")
    poller.wake()
    take(reads, "read after wake()")
    poller.stop()
    assert poller.join(DEADLINE_S)  # stop() wakes the hour-long wait too
    assert delivered == []  # the read returned None each time: nothing new


def test_waits_back_off_while_nothing_changes_and_return_to_the_interval_on_news():
    assert next_delay(1.0, False, 1.0, 8.0) == 2.0
    assert next_delay(2.0, False, 1.0, 8.0) == 4.0
    assert next_delay(8.0, False, 1.0, 8.0) == 8.0  # capped
    assert next_delay(8.0, True, 1.0, 8.0) == 1.0
    assert next_delay(1.0, False, 1.0, 1.0) == 1.0  # no max_interval: no backoff


def test_a_quiet_poller_backs_off_and_a_wake_resets_it():
    reads: queue.Queue = queue.Queue()
    poller = Poller(lambda _: reads.put("read"), lambda _: None, 0.01, max_interval=3600.0, name="test")
    poller.start()
    take(reads, "first read")
    deadline = time.monotonic() + DEADLINE_S
    while poller.delay < 1.0:  # doubling from 10 ms: past a second after seven quiet reads
        assert time.monotonic() < deadline, f"no backoff: delay {poller.delay}"
        take(reads, "quiet read")
    poller.wake()
    assert poller.delay < 1.0  # back at the interval (doubling again from there)
    take(reads, "read after wake()")
    poller.stop()
    assert poller.join(DEADLINE_S)


def test_a_failing_read_is_reported_and_polling_goes_on():
    delivered: queue.Queue = queue.Queue()
    failures: list[str] = []
    calls = iter(range(1000))

    def read(_: None) -> int:
        n = next(calls)
        if n == 0:
            raise OSError("disk went away")
        return n

    poller = Poller(read, delivered.put, 0.01, name="test", fail=lambda exc: failures.append(str(exc))).start()
    assert take(delivered, "result after a failure") == 1
    poller.stop()
    assert poller.join(DEADLINE_S)
    assert failures == ["disk went away"]


def test_without_fail_an_error_ends_the_poller_and_still_closes_the_resource(monkeypatch):
    closed: list[str] = []
    errors: list[type] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_type))

    def read(_: str) -> int:
        raise ValueError("bug")

    poller = Poller(read, lambda _: None, 0.01, name="test", setup=lambda: "conn", teardown=closed.append)
    poller.start()
    assert poller.join(DEADLINE_S)
    assert closed == ["conn"] and errors == [ValueError]


def test_a_result_read_while_stopping_is_not_delivered():
    started, release = threading.Event(), threading.Event()
    delivered: list[int] = []

    def read(_: None) -> int:
        started.set()
        release.wait(DEADLINE_S)
        return 1

    poller = Poller(read, delivered.append, 3600.0, name="test").start()
    assert started.wait(DEADLINE_S)
    poller.stop()  # the screen closed during the read
    release.set()
    assert poller.join(DEADLINE_S)
    assert delivered == []
