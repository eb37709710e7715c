"""The reporting client a training script imports: stdlib only, never waits on the runner.

    from runner.report import Reporter
    report = Reporter()
    for step in range(max_steps):
        ...
        report.log(step, train_loss=loss, grad_norm=norm, lr=lr, examples_per_s=eps)
        if step % 100 == 0:
            report.log(step, val_error=err)
            report.checkpoint(step, path, objective=err)

Points are buffered in memory and handed to a background writer thread every
`flush_every` points or `flush_interval_s` seconds; it encodes them and appends them
to the trial's metrics file (one JSON object per line, one append write per batch),
so `log()` never waits on encoding or the disk. Whatever is left is written at exit
(also on SIGTERM, which the runner sends to stop a trial), and `flush()` writes
everything at once on the caller's thread. The runner tails that file; nothing here
talks to the runner or to SQLite, so a slow or dead runner never slows the training loop.

Outside the runner (no PLAYBOOK_METRICS_FILE in the environment) every call is
a no-op, so the same script runs alone too.

A storage fault (the disk full, a file size limit, the folder removed or read-only)
never reaches the training loop: the lines wait in memory, up to
`Reporter.max_pending_lines` (the oldest dropped past it, and counted), one warning
goes to stderr, and each later flush tries again; once a write succeeds, everything
kept arrives in order.

Under torchrun, accelerate or any launcher that sets RANK (or LOCAL_RANK), only
rank 0 writes: every rank runs the same loop, and its points would otherwise be
stored once per process. `Reporter(all_ranks=True)` (or PLAYBOOK_ALL_RANKS=1)
keeps every rank: rank 0 under the plain names, rank r under `name/rank{r}`
(`train_loss/rank1`). Checkpoints are marked by rank 0 only either way.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any

METRICS_FILE_ENV = "PLAYBOOK_METRICS_FILE"
PARAMS_ENV = "PLAYBOOK_PARAMS"
RETRY_EVERY_S = 1.0  # while the metrics file cannot be written, flushes try again at most this often
ALL_RANKS_ENV = "PLAYBOOK_ALL_RANKS"
ENCODE_SLICE_S = 3e-4  # the writer encodes this long before letting the training thread have the GIL
SIGTERM_WAIT_S = 5.0  # how long a SIGTERM waits for the writer thread's write in progress


def params(defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trial's parameters from PLAYBOOK_PARAMS, over `defaults` (for running alone)."""
    merged = dict(defaults or {})
    raw = os.environ.get(PARAMS_ENV)
    if raw:
        merged.update(json.loads(raw))
    return merged


