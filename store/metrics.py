"""Metric points: batched block writes from ingest, downsampled reads for curves.

Points live in `metric_blocks` (see store.series_blocks): one row per run of consecutive
points of one series, unique on (trial, name, first step). Blocks of a series never overlap
in steps. Ingest appends each pass's new points of a series as a raw row (its open tail, never
rewritten) and seals the tail into packed blocks of SEAL_POINTS when it fills, or when the trial
ends (seal_tails); a step at or below one already stored (a repeat, a resumed trial) merges
into the blocks it overlaps, and the reported value replaces the stored one.
Such a point is never merged in silence: it is counted on the trial (`out_of_order`),
with the first one described (`out_of_order_sample`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field

import numpy as np
from sqlite_utils import Database

from store import series_blocks as sb
from store.db import transaction

MetricRow = tuple[int, str, int, "float | None", "float | None"]  # trial, name, step, value, wall
CheckpointRow = tuple[int, int, str, "float | None", "float | None"]  # trial, step, path, obj, wall
Columns = tuple[list[int], list[float], list[float]]  # steps, values (NaN: none), walls (NaN: unknown)

_INSERT = ("INSERT INTO metric_blocks (trial_id, name, first_step, last_step, n, lo, hi, last_value, "
           "last_wall, codec, tail, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_BLOB_COLS = "first_step, last_step, n, codec, data"


@dataclass
class TrialUpdate:
    """Everything one ingest pass learned about one trial, written in one transaction.

    Points are kept per metric as columns (`series`), in the order reported;
    `rows` takes (trial, name, step, value, wall) tuples instead, for callers
    that have them that way.
    """

    trial_id: int
    rows: InitVar[list[MetricRow] | None] = None
    checkpoints: list[CheckpointRow] = field(default_factory=list)
    metrics_offset: int | None = None
    stdout_offset: int | None = None
    last_step: int | None = None
    best: tuple[float, int] | None = None  # best objective (value, step) seen in this batch
    diverged: bool = False
    bad_lines: int = 0
    bad_sample: str | None = None  # the first dropped line of the batch, with why (kept per trial)
    lines: int = 0  # metric lines the batch read, good and bad
    series: dict[str, Columns] = field(default_factory=dict)
    capture_json: str | None = None  # the printed-line capture's new state (see runner.printed)
    # Series whose order the printed-line capture counts itself (runner.printed.check_order):
    # the store counts out-of-order points of every other series.
    order_checked: set[str] = field(default_factory=set)
    out_of_order: int = 0  # points at or below their series' last step (set by the write)
    out_of_order_sample: str | None = None  # the first of them, described
    # (metric, step) -> the line of this batch that reported it, for that sample (ingest sets it;
    # called only when a point is out of order, so the in-order path pays nothing)
    line_of: Callable[[str, int], str | None] | None = None

    def __post_init__(self, rows: list[MetricRow] | None) -> None:
        for _, name, step, value, wall in rows or ():
            self.add(name, step, value, wall)

    def add(self, name: str, step: int, value: float | None, wall: float | None) -> None:
        cols = self.series.get(name)
        if cols is None:
            cols = self.series[name] = ([], [], [])
        cols[0].append(step)
        cols[1].append(sb.NAN if value is None else value)
        cols[2].append(sb.NAN if wall is None else wall)

    def points(self) -> list[MetricRow]:
        """The points as (trial, name, step, value, wall) tuples, None for NaN."""
        return [(self.trial_id, name, s, v if v == v else None, w if w == w else None)
                for name, (steps, values, walls) in self.series.items()
                for s, v, w in zip(steps, values, walls, strict=True)]

    def is_empty(self) -> bool:
        return not (self.series or self.checkpoints or self.bad_lines or self.diverged
                    or self.capture_json) and (
            self.metrics_offset is None and self.stdout_offset is None
        )


# What a trial's own data can make a write raise (a step beyond SQLite's INTEGER, a lone
# surrogate in a name): ingest drops such lines first, this is the last guard behind it.
DATA_ERRORS = (OverflowError, ValueError, sqlite3.DataError)


def write_updates(db: Database, updates: list[TrialUpdate], objective_mode: dict[int, str]) -> None:
    """Write the points, checkpoints, offsets and summaries of several trials at once.

    Offsets move in the same transaction as the rows they cover, so a crash
    between two passes re-reads exactly the lines that were not stored.
    `objective_mode` maps trial id -> 'min' | 'max'.

    If the batch holds data the store refuses (DATA_ERRORS), each trial is written on
    its own, and a trial whose batch is still refused has it dropped and counted as
    bad lines (its update is changed to say so), so one trial cannot stop the others.
    Store faults (locked, disk full) still raise: the pass is retried whole.
    """
    try:
        _write(db, updates, objective_mode)
        return
    except DATA_ERRORS as exc:
        if len(updates) == 1:
            _refuse(db, updates[0], exc)
            return
    for u in updates:
        try:
            _write(db, [u], objective_mode)
        except DATA_ERRORS as exc:
            _refuse(db, u, exc)


def _refuse(db: Database, u: TrialUpdate, exc: Exception) -> None:
    """Skip a batch the store would not take: its offsets move past it, its lines count as bad."""
    reason = f"the store refused this batch ({type(exc).__name__}: {exc})"
    reason = reason.encode("utf-8", errors="backslashreplace").decode("utf-8")
    refused = TrialUpdate(trial_id=u.trial_id, metrics_offset=u.metrics_offset, stdout_offset=u.stdout_offset,
                          bad_lines=max(u.lines, u.bad_lines, 1), bad_sample=reason)
    _write(db, [refused], {})
    u.series, u.checkpoints, u.best, u.last_step = {}, [], None, None
    u.out_of_order, u.out_of_order_sample = 0, None  # counted by the write that was rolled back
    u.bad_lines, u.bad_sample = refused.bad_lines, refused.bad_sample


def _write(db: Database, updates: list[TrialUpdate], objective_mode: dict[int, str]) -> None:
    checkpoints = [c for u in updates for c in u.checkpoints]
    now = time.time()
    with transaction(db):
        conn = db.conn
        for u in updates:
            u.out_of_order, u.out_of_order_sample = 0, None
            for name, cols in u.series.items():
                repeats, first = _append_series(conn, u.trial_id, name, *cols)
                if repeats and name not in u.order_checked:
                    u.out_of_order += repeats
                    u.out_of_order_sample = u.out_of_order_sample or _out_of_order_sample(u, name, first)
        if checkpoints:
            conn.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?)", checkpoints)
        for u in updates:
            conn.execute(
                "UPDATE trials SET metrics_offset = COALESCE(?, metrics_offset), "
                "stdout_offset = COALESCE(?, stdout_offset), "
                "last_step = MAX(COALESCE(last_step, ?), COALESCE(?, last_step)), "
                "last_report_at = CASE WHEN ? THEN ? ELSE last_report_at END, "
                "diverged = MAX(diverged, ?), bad_lines = bad_lines + ?, "
                "bad_line_sample = COALESCE(bad_line_sample, ?), out_of_order = out_of_order + ?, "
                "out_of_order_sample = COALESCE(out_of_order_sample, ?) WHERE id = ?",
                [u.metrics_offset, u.stdout_offset, u.last_step, u.last_step, bool(u.series), now,
                 int(u.diverged), u.bad_lines, u.bad_sample, u.out_of_order, u.out_of_order_sample,
                 u.trial_id],
            )
            if u.capture_json is not None:
                conn.execute("INSERT OR REPLACE INTO trial_capture VALUES (?, ?)", [u.trial_id, u.capture_json])
            if u.best is not None:
                better = "<" if objective_mode.get(u.trial_id, "min") == "min" else ">"
                conn.execute(
                    f"UPDATE trials SET best_value = ?, best_step = ? WHERE id = ? "
                    f"AND (best_value IS NULL OR ? {better} best_value)",
                    [u.best[0], u.best[1], u.trial_id, u.best[0]],
                )


def _append_series(conn, trial_id: int, name: str, steps: list[int], values: list[float],
                   walls: list[float]) -> tuple[int, tuple[int, int, float] | None]:
    """Store one series' new points: append them to its open tail, or merge where they overlap.

    Returns how many points came at or below a step the series already had (stored, or
    earlier in this batch), with the first of them (see _out_of_order); 0 on the in-order path.
    """
    last = conn.execute(
        "SELECT last_step, tail FROM metric_blocks WHERE trial_id = ? AND name = ? "
        "ORDER BY first_step DESC LIMIT 1", [trial_id, name]).fetchone()
    in_order = sb.is_increasing(steps)
    if in_order and (last is None or steps[0] > last[0]):
        _extend_series(conn, trial_id, name, steps, values, walls, 0 if last is None else last[1])
        return 0, None
    repeats = _out_of_order(steps, values, None if last is None else last[0])
    if not in_order:
        steps, values, walls = sb.merge([], steps, values, walls)
    if last is not None and steps[0] <= last[0]:
        _merge_series(conn, trial_id, name, steps, values, walls)
    else:
        _extend_series(conn, trial_id, name, steps, values, walls, last[1] if last else 0)
    return repeats


def _out_of_order(steps: list[int], values: list[float], stored_last: int | None
                  ) -> tuple[int, tuple[int, int, float] | None]:
    """Points at or below the highest step their series had before them, and the first one
    as (its step, the highest step before it, its value)."""
    count, first = 0, None
    highest = stored_last
    for step, value in zip(steps, values, strict=True):
        if highest is not None and step <= highest:
            count += 1
            first = first or (step, highest, value)
        else:
            highest = step
    return count, first


def _out_of_order_sample(u: TrialUpdate, name: str, first: tuple[int, int, float]) -> str:
    """The first out-of-order point in words, with the line that reported it when ingest knows it."""
    step, highest, value = first
    text = (f"{name} at step {step} after step {highest} (value {value:.6g}; merged by step, the last "
            "value reported wins)")
    line = u.line_of(name, step) if u.line_of is not None else None
    return f"{text}: {line}" if line else text


def _extend_series(conn, trial_id: int, name: str, steps: list[int], values: list[float],
                   walls: list[float], pending: int) -> None:
    """Append points that all come after the series' stored ones.

    They go in as one raw row of the open tail (nothing stored is rewritten) until the tail
    would reach SEAL_POINTS: then the tail and the new points are sealed into packed blocks,
    the rest (fewer than SEAL_POINTS) starting a new tail.
    """
    if pending + len(steps) < sb.SEAL_POINTS:
        conn.execute(_INSERT, sb.block_row(trial_id, name, steps, values, walls, sb.RAW, pending + len(steps)))
        return
    if pending:
        tail = _take_tail(conn, trial_id, name)
        steps, values, walls = (np.concatenate((old, np.asarray(new, dtype=old.dtype))) for old, new in
                                ((tail.steps, steps), (tail.values, values), (tail.walls, walls)))
    sealed = len(steps) - len(steps) % sb.SEAL_POINTS
    rows = sb.block_rows(trial_id, name, steps[:sealed], values[:sealed], walls[:sealed])
    if sealed < len(steps):
        rest = [list(col[sealed:]) if isinstance(col, list) else col[sealed:].tolist()
                for col in (steps, values, walls)]
        rows.append(sb.block_row(trial_id, name, *rest, sb.RAW, len(steps) - sealed))
    conn.executemany(_INSERT, rows)


def _tail_rows(conn, trial_id: int, name: str) -> list[tuple]:
    """The series' open tail: its raw rows at the end, newest first (as _BLOB_COLS)."""
    rows = []
    cursor = conn.execute(f"SELECT {_BLOB_COLS} FROM metric_blocks WHERE trial_id = ? AND name = ? "
                          "ORDER BY first_step DESC", [trial_id, name])
    try:
        for row in cursor:
            if row[3] != sb.RAW:
                break
            rows.append(row)
    finally:
        cursor.close()
    return rows


