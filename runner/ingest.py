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

from runner.spec import MetricPattern
from store.metrics import TrialUpdate

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


def is_loss_metric(name: str, objective: str) -> bool:
    """Metrics whose non-finite value means the trial diverged."""
    return name == objective or "loss" in name.lower()


def _number(value) -> float | None:
    """A finite or infinite float; None for NaN; raises for what is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("not a number")
    value = float(value)  # OverflowError for ints beyond float range
    return None if math.isnan(value) else value


def _accumulate(update: TrialUpdate, target: TailTarget, step: int, name: str,
                finite_value: float | None, wall: float | None) -> None:
    """Add one point; `finite_value` is None for NaN (SQLite cannot store NaN)."""
    update.rows.append((target.trial_id, name, step, finite_value, wall))
    if finite_value is None or math.isinf(finite_value):
        if is_loss_metric(name, target.objective):
            update.diverged = True
    elif name == target.objective:
        best = update.best
        if best is None or (finite_value < best[0] if target.mode == "min" else finite_value > best[0]):
            update.best = (finite_value, step)
    update.last_step = step if update.last_step is None else max(update.last_step, step)


def parse_metrics_line(line: bytes, target: TailTarget, update: TrialUpdate) -> bool:
    """Add one metrics.jsonl line to `update`; False (and nothing added) if malformed."""
    try:
        record = json.loads(line)
        step = record["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            return False
        wall = record.get("t")
        wall = float(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else None
        if "checkpoint" in record:
            path = record["checkpoint"]
            objective = record.get("objective")
            if not isinstance(path, str):
                return False
            objective = _number(objective) if objective is not None else None
            update.checkpoints.append((target.trial_id, step, path, objective, wall))
            return True
        metrics = record["m"]
        if not isinstance(metrics, dict):
            return False
        # null means the script logged something that is not a number: skip that metric.
        pending = [(str(k), _number(v)) for k, v in metrics.items() if v is not None]
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return False
    for name, _ in pending:
        if not name or len(name) > MAX_NAME_LEN:
            return False
    for name, value in pending:
        _accumulate(update, target, step, name, value, wall)
    return True


def parse_stdout_line(line: bytes, target: TailTarget, update: TrialUpdate, wall: float) -> None:
    """Capture metrics from a printed line through the study's regexes."""
    text = line.decode("utf-8", errors="replace")
    for pattern in target.patterns:
        match = pattern.regex.search(text)
        if not match:
            continue
        try:
            step = int(match.group("step"))
        except (TypeError, ValueError):
            continue
        for name in pattern.metrics:
            raw = match.group(name)
            if raw is None:
                continue
            try:
                value = _number(float(raw))
            except ValueError:
                continue
            _accumulate(update, target, step, name, value, wall)


def collect(target: TailTarget, now: float) -> TrialUpdate:
    """One pass over one trial's files: everything new since the saved offsets."""
    update = TrialUpdate(trial_id=target.trial_id)
    lines, offset = read_complete_lines(target.metrics_path, target.metrics_offset)
    if offset != target.metrics_offset:
        update.metrics_offset = offset
        for line in lines:
            if line.strip() and not parse_metrics_line(line, target, update):
                update.bad_lines += 1
    if target.patterns:
        lines, offset = read_complete_lines(target.stdout_path, target.stdout_offset)
        if offset != target.stdout_offset:
            update.stdout_offset = offset
            for line in lines:
                parse_stdout_line(line, target, update, now)
    return update


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