class Reporter:
    """Buffered metric and checkpoint reporting to the runner's metrics file."""

    max_pending_lines = 200_000  # lines kept through a storage fault (about 100 bytes each)
    # Points handed to the writer and not yet written, past which log() encodes each point itself
    # (a couple of microseconds a call, no stall) until the writer catches up: it bounds memory when
    # a loop logs faster than the writer thread gets the GIL.
    max_queued_points = 100_000
    # Storage-fault state, set per instance when a write first fails.
    _pending: list[str] | tuple = ()  # encoded lines not yet written, oldest first
    _dropped = 0  # lines dropped past max_pending_lines during the current fault
    _failing = False
    _retry_at = 0.0  # monotonic time of the next write attempt while failing
    _warned = False
    _torn = False  # a failed write may have left a partial line at the end of the file
    _writer: threading.Thread | None = None
    _writing_thread: int | None = None  # ident of the thread inside a write (for the SIGTERM handler)
    _closing = False  # close() waits: the writer thread stops yielding the GIL between slices

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        flush_every: int = 512,
        flush_interval_s: float = 1.0,
        all_ranks: bool | None = None,
    ) -> None:
        path = path if path is not None else os.environ.get(METRICS_FILE_ENV)
        self.rank, self.world_size = process_rank()
        if all_ranks is None:
            all_ranks = os.environ.get(ALL_RANKS_ENV, "").strip().lower() in ("1", "true", "yes")
        self.enabled = bool(path) and (self.rank == 0 or all_ranks)
        self._plain_log = self._log_points = self.log  # whichever rank: see _fall_behind
        self._behind = False
        if self.enabled and self.rank != 0:
            self._suffix = f"/rank{self.rank}"
            self.log = self._log_suffixed  # rank 0 keeps the plain, faster log()
            self.checkpoint = _ignore_checkpoint
        self._path = os.fspath(path) if path else None
        self._buffer: list[tuple | str] = []  # points not yet handed to the writer (log()'s thread only)
        self._queue: deque[list[tuple | str]] = deque()  # batches handed over, oldest first
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._lock = threading.Lock()  # one write at a time, in order
        self._wake = threading.Event()
        self._terminate_after_flush = False  # set by the SIGTERM handler during a flush
        if self.enabled:
            atexit.register(self.close)
            _flush_on_sigterm(self)
            _LIVE.add(self)
            self._start_writer()  # from the start: its clock hands over a slow loop's points too

    def log(self, step: int, **metrics: Any) -> None:
        """Record metrics at a training step (numbers, or 0-d tensors: converted by the writer)."""
        if not self.enabled:
            return
        buffer = self._buffer
        buffer.append((time.time(), step, metrics))
        if len(buffer) >= self._flush_every:
            self._hand_off()

    def _log_encoding(self, step: int, **metrics: Any) -> None:
        """log() while the writer is behind: each point is encoded here, a little at a time."""
        buffer = self._buffer
        buffer.append(_encode((time.time(), step, metrics)))
        if len(buffer) >= self._flush_every:
            self._hand_off()

    def _log_suffixed(self, step: int, **metrics: Any) -> None:
        self._log_points(step, **{name + self._suffix: value for name, value in metrics.items()})

    def checkpoint(self, step: int, path: str | os.PathLike, objective: float | None = None) -> None:
        """Mark a saved checkpoint, with its objective, for retrospective best-checkpoint selection."""
        if not self.enabled:
            return
        self._buffer.append((time.time(), step, None, os.fspath(path), objective))
        self._hand_off()

    def _hand_off(self) -> None:
        """Give the buffered points to the writer thread and wake it (log()'s thread only)."""
        # Queued before the buffer is replaced: a SIGTERM handler running in between sees the
        # same list in both places and takes it once (see _take_all).
        self._queue.append(self._buffer)
        self._buffer = []
        if self._writer is None:  # after close(), or a forked child's first hand-over
            self._start_writer()
        self._wake.set()
        behind = len(self._queue) * self._flush_every > self.max_queued_points
        if behind != self._behind:
            self._fall_behind(behind)

    def _fall_behind(self, behind: bool) -> None:
        """Switch log() to encoding each point itself while the writer is behind, and back."""
        self._behind = behind
        self._log_points = self._log_encoding if behind else self._plain_log
        if self.rank == 0:
            self.log = self._log_points

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._run_writer, name="playbook-reporter", daemon=True)
        self._writer.start()

    def _run_writer(self) -> None:
        interval = min(max(self._flush_interval_s, 1e-3), threading.TIMEOUT_MAX)
        me = threading.current_thread()
        while True:
            woken = self._wake.wait(interval)
            if self._writer is not me:  # closed (a later hand-over starts a new one), or forked
                return
            self._wake.clear()
            self._locked_write(take_buffer=not woken, on_writer=True)  # on time: a slow loop's points too

    def flush(self) -> None:
        """Append every buffered point to the metrics file as whole lines, now, on this thread."""
        if not self.enabled:
            return
        self._locked_write()

    def _locked_write(self, take_buffer: bool = False, on_writer: bool = False) -> None:
        with self._lock:
            self._writing_thread = threading.get_ident()
            try:
                if on_writer:
                    self._write_buffered(take_buffer, on_writer=True)
                else:
                    self._write_buffered()
            finally:
                self._writing_thread = None
                if self._terminate_after_flush:
                    _terminate()

    def _take_all(self, take_buffer: bool, on_writer: bool) -> list[tuple | str]:
        """Every queued point, oldest first; on log()'s thread also the buffer not yet handed over.

        The writer thread takes the buffer's points only with `take_buffer`, while log() may append
        to it: it takes what is there (appends go after) from the list that was current once the
        queue was empty, so every point it takes is newer than the batches before it.
        """
        batches = []
        while True:
            while self._queue:
                batches.append(self._queue.popleft())
            if not on_writer:
                buffer, self._buffer = self._buffer, []
                if not batches or batches[-1] is not buffer:  # a signal between queueing and replacing
                    batches.append(buffer)
                break
            if not take_buffer:
                break
            buffer = self._buffer
            if self._queue:  # handed over meanwhile: that batch first
                continue
            count = len(buffer)
            batches.append(buffer[:count])
            del buffer[:count]  # the same list even if log() has queued it since: no point twice
            break
        items: list[tuple | str] = []
        for batch in batches:
            items.extend(batch)
        return items

    def _write_buffered(self, take_buffer: bool = False, on_writer: bool = False) -> None:
        items = self._take_all(take_buffer, on_writer)
        if on_writer:
            lines = _encode_yielding(items, self)
        else:
            lines = [item if type(item) is str else _encode(item) for item in items]
        if self._failing:  # the kept lines go first, in order (extended in place: no copy per flush)
            self._pending.extend(lines)
            lines = self._pending
        if not lines:
            return
        if self._failing and time.monotonic() < self._retry_at:
            self._keep_for_later(lines, None)  # a fault rarely clears within a second: no write storm
            return
        try:
            self._append("".join(lines).encode("utf-8"))
        except OSError as exc:
            self._retry_at = time.monotonic() + RETRY_EVERY_S
            self._keep_for_later(lines, exc)
            return
        if self._failing:
            self._recovered(len(lines))

    def _append(self, data: bytes) -> None:
        """Append whole lines, or nothing: a failed write is cut back off the file where it can be.

        Unbuffered, so a failed write is not written again when the file is closed.
        """
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            if self._torn:
                data = b"\n" + data  # end the partial line left before: it is dropped, ours are kept
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    self._torn = True
                raise
            self._torn = False
        finally:
            os.close(fd)

    def _keep_for_later(self, lines: list[str], exc: OSError | None) -> None:
        excess = len(lines) - self.max_pending_lines
        if excess > 0:
            del lines[:excess]
            self._dropped += excess
        self._pending = lines
        self._failing = True
        if exc is not None and not self._warned:
            self._warned = True
            _warn(f"cannot write metrics to {self._path} ({exc.strerror or exc}); training goes on, "
                  f"keeping up to {self.max_pending_lines:,} lines in memory and retrying at later flushes")

    def _recovered(self, written: int) -> None:
        lost = f", {self._dropped:,} oldest lost past the bound" if self._dropped else ""
        _warn(f"writing metrics to {self._path} again ({written:,} lines kept through the fault{lost})")
        self._pending, self._dropped, self._failing, self._warned = [], 0, False, False

    def close(self) -> None:
        """Write everything still buffered (at exit, registered with atexit)."""
        if not self.enabled:
            return
        self._retry_at = 0.0  # the last chance: try now, whenever the last attempt was
        self._closing = True
        try:
            self.flush()
        finally:
            self._closing = False
        self._writer = None  # its thread ends (a Reporter made per epoch leaves none behind)
        self._wake.set()
        if self._failing and self._pending:
            _warn(f"{len(self._pending) + self._dropped:,} metric lines could not be written to {self._path} "
                  "and are lost")
            self._pending, self._dropped, self._failing = [], 0, False

    def _after_fork_in_child(self) -> None:
        """A forked child has no writer thread, and a lock held at the fork would never be released.

        The points buffered at the fork are the parent's to write: a child that exits normally (its
        atexit runs) would otherwise write them a second time.
        """
        self._writer = None
        self._writing_thread = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._buffer = []
        self._queue = deque()
        self._pending, self._dropped, self._failing = [], 0, False


