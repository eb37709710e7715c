"""One way to poll: a read function in its own thread, every `interval` seconds, results handed on.

Every polling loop of the TUI (the store poller, the checklist, the GPU panel, the log tail,
the wizards) is a Poller, so each gets the same behaviour: the event loop never waits on a read;
`wake()` reads now (a key press, a screen uncovered); `stop()` ends the thread promptly (after
the read in progress); reads that find nothing new may back off to `max_interval`; a resource a
read needs (an SQLite connection, which stays in the thread that opened it) is set up and torn
down in the poller's thread. Results go to `deliver`, called in that thread: a Textual `post_message`
(thread-safe) is the usual one. No Textual here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")  # what `setup` returns and each read gets (a reader, a connection)
T = TypeVar("T")  # what a read returns; None: nothing new, nothing delivered


def next_delay(current: float, changed: bool, interval: float, max_interval: float) -> float:
    """The wait before the next read: `interval` after news, doubling up to `max_interval` without."""
    return interval if changed else min(max(current, interval) * 2, max_interval)


def _no_resource() -> None:
    return None


class Poller(Generic[R, T]):
    def __init__(self, read: Callable[[R], T | None], deliver: Callable[[T], None], interval: float, *,
                 name: str, setup: Callable[[], R] = _no_resource, teardown: Callable[[R], None] | None = None,
                 max_interval: float | None = None,
                 fail: Callable[[Exception], None] | None = None):
        """`fail` gets what a read (or deliver) raised, and polling goes on; without one the error
        ends the poller (reads should catch what they expect, e.g. a locked store)."""
        self.read, self.deliver, self.setup, self.teardown = read, deliver, setup, teardown
        self.interval = interval
        self.max_interval = max(max_interval or interval, interval)
        self.fail = fail
        self.delay = interval  # the current wait between reads (grows while nothing changes)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Poller[R, T]:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Read now, and back at the base interval (something may be about to change)."""
        self.delay = self.interval
        self._wake.set()

    def stop(self) -> None:
        """Ask the thread to end; it does after the read in progress (never waited on here)."""
        self._stopped.set()
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        resource = self.setup()
        try:
            while not self._stopped.is_set():
                self._wake.clear()  # before reading: a wake during the read means read again
                self._wait(self._poll(resource))
        finally:
            if self.teardown is not None:
                self.teardown(resource)

    def _poll(self, resource: R) -> bool:
        try:
            result = self.read(resource)
            if result is not None and not self._stopped.is_set():
                self.deliver(result)
            return result is not None
        except Exception as exc:
            if self.fail is None:
                raise
            self.fail(exc)
            return False

    def _wait(self, changed: bool) -> None:
        if not self._wake.is_set():  # woken during the read: the base interval again, read at once
            self.delay = next_delay(self.delay, changed, self.interval, self.max_interval)
        self._wake.wait(self.delay)
