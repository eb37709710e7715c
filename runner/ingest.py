"""Tailing trial files into the store: metrics.jsonl lines and regex-matched stdout lines.

Each pass reads from the offsets saved in the store, up to the last complete
line, and the store writes the rows and the new offsets in one transaction: a
runner killed at any point re-reads exactly what it had not stored.

Every line is untrusted: one the store could not hold (a step beyond SQLite's
64-bit integers, text that is not valid UTF-8, a lone surrogate in a name) is
dropped and counted like any malformed line, with the first one kept as a sample
(TrialUpdate.bad_sample), so nothing a trial writes can stop the runner.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import groupby

import msgspec

from runner.printed import CaptureState, NoStep, check_order, drop, step_of, update_progress_total, values_of
from runner.spec import MetricPattern, StudySpec
from store import metrics, trials
from store.metrics import TrialUpdate
from store.series_blocks import NAN

MAX_BYTES_PER_PASS = 8 * 2**20  # bounded work per pass; the rest waits for the next one
# Stands in for the first MAX_BYTES_PER_PASS of a line that long: not JSON, so it is counted as a
# dropped line (with its own reason) instead of vanishing unseen.
OVERLONG_LINE = b"(its first 8 MiB, skipped)"
MAX_NAME_LEN = 200
MAX_PATH_LEN = 4096
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1  # what SQLite's INTEGER (and a block's int64 steps) holds
SAMPLE_CHARS = 160  # how much of a dropped line is kept as its sample


@dataclass(frozen=True)
class TailTarget:
    """What ingest needs to know about one trial."""

    trial_id: int
    metrics_path: str
    stdout_path: str
    metrics_offset: int
    stdout_offset: int
    objective: str
    mode: str  # "min" | "max"
    patterns: tuple[MetricPattern, ...] = ()
    capture_json: str | None = None  # the printed-line capture's saved state (runner.printed)
    epoch_steps: int | None = None  # max_train_steps when it counts epochs (runner.spec.epoch_steps)


def read_complete_lines(path: str, offset: int, max_bytes: int = MAX_BYTES_PER_PASS) -> tuple[list[bytes], int]:
    """Complete lines after `offset`, and the offset just past the last one returned.

    Nothing, while what is at `path` cannot be read as a regular file (missing, a folder
    or a FIFO a trial put in its place: opened without blocking, never read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return [], offset
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return [], offset
        chunk = os.pread(fd, max_bytes, offset)
    finally:
        os.close(fd)
    end = chunk.rfind(b"\n")
    if end < 0:
        if len(chunk) >= max_bytes:  # one absurdly long line: skip it rather than stall forever
            return [OVERLONG_LINE], offset + len(chunk)
        return [], offset
    return chunk[: end + 1].splitlines(), offset + end + 1


def _log_start(path: str) -> int:
    """Where the current log file begins in its whole stream (runner.shim rotates logs)."""
    try:
        with open(f"{path}.start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def read_log_lines(path: str, offset: int, max_bytes: int = MAX_BYTES_PER_PASS) -> tuple[list[bytes], int]:
    """Complete lines of a rotated log after stream position `offset`, and the position past them.

    Positions count bytes of the whole stream, across rotations: the current file
    begins at `path`.start, the one before it is `path`.1 and ends there. Lines
    rotated away before they were read (more than a whole file behind) are skipped.
    """
    start = _log_start(path)
    if offset >= start:
        lines, end = read_complete_lines(path, offset - start, max_bytes)
        position = end + start
    else:
        previous = f"{path}.1"
        previous_start = start - file_size(previous)
        offset = max(offset, previous_start)
        lines, end = read_complete_lines(previous, offset - previous_start, max_bytes)
        position = end + previous_start
        if not lines:  # the rotated file is read to its end (or to a line it never finished)
            position = start
    if _log_start(path) != start:  # rotated while we read: the file names moved, try next pass
        return [], offset
    return lines, position


def is_loss_metric(name: str, objective: str) -> bool:
    """Metrics whose non-finite value means the trial diverged."""
    return name == objective or "loss" in name.lower()


def storable(text: str) -> bool:
    """Whether SQLite can hold `text`: it must encode as UTF-8, which a lone surrogate cannot."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _good_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME_LEN and storable(name)


def line_text(line: bytes) -> str:
    """A line's start as a sample (bytes that are not UTF-8 as \\xNN)."""
    text = line[: SAMPLE_CHARS * 4].decode("utf-8", errors="backslashreplace")
    return text[:SAMPLE_CHARS] + "..." if len(text) > SAMPLE_CHARS else text


def bad_line_sample(reason: str, line: bytes) -> str:
    """One dropped line, shown as `reason: the line's start`."""
    return f"{reason}: {line_text(line)}"


def _unparsed_reason(line: bytes) -> str:
    if line is OVERLONG_LINE:
        return f"a line longer than {MAX_BYTES_PER_PASS >> 20} MiB"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    return "not JSON"


def _note_bad(update: TrialUpdate, reason: str, line: bytes) -> None:
    """Count one dropped line; the first of the batch becomes its sample."""
    update.bad_lines += 1
    if update.bad_sample is None:
        update.bad_sample = bad_line_sample(reason, line)


def dropped_lines_note(update: TrialUpdate) -> str:
    """The runner log's line about an update that dropped lines (said once per trial)."""
    return (f"dropping metric lines it wrote that cannot be stored ({update.bad_lines} so far; "
            f"`status` counts them); the first: {update.bad_sample or '?'}")


def _wall(value) -> float | None:
    """A line's wall time `t`: a float, or None when it is missing or not a usable number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _number(value) -> float | None:
    """A finite or infinite float; None for NaN; raises for what is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("not a number")
    value = float(value)  # OverflowError for ints beyond float range
    return None if math.isnan(value) else value


def _add_points(update: TrialUpdate, target: TailTarget, step: int,
                points: list[tuple[str, float | None]], wall: float | None) -> None:
    """Add one step's points to the update's columns; a value is None for NaN."""
    objective = target.objective
    series = update.series
    wall = NAN if wall is None else wall
    for name, value in points:
        cols = series.get(name)
        if cols is None:
            cols = series[name] = ([], [], [])
        cols[0].append(step)
        cols[2].append(wall)
        if value is None or value in (math.inf, -math.inf):
            cols[1].append(NAN if value is None else value)
            if is_loss_metric(name, objective):
                update.diverged = True
            continue
        cols[1].append(value)
        if name == objective:
            best = update.best
            if best is None or (value < best[0] if target.mode == "min" else value > best[0]):
                update.best = (value, step)
    if update.last_step is None or step > update.last_step:
        update.last_step = step


_decode = json.JSONDecoder().decode  # one decoder, str input: json.loads(bytes) sniffs encodings


def _text(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_lines(lines: list[bytes]) -> list[object | None]:
    """The JSON value of each line, None where a line is malformed or not valid UTF-8.

    All lines go through one decode call as a JSON array when they are all
    valid (about half the cost of a call per line); otherwise line by line.
    """
    texts = [_text(line) for line in lines]
    if None not in texts:
        try:
            records = _decode("[" + ",".join(texts) + "]")
            if len(records) == len(texts):
                return records
        except (ValueError, RecursionError):
            pass
    out: list[object | None] = []
    for text in texts:
        try:
            out.append(None if text is None else _decode(text))
        except (ValueError, RecursionError):
            out.append(None)
    return out


def add_record(record, target: TailTarget, update: TrialUpdate) -> bool:
    """Add one decoded metrics.jsonl record to `update`; False (and nothing added) if malformed."""
    return record_problem(record, target, update) is None


def record_problem(record, target: TailTarget, update: TrialUpdate) -> str | None:
    """Add one decoded metrics.jsonl record to `update`; what is wrong with it (nothing added), if anything."""
    if not isinstance(record, dict):
        return "not a JSON object"
    step = record.get("step")
    if type(step) is not int or not 0 <= step <= STEP_MAX:
        return "step is not a whole number from 0 to 2**63-1"
    wall = _wall(record.get("t"))
    if "checkpoint" in record:
        return _add_checkpoint(record, step, wall, target, update)
    metrics = record.get("m")
    if not isinstance(metrics, dict):
        return "no metrics object 'm'"
    if not all(_good_name(k) for k in metrics):
        return f"a metric name is empty, longer than {MAX_NAME_LEN} characters or not valid Unicode"
    points = []
    for name, value in metrics.items():
        if type(value) is float and -math.inf < value < math.inf:  # the common case, NaN fails it
            points.append((name, value))
        elif value is not None:  # null: the script logged something that is not a number
            try:
                points.append((name, _number(value)))
            except (ValueError, OverflowError):
                return "a value is not a number or beyond float range"
    _add_points(update, target, step, points, wall)
    return None


class _Record(msgspec.Struct):
    """The common metrics.jsonl line, as msgspec validates it while decoding: an int step
    and finite numbers (it refuses NaN, Infinity, out-of-range numbers, booleans and null)."""

    step: int
    m: dict[str, float]
    t: float | None = None
    checkpoint: object = None


_decode_records = msgspec.json.Decoder(list[_Record]).decode


def decode_common(lines: list[bytes]) -> list[_Record] | None:
    """Every line as a validated record, or None when any line is not the common kind
    (malformed, non-finite, a checkpoint, a negative step): then decode_lines() and
    add_record() take the pass line by line."""
    try:
        records = _decode_records(b"[" + b",".join(lines) + b"]")
    except msgspec.DecodeError:  # also its ValidationError: a line that is not the common kind
        return None
    if len(records) != len(lines) or any(
            r.checkpoint is not None or not 0 <= r.step <= STEP_MAX for r in records):
        return None
    return records


def add_common_records(records: list[_Record], target: TailTarget, update: TrialUpdate) -> list[int]:
    """Add records from decode_common() to `update`; returns the indices of those dropped
    for a bad metric name.

    The values need no checks (decode_common() took only finite numbers), nor do the
    names' characters (msgspec refuses invalid UTF-8 and lone surrogates); names'
    lengths are checked once per run of records that share them. A run is added column
    by column (zip and extend, no Python loop per point): ~3x faster than point by point.
    """
    series = update.series
    objective, minimize = target.objective, target.mode == "min"
    bad: list[int] = []
    best, last_step = update.best, update.last_step
    at = 0
    for names, group in groupby([tuple(r.m) for r in records]):
        run = records[at:at + len(list(group))]
        if not all(0 < len(k) <= MAX_NAME_LEN for k in names):
            bad.extend(range(at, at + len(run)))
            at += len(run)
            continue
        at += len(run)
        steps = [r.step for r in run]
        walls = [NAN if r.t is None else r.t for r in run]
        columns = zip(*[r.m.values() for r in run], strict=True) if names else ()
        for name, values in zip(names, columns, strict=True):
            cols = series.get(name) or series.setdefault(name, ([], [], []))
            cols[0].extend(steps)
            cols[1].extend(values)
            cols[2].extend(walls)
            if name == objective:
                value = min(values) if minimize else max(values)
                if best is None or (value < best[0] if minimize else value > best[0]):
                    best = (value, steps[values.index(value)])
        high = max(steps)
        if last_step is None or high > last_step:
            last_step = high
    update.best, update.last_step = best, last_step
    return bad


def _add_checkpoint(record: dict, step: int, wall, target: TailTarget, update: TrialUpdate) -> str | None:
    path, objective = record["checkpoint"], record.get("objective")
    if not isinstance(path, str) or not 0 < len(path) <= MAX_PATH_LEN or not storable(path):
        return f"the checkpoint path is not text of valid Unicode up to {MAX_PATH_LEN} characters"
    try:
        objective = _number(objective) if objective is not None else None
    except (ValueError, OverflowError):
        return "the checkpoint's objective is not a number"
    update.checkpoints.append((target.trial_id, step, path, objective, wall))
    return None


def parse_metrics_line(line: bytes, target: TailTarget, update: TrialUpdate) -> bool:
    """Add one metrics.jsonl line to `update`; False (and nothing added) if malformed."""
    (record,) = decode_lines([line])
    return add_record(record, target, update)


def parse_stdout_line(line: bytes, target: TailTarget, update: TrialUpdate, wall: float,
                      state: CaptureState | None = None) -> None:
    """Capture metrics from a printed line through the study's patterns and their step rules.

    `state` carries counters and per-series last steps from line to line (and pass to
    pass); a line without a usable step (none, not whole, beyond a 64-bit integer), or a
    point that repeats or goes back in its series, is counted there with a sample line,
    never lost in silence. A log may hold any bytes: the captures are checked.
    """
    state = state or CaptureState.start(target.patterns, None)
    text = line.decode("utf-8", errors="replace")
    for index, pattern in enumerate(target.patterns):
        match = pattern.regex.search(text)
        if not match:
            continue
        state.matches[index] += 1
        try:
            step = step_of(pattern, index, match, state)
        except NoStep as exc:
            drop(state, str(exc), text)
            continue
        if not STEP_MIN <= step <= STEP_MAX:
            drop(state, "captured step beyond what the store holds (a 64-bit integer)", text)
            continue
        points = []
        for name, value in values_of(pattern, match):
            check_order(state, name, step, text)
            points.append((name, None if math.isnan(value) else value))
        _add_points(update, target, step, points, wall)


def collect(target: TailTarget, now: float, *, final: bool = False) -> TrialUpdate:
    """One pass over one trial's files: everything new since the saved offsets (bounded work).

    final: the trial has ended, so a last line without its newline will never be
    finished: once no complete line is left, it is counted as a bad line and skipped.
    """
    update = TrialUpdate(trial_id=target.trial_id)
    try:
        _collect(target, now, final, update)
    except Exception as exc:  # a line no check foresaw: skip what this pass read, never stop the runner
        reason = f"ingest failed on this batch ({type(exc).__name__}: {exc})"
        update = TrialUpdate(trial_id=target.trial_id, metrics_offset=update.metrics_offset,
                             stdout_offset=update.stdout_offset, bad_lines=max(update.lines, 1),
                             bad_sample=reason.encode("utf-8", errors="backslashreplace").decode("utf-8"))
    return update


def _collect(target: TailTarget, now: float, final: bool, update: TrialUpdate) -> None:
    lines, offset = read_complete_lines(target.metrics_path, target.metrics_offset)
    if final and offset == target.metrics_offset:
        size = file_size(target.metrics_path)
        if size > offset:
            update.metrics_offset = size
            _note_bad(update, "the last line was never finished", _line_at(target.metrics_path, offset))
    if offset != target.metrics_offset:
        update.metrics_offset = offset
        lines = [line for line in lines if line.strip()]
        update.lines += len(lines)
        update.line_of = partial(_line_reporting, lines)
        records = decode_common(lines)
        if records is not None:
            for i in add_common_records(records, target, update):
                _note_bad(update, f"a metric name is empty or longer than {MAX_NAME_LEN} characters", lines[i])
        else:
            for line, record in zip(lines, decode_lines(lines), strict=True):
                problem = (_unparsed_reason(line) if record is None
                           else record_problem(record, target, update))
                if problem is not None:
                    _note_bad(update, problem, line)
    if target.patterns:
        _collect_printed(target, update, now)


def _line_reporting(lines: list[bytes], name: str, step: int) -> str | None:
    """The last of `lines` that reports `name` at `step` (for an out-of-order point's sample: any
    line after the first at a step is out of order). Read only when the store finds one."""
    for line in reversed(lines):
        text = _text(line)
        try:
            record = _decode(text) if text is not None else None
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and record.get("step") == step and name in (record.get("m") or ()):
            return line_text(line)
    return None


def _line_at(path: str, offset: int) -> bytes:
    """The start of the unfinished line at `offset`, for its sample."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(SAMPLE_CHARS * 4)
    except OSError:
        return b""


def _collect_printed(target: TailTarget, update: TrialUpdate, now: float) -> None:
    """New stdout lines through the patterns; the capture state is saved when it changed
    (and once at the start, so a pattern that never matches is known to have had lines to try)."""
    state = CaptureState.start(target.patterns, target.capture_json)
    lines, offset = read_log_lines(target.stdout_path, target.stdout_offset)
    if offset != target.stdout_offset:
        update.stdout_offset = offset
        update.order_checked.update(name for p in target.patterns for name in p.metrics)
        for line in lines:
            parse_stdout_line(line, target, update, now, state)
    update_progress_total(state, target.epoch_steps)
    saved = state.to_json()
    if saved != target.capture_json:
        update.capture_json = saved


def file_size(path: str) -> int:
    """The size of a regular file; 0 for anything else (missing, a folder, a FIFO)."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def ingested_to_the_end(db, trial_id: int, metrics_path: str | os.PathLike, spec: StudySpec | object,
                        log: Callable[[str], None]) -> None:
    """An ended trial whose every line has been ingested: its series' open tails are sealed (no
    pass will add to them), and with `keep_metrics_jsonl = false` its metrics.jsonl is deleted.

    The file goes only when the store has every byte of it (the saved offset is at its end:
    a trial ingest skipped, or a store that refused a write, keeps it) and those points are
    on disk, not only committed (synchronous=NORMAL leaves the last commits in the WAL,
    unsynced, until a checkpoint): the WAL is fsync'd first. Nothing reads the file
    afterwards: recovery and adoption start from the stored offset, which is at its end.
    """
    metrics.seal_tails(db, trial_id)
    if not isinstance(spec, StudySpec) or spec.keep_metrics_jsonl:
        return
    size = file_size(os.fspath(metrics_path))
    trial = trials.get(db, trial_id)
    if trial is None or size == 0 or trial.metrics_offset < size:
        return
    try:
        _sync_store(db)
        os.unlink(metrics_path)
    except OSError as exc:
        log(f"trial {trial_id}: kept metrics.jsonl ({exc})")


def _sync_store(db) -> None:
    """fsync the database file and its WAL: what is committed survives a power cut."""
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    for name in (f"{path}-wal", path):
        if os.path.exists(name):
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