def _take_tail(conn, trial_id: int, name: str) -> sb.Block:
    """The series' open tail (its raw rows, in step order), deleted from the table."""
    rows = _tail_rows(conn, trial_id, name)
    if rows:
        conn.execute("DELETE FROM metric_blocks WHERE trial_id = ? AND name = ? AND first_step >= ?",
                     [trial_id, name, rows[-1][0]])
    return sb.concat([sb.unpack(*row) for row in reversed(rows)])


def seal_tails(db: Database, trial_id: int) -> int:
    """Pack every open tail of a trial into a sealed block (it has ended: no pass will fill them).

    Returns the points sealed. One transaction: a crash leaves the tails as they were.
    """
    sealed = 0
    with transaction(db):
        conn = db.conn
        names = [r[0] for r in conn.execute(
            "SELECT DISTINCT name FROM metric_blocks WHERE trial_id = ? AND codec = ?", [trial_id, sb.RAW])]
        for name in names:
            tail = _take_tail(conn, trial_id, name)
            if len(tail.steps):
                conn.executemany(_INSERT, sb.block_rows(trial_id, name, tail.steps, tail.values, tail.walls))
                sealed += len(tail.steps)
    return sealed


def _merge_series(conn, trial_id: int, name: str, steps: list[int], values: list[float],
                  walls: list[float]) -> None:
    """Rewrite the blocks from the one just before the new points to the series' end (its open
    tail included) as one run of sealed blocks."""
    where = "trial_id = ? AND name = ?"
    before = conn.execute(f"SELECT first_step FROM metric_blocks WHERE {where} AND first_step <= ? "
                          "ORDER BY first_step DESC LIMIT 1", [trial_id, name, steps[0]]).fetchone()
    start = before[0] if before else steps[0]
    tail = _tail_rows(conn, trial_id, name)
    if tail:  # the open tail is rewritten too, so that raw rows stay only at the series' end
        start = min(start, tail[-1][0])
    old = conn.execute(f"SELECT {_BLOB_COLS} FROM metric_blocks WHERE {where} "
                       "AND first_step >= ? ORDER BY first_step", [trial_id, name, start]).fetchall()
    conn.execute(f"DELETE FROM metric_blocks WHERE {where} AND first_step >= ?", [trial_id, name, start])
    merged = sb.merge([sb.unpack(*row) for row in old], steps, values, walls)
    conn.executemany(_INSERT, sb.block_rows(trial_id, name, *merged))