_LIVE: weakref.WeakSet[Reporter] = weakref.WeakSet()


def _reporters_after_fork() -> None:
    for reporter in list(_LIVE):
        reporter._after_fork_in_child()


os.register_at_fork(after_in_child=_reporters_after_fork)


def _encode_yielding(items: list[tuple | str], reporter: Reporter) -> list[str]:
    """Encode on the writer thread in slices of about ENCODE_SLICE_S, letting the training thread run
    between them.

    Encoding holds the GIL: a whole batch at once would stall a log() call waiting for it by a
    millisecond or more, while each hand-over of the GIL costs the training thread a wake-up (long on
    a busy machine), so slices are as long as the stall allows. A real sleep hands the GIL over (a zero
    sleep is often taken back at once). Once close() waits for this write there is no loop to yield to.
    """
    lines: list[str] = []
    clock = time.perf_counter
    slice_ends = clock() + ENCODE_SLICE_S
    for start in range(0, len(items), 16):
        lines.extend([item if type(item) is str else _encode(item) for item in items[start:start + 16]])
        if clock() > slice_ends and not reporter._closing:
            time.sleep(1e-5)
            slice_ends = clock() + ENCODE_SLICE_S
    return lines


def _warn(message: str) -> None:
    """One line on stderr, which may itself be gone: never an exception into training."""
    try:
        print(f"playbook report: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def process_rank() -> tuple[int, int]:
    """(rank, world size) as torchrun/accelerate/DDP launchers set them; (0, 1) for a single process.

    RANK is the global rank; LOCAL_RANK alone (some single-node launchers) counts as one.
    """
    raw = os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or "0"
    try:
        rank = int(raw)
    except ValueError:
        rank = 0
    try:
        world = max(1, int(os.environ.get("WORLD_SIZE") or "1"))
    except ValueError:
        world = 1
    return rank, world


def _ignore_checkpoint(step: int, path: str | os.PathLike, objective: float | None = None) -> None:
    """Only rank 0 marks checkpoints: a trial has one set of them, not one per process."""


def _number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    try:
        return float(value)  # 0-d tensors, numpy scalars, bools
    except (TypeError, ValueError):
        return None


_INF = float("inf")
_KEYS: dict[str, str] = {}  # metric name -> its JSON key text, built once per name


def _json_number(value: Any) -> str:
    """A number as JSON text; NaN/Infinity kept (divergence is data), null for non-numbers."""
    if type(value) is not float:
        if type(value) is int:
            return str(value)
        value = _number(value)
        if value is None:
            return "null"
        if type(value) is int:
            return str(value)
    if value != value:
        return "NaN"
    if value == _INF or value == -_INF:
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _encode(item: tuple) -> str:
    """One record as a JSON line; built by hand because json.dumps dominates the flush cost."""
    if item[2] is None:  # checkpoint: rare, keep it simple
        t, step, _, path, objective = item
        record = {"t": t, "step": int(step), "checkpoint": path}
        if objective is not None:
            record["objective"] = _number(objective)
        return json.dumps(record) + "\n"
    t, step, metrics = item
    parts = []
    for name, value in metrics.items():
        key = _KEYS.get(name)
        if key is None:
            key = _KEYS[name] = json.dumps(str(name)) + ":"
        parts.append(key + _json_number(value))
    return f'{{"t":{t!r},"step":{int(step)},"m":{{{",".join(parts)}}}}}\n'


def _flush_on_sigterm(reporter: Reporter) -> None:
    """Flush before a SIGTERM ends the process, then die of SIGTERM as before."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the script handles SIGTERM itself; atexit covers a clean exit

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # The signal may land inside this thread's own write: taking the lock again would deadlock,
        # so that write finishes and terminates instead. The writer thread's write is waited for.
        if reporter._writing_thread == threading.get_ident() or not reporter._lock.acquire(
                timeout=SIGTERM_WAIT_S):
            reporter._terminate_after_flush = True
            return
        try:
            reporter._writing_thread = threading.get_ident()
            reporter._retry_at = 0.0
            reporter._write_buffered()
        finally:
            reporter._writing_thread = None
            reporter._lock.release()
        _terminate()

    signal.signal(signal.SIGTERM, handler)


def _terminate() -> None:
    """Die of SIGTERM (the handler restored the default), so the exit status stays honest."""
    os.kill(os.getpid(), signal.SIGTERM)
