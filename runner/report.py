"""The reporting client a training script imports: stdlib only, never waits on the runner.

    from runner.report import Reporter
    report = Reporter()
    for step in range(max_steps):
        ...
        report.log(step, train_loss=loss, grad_norm=norm, lr=lr, examples_per_s=eps)
        if step % 100 == 0:
            report.log(step, val_error=err)
            report.checkpoint(step, path, objective=err)

Points are buffered in memory and appended to the trial's metrics file (one
JSON object per line) every `flush_every` points or `flush_interval_s` seconds,
and at exit (also on SIGTERM, which the runner sends to stop a trial). The
runner tails that file; nothing here talks to the runner or to SQLite, so a
slow or dead runner never slows the training loop.

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
from typing import Any

METRICS_FILE_ENV = "PLAYBOOK_METRICS_FILE"
PARAMS_ENV = "PLAYBOOK_PARAMS"
RETRY_EVERY_S = 1.0  # while the metrics file cannot be written, flushes try again at most this often
ALL_RANKS_ENV = "PLAYBOOK_ALL_RANKS"


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
    # Storage-fault state, set per instance when a write first fails.
    _pending: list[str] | tuple = ()  # encoded lines not yet written, oldest first
    _dropped = 0  # lines dropped past max_pending_lines during the current fault
    _failing = False
    _retry_at = 0.0  # monotonic time of the next write attempt while failing
    _warned = False
    _torn = False  # a failed write may have left a partial line at the end of the file

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
        if self.enabled and self.rank != 0:
            self._suffix = f"/rank{self.rank}"
            self.log = self._log_suffixed  # rank 0 keeps the plain, faster log()
            self.checkpoint = _ignore_checkpoint
        self._path = os.fspath(path) if path else None
        self._buffer: list[tuple] = []
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._next_flush = time.monotonic() + flush_interval_s
        self._lock = threading.Lock()
        self._terminate_after_flush = False  # set by the SIGTERM handler during a flush
        if self.enabled:
            atexit.register(self.close)
            _flush_on_sigterm(self)

    def log(self, step: int, **metrics: Any) -> None:
        """Record metrics at a training step (numbers, or 0-d tensors: converted at flush)."""
        if not self.enabled:
            return
        self._buffer.append((time.time(), step, metrics))
        if len(self._buffer) >= self._flush_every or time.monotonic() >= self._next_flush:
            self.flush()

    def _log_suffixed(self, step: int, **metrics: Any) -> None:
        Reporter.log(self, step, **{name + self._suffix: value for name, value in metrics.items()})

    def checkpoint(self, step: int, path: str | os.PathLike, objective: float | None = None) -> None:
        """Mark a saved checkpoint, with its objective, for retrospective best-checkpoint selection."""
        if not self.enabled:
            return
        self._buffer.append((time.time(), step, None, os.fspath(path), objective))
        self.flush()

    def flush(self) -> None:
        """Append buffered points to the metrics file as whole lines."""
        if not self.enabled:
            return
        with self._lock:
            try:
                self._write_buffered()
            finally:
                if self._terminate_after_flush:
                    _terminate()

    def _write_buffered(self) -> None:
        buffered, self._buffer = self._buffer, []
        self._next_flush = time.monotonic() + self._flush_interval_s
        lines = [_encode(item) for item in buffered]
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
        self._retry_at = 0.0  # the last chance: try now, whenever the last attempt was
        self.flush()
        if self._failing and self._pending:
            _warn(f"{len(self._pending) + self._dropped:,} metric lines could not be written to {self._path} "
                  "and are lost")
            self._pending, self._dropped, self._failing = [], 0, False


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
        # The signal may land inside a flush (this thread's or another's): taking the
        # lock again would deadlock, so that flush finishes and terminates instead.
        if reporter._lock.acquire(blocking=False):
            try:
                reporter._write_buffered()
            finally:
                reporter._lock.release()
            _terminate()
        else:
            reporter._terminate_after_flush = True

    signal.signal(signal.SIGTERM, handler)


def _terminate() -> None:
    """Die of SIGTERM (the handler restored the default), so the exit status stays honest."""
    os.kill(os.getpid(), signal.SIGTERM)