@dataclass(frozen=True)
class Series:
    """One metric of one trial, at most `max_points` buckets long.

    `values` is the last value in each bucket (what the curve draws); `lows`
    and `highs` are the bucket's extremes, so a downsampled spike stays visible.
    A None value is a non-finite point (NaN). `walls` is the wall-clock time
    (Unix seconds) the drawn point was reported at, None where unknown.
    """

    name: str
    steps: list[int]
    values: list[float | None]
    lows: list[float | None]
    highs: list[float | None]
    total_points: int
    walls: list[float | None] = field(default_factory=list)


def read_series(db: Database, trial_id: int, name: str, max_points: int = 400) -> Series:
    """A metric's curve, downsampled to at most `max_points` buckets by step.

    Bounded work whatever the length: one scan of the series' block summaries, and
    only the blocks that straddle a bucket boundary are unpacked (at most two per
    bucket); a block inside one bucket is taken from its summary. A step range no
    wider than `max_points` is read whole.
    """
    conn = db.conn
    summaries = conn.execute(
        "SELECT first_step, last_step, n, lo, hi, last_value, last_wall FROM metric_blocks "
        "WHERE trial_id = ? AND name = ? ORDER BY first_step", [trial_id, name]).fetchall()
    if not summaries:
        return Series(name, [], [], [], [], 0)
    lo_step, hi_step = summaries[0][0], summaries[-1][1]
    span = hi_step - lo_step + 1
    if span <= max_points:
        steps, values, walls = _read_points(conn, trial_id, name)
        return Series(name, steps, values, values, values, len(steps), walls)
    split = [s[0] for s in summaries
             if (s[0] - lo_step) * max_points // span != (s[1] - lo_step) * max_points // span]
    return _bucketed(name, summaries, _blocks_at(conn, trial_id, name, split), lo_step, span, max_points)


def _bucketed(name: str, summaries: list[tuple], blocks: dict[int, sb.Block], lo_step: int, span: int,
              max_points: int) -> Series:
    """Buckets from whole-block summaries and unpacked blocks' points, in step order.

    A summary counts as one point already reduced (its last step and value, its
    extremes, its count), so one grouped reduction handles both. numpy: the read
    side loads it anyway, and a 10,000-point curve took 4.8 ms bucketed in Python.
    """
    import numpy as np

    segments, pending = [], []
    for row in summaries:
        block = blocks.get(row[0])
        if block is None:
            pending.append(row)
            continue
        if pending:
            segments.append(_summary_segment(np, pending))
            pending = []
        values = block.values
        segments.append((block.steps, values, values, values, block.walls, np.ones(len(values), np.int64)))
    if pending:
        segments.append(_summary_segment(np, pending))
    steps, lows, highs, values, walls, counts = (np.concatenate(col) for col in zip(*segments, strict=True))
    keys = (steps - lo_step) * max_points // span
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    ends = np.concatenate((starts[1:], [len(keys)])) - 1
    with np.errstate(invalid="ignore"):  # an all-NaN bucket is NaN (None), not a warning
        bucket_lows, bucket_highs = np.fmin.reduceat(lows, starts), np.fmax.reduceat(highs, starts)
    return Series(name, steps[ends].tolist(), sb.values_of(values[ends].tolist()),
                  sb.values_of(bucket_lows.tolist()), sb.values_of(bucket_highs.tolist()),
                  int(counts.sum()), sb.values_of(walls[ends].tolist()))


def _summary_segment(np, rows: list[tuple]) -> tuple:
    """Whole blocks as reduced points: (last step, lo, hi, last value, last wall, count) columns."""
    def floats(i: int):
        return np.array([sb.NAN if r[i] is None else r[i] for r in rows], dtype=np.float64)

    return (np.array([r[1] for r in rows], dtype=np.int64), floats(3), floats(4), floats(5), floats(6),
            np.array([r[2] for r in rows], dtype=np.int64))


def _blocks_at(conn, trial_id: int, name: str, firsts: list[int]) -> dict[int, sb.Block]:
    blocks: dict[int, sb.Block] = {}
    for k in range(0, len(firsts), 500):  # keep under SQLite's bound-parameter limit
        chunk = firsts[k:k + 500]
        for row in conn.execute(
                f"SELECT {_BLOB_COLS} FROM metric_blocks WHERE trial_id = ? AND name = ? "
                f"AND first_step IN ({','.join('?' * len(chunk))})", [trial_id, name, *chunk]):
            blocks[row[0]] = sb.unpack(*row)
    return blocks


def _read_points(conn, trial_id: int, name: str) -> tuple[list[int], list, list]:
    rows = conn.execute(f"SELECT {_BLOB_COLS} FROM metric_blocks WHERE trial_id = ? AND name = ? "
                        "ORDER BY first_step", [trial_id, name]).fetchall()
    block = sb.concat([sb.unpack(*row) for row in rows])
    return block.steps.tolist(), sb.values_of(block.values), sb.values_of(block.walls)


def read_all(db: Database, trial_id: int, name: str) -> Series:
    """Every stored point of one metric of one trial, in step order, nothing downsampled.

    For statistics that need every step (a percentile, a share of steps above a
    threshold); a plot should use read_series.
    """
    steps, values, walls = _read_points(db.conn, trial_id, name)
    return Series(name, steps, values, values, values, len(steps), walls)


def points(db: Database, trial_id: int | None = None, name: str | None = None) -> list[MetricRow]:
    """Every stored point (of one trial, of one metric, or both), by trial, name, step; None for NaN."""
    where = [f"{col} = ?" for col, v in (("trial_id", trial_id), ("name", name)) if v is not None]
    args = [v for v in (trial_id, name) if v is not None]
    series = db.execute(f"SELECT DISTINCT trial_id, name FROM metric_blocks WHERE {' AND '.join(where) or '1'} "
                        "ORDER BY trial_id, name", args).fetchall()
    out: list[MetricRow] = []
    for tid, n in series:
        steps, values, walls = _read_points(db.conn, tid, n)
        out.extend((tid, n, s, v, w) for s, v, w in zip(steps, values, walls, strict=True))
    return out


def recent(db: Database, trial_id: int, name: str, n: int) -> list[float | None]:
    """The last `n` values of a metric, oldest first (reads only the last blocks)."""
    parts: list[list[float | None]] = []
    have = 0
    cursor = db.conn.execute(f"SELECT {_BLOB_COLS} FROM metric_blocks WHERE trial_id = ? AND name = ? "
                             "ORDER BY first_step DESC", [trial_id, name])
    try:  # closed at once: an unfinished SELECT would hold this connection's read snapshot open
        for row in cursor:
            if have >= n:
                break
            parts.append(sb.values_of(sb.unpack(*row).values[-(n - have):]))
            have += len(parts[-1])
    finally:
        cursor.close()
    return [v for part in reversed(parts) for v in part]


def metric_names(db: Database, trial_id: int) -> list[str]:
    """Names of the metrics a trial reported, sorted."""
    return [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT name FROM metric_blocks WHERE trial_id = ? ORDER BY name", [trial_id]
        )
    ]


def latest(db: Database, trial_id: int, name: str) -> tuple[int, float | None] | None:
    """The last reported (step, value) of one metric."""
    row = db.execute(
        "SELECT last_step, last_value FROM metric_blocks WHERE trial_id = ? AND name = ? "
        "ORDER BY first_step DESC LIMIT 1", [trial_id, name]).fetchone()
    return (row[0], row[1]) if row else None


def count_points(db: Database, trial_id: int | None = None) -> int:
    """Stored points of one trial, or of the whole database."""
    if trial_id is None:
        return db.execute("SELECT COALESCE(SUM(n), 0) FROM metric_blocks").fetchone()[0]
    return db.execute("SELECT COALESCE(SUM(n), 0) FROM metric_blocks WHERE trial_id = ?",
                      [trial_id]).fetchone()[0]


def checkpoints(db: Database, trial_id: int) -> list[dict]:
    return list(db["checkpoints"].rows_where("trial_id = ?", [trial_id], order_by="step"))
