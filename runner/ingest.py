"""Tailing trial files into the store: metrics.jsonl lines and regex-matched stdout lines.

Each pass reads from the offsets saved in the store, up to the last complete
line, and the store writes the rows and the new offsets in one transaction: a
runner killed at any point re-reads exactly what it had not stored.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import msgspec

from runner.printed import CaptureState, NoStep, check_order, drop, step_of, update_progress_total, values_of
from runner.spec import MetricPattern
from store.metrics import TrialUpdate
from store.series_blocks import NAN

MAX_BYTES_PER_PASS = 8 * 2**20  # bounded work per pass; the rest waits for the next one
MAX_NAME_LEN = 200


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
    """Complete lines after `offset`, and the offset just past the last one returned."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read(max_bytes)
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        if len(chunk) >= max_bytes:  # one absurdly long line: skip it rather than stall forever
            return [b""], offset + len(chunk)
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


def decode_lines(lines: list[bytes]) -> list[object | None]:
    """The JSON value of each line, None where a line is malformed.

    All lines go through one decode call as a JSON array when they are all
    valid (about half the cost of a call per line); otherwise line by line.
    """
    texts = [line.decode("utf-8", errors="replace") for line in lines]
    try:
        records = _decode("[" + ",".join(texts) + "]")
        if len(records) == len(texts):
            return records
    except (ValueError, RecursionError):
        pass
    out: list[object | None] = []
    for text in texts:
        try:
            out.append(_decode(text))
        except (ValueError, RecursionError):
            out.append(None)
    return out


def add_record(record, target: TailTarget, update: TrialUpdate) -> bool:
    """Add one decoded metrics.jsonl record to `update`; False (and nothing added) if malformed."""
    if not isinstance(record, dict):
        return False
    step = record.get("step")
    if type(step) is not int or step < 0:
        return False
    wall = record.get("t")
    wall = float(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else None
    if "checkpoint" in record:
        return _add_checkpoint(record, step, wall, target, update)
    metrics = record.get("m")
    if not isinstance(metrics, dict) or any(not k or len(k) > MAX_NAME_LEN for k in metrics):
        return False
    points = []
    for name, value in metrics.items():
        if type(value) is float and -math.inf < value < math.inf:  # the common case, NaN fails it
            points.append((name, value))
        elif value is not None:  # null: the script logged something that is not a number
            try:
                points.append((name, _number(value)))
            except (ValueError, OverflowError):
                return False
    _add_points(update, target, step, points, wall)
    return True


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
    if len(records) != len(lines) or any(r.checkpoint is not None or r.step < 0 for r in records):
        return None
    return records


def add_common_records(records: list[_Record], target: TailTarget, update: TrialUpdate) -> int:
    """Add records from decode_common() to `update`; returns how many had a bad metric name.

    The values need no checks (decode_common() took only finite numbers); names are
    checked once per run of records that share them.
    """
    series = update.series
    objective, minimize = target.objective, target.mode == "min"
    names_seen: tuple | None = None
    columns: list = []
    at_objective = -1
    bad = 0
    best, last_step = update.best, update.last_step
    for record in records:
        metrics, step = record.m, record.step
        names = tuple(metrics)
        if names != names_seen:
            if not all(0 < len(k) <= MAX_NAME_LEN for k in names):
                bad += 1
                continue
            names_seen = names
            columns = [series.get(k) or series.setdefault(k, ([], [], [])) for k in names]
            at_objective = names.index(objective) if objective in metrics else -1
        wall = NAN if record.t is None else record.t
        values = list(metrics.values())
        for value, cols in zip(values, columns, strict=True):
            cols[0].append(step)
            cols[1].append(value)
            cols[2].append(wall)
        if at_objective >= 0:
            value = values[at_objective]
            if best is None or (value < best[0] if minimize else value > best[0]):
                best = (value, step)
        if last_step is None or step > last_step:
            last_step = step
    update.best, update.last_step = best, last_step
    return bad


def _add_checkpoint(record: dict, step: int, wall, target: TailTarget, update: TrialUpdate) -> bool:
    path, objective = record["checkpoint"], record.get("objective")
    if not isinstance(path, str):
        return False
    try:
        objective = _number(objective) if objective is not None else None
    except (ValueError, OverflowError):
        return False
    update.checkpoints.append((target.trial_id, step, path, objective, wall))
    return True


def parse_metrics_line(line: bytes, target: TailTarget, update: TrialUpdate) -> bool:
    """Add one metrics.jsonl line to `update`; False (and nothing added) if malformed."""
    (record,) = decode_lines([line])
    return add_record(record, target, update)


def parse_stdout_line(line: bytes, target: TailTarget, update: TrialUpdate, wall: float,
                      state: CaptureState | None = None) -> None:
    """Capture metrics from a printed line through the study's patterns and their step rules.

    `state` carries counters and per-series last steps from line to line (and pass to
    pass); a line without a usable step, or a point that repeats or goes back in its
    series, is counted there with a sample line, never lost in silence.
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
    lines, offset = read_complete_lines(target.metrics_path, target.metrics_offset)
    if final and offset == target.metrics_offset:
        size = file_size(target.metrics_path)
        if size > offset:
            update.metrics_offset = size
            update.bad_lines += 1
    if offset != target.metrics_offset:
        update.metrics_offset = offset
        lines = [line for line in lines if line.strip()]
        records = decode_common(lines)
        if records is not None:
            update.bad_lines += add_common_records(records, target, update)
        else:
            for record in decode_lines(lines):
                update.bad_lines += not add_record(record, target, update)
    if target.patterns:
        _collect_printed(target, update, now)
    return update


def _collect_printed(target: TailTarget, update: TrialUpdate, now: float) -> None:
    """New stdout lines through the patterns; the capture state is saved when it changed
    (and once at the start, so a pattern that never matches is known to have had lines to try)."""
    state = CaptureState.start(target.patterns, target.capture_json)
    lines, offset = read_log_lines(target.stdout_path, target.stdout_offset)
    if offset != target.stdout_offset:
        update.stdout_offset = offset
        for line in lines:
            parse_stdout_line(line, target, update, now, state)
    update_progress_total(state, target.epoch_steps)
    saved = state.to_json()
    if saved != target.capture_json:
        update.capture_json = saved


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
