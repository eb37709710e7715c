"""Metric points: batched writes from ingest, downsampled reads for curves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from operator import itemgetter

from sqlite_utils import Database

from store.db import transaction

MetricRow = tuple[int, str, int, "float | None", "float | None"]  # trial, name, step, value, wall
_KEY = itemgetter(0, 1, 2)
CheckpointRow = tuple[int, int, str, "float | None", "float | None"]  # trial, step, path, obj, wall


@dataclass
class TrialUpdate:
    """Everything one ingest pass learned about one trial, written in one transaction."""

    trial_id: int
    rows: list[MetricRow] = field(default_factory=list)
    checkpoints: list[CheckpointRow] = field(default_factory=list)
    metrics_offset: int | None = None
    stdout_offset: int | None = None
    last_step: int | None = None
    best: tuple[float, int] | None = None  # best objective (value, step) seen in this batch
    diverged: bool = False
    bad_lines: int = 0

    def is_empty(self) -> bool:
        return not (self.rows or self.checkpoints or self.bad_lines or self.diverged) and (
            self.metrics_offset is None and self.stdout_offset is None
        )


def write_updates(db: Database, updates: list[TrialUpdate], objective_mode: dict[int, str]) -> None:
    """Write the points, checkpoints, offsets and summaries of several trials at once.

    Offsets move in the same transaction as the rows they cover, so a crash
    between two passes re-reads exactly the lines that were not stored.
    `objective_mode` maps trial id -> 'min' | 'max'.
    """
    rows = [r for u in updates for r in u.rows]
    # Key order makes every insert an append to its series' B-tree pages (the table is
    # clustered on trial, name, step); the sort is stable, so a repeated step still ends
    # with its last reported value.
    rows.sort(key=_KEY)
    checkpoints = [c for u in updates for c in u.checkpoints]
    now = time.time()
    with transaction(db):
        conn = db.conn
        if rows:
            conn.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
        if checkpoints:
            conn.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?)", checkpoints)
        for u in updates:
            conn.execute(
                "UPDATE trials SET metrics_offset = COALESCE(?, metrics_offset), "
                "stdout_offset = COALESCE(?, stdout_offset), "
                "last_step = MAX(COALESCE(last_step, ?), COALESCE(?, last_step)), "
                "last_report_at = CASE WHEN ? THEN ? ELSE last_report_at END, "
                "diverged = MAX(diverged, ?), bad_lines = bad_lines + ? WHERE id = ?",
                [u.metrics_offset, u.stdout_offset, u.last_step, u.last_step, bool(u.rows), now,
                 int(u.diverged), u.bad_lines, u.trial_id],
            )
            if u.best is not None:
                better = "<" if objective_mode.get(u.trial_id, "min") == "min" else ">"
                conn.execute(
                    f"UPDATE trials SET best_value = ?, best_step = ? WHERE id = ? "
                    f"AND (best_value IS NULL OR ? {better} best_value)",
                    [u.best[0], u.best[1], u.trial_id, u.best[0]],
                )


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
    """A metric's curve, downsampled in SQL to at most `max_points` buckets by step.

    Bounded work whatever the length: two index seeks for the step range, one
    grouped scan for the buckets' extremes, and one seek per bucket for its
    last value. Steps are unique per series, so a range no wider than
    `max_points` is read whole.
    """
    conn = db.conn
    where = "trial_id = ? AND name = ?"
    lo = conn.execute(f"SELECT step FROM metrics WHERE {where} ORDER BY step LIMIT 1",
                      [trial_id, name]).fetchone()
    if lo is None:
        return Series(name, [], [], [], [], 0)
    lo = lo[0]
    hi = conn.execute(f"SELECT step FROM metrics WHERE {where} ORDER BY step DESC LIMIT 1",
                      [trial_id, name]).fetchone()[0]
    span = hi - lo + 1
    if span <= max_points:
        pts = conn.execute(f"SELECT step, value, wall_time FROM metrics WHERE {where} ORDER BY step",
                           [trial_id, name]).fetchall()
        values = [p[1] for p in pts]
        return Series(name, [p[0] for p in pts], values, values, values, len(pts), [p[2] for p in pts])
    buckets = conn.execute(
        f"SELECT MAX(step), MIN(value), MAX(value), COUNT(*) FROM metrics WHERE {where} "
        "GROUP BY ((step - ?) * ?) / ? ORDER BY 1",
        [trial_id, name, lo, max_points, span],
    ).fetchall()
    steps = [b[0] for b in buckets]
    last = {row[0]: row[1:] for row in conn.execute(
        f"SELECT step, value, wall_time FROM metrics WHERE {where} "
        f"AND step IN ({','.join('?' * len(steps))})",
        [trial_id, name, *steps],
    )}
    return Series(name, steps, [last[s][0] for s in steps], [b[1] for b in buckets],
                  [b[2] for b in buckets], sum(b[3] for b in buckets), [last[s][1] for s in steps])


def recent(db: Database, trial_id: int, name: str, n: int) -> list[float | None]:
    """The last `n` values of a metric, oldest first (one index seek, however long the series)."""
    rows = db.execute(
        "SELECT value FROM metrics WHERE trial_id = ? AND name = ? ORDER BY step DESC LIMIT ?",
        [trial_id, name, n],
    ).fetchall()
    return [r[0] for r in reversed(rows)]


def metric_names(db: Database, trial_id: int) -> list[str]:
    """Names of the metrics a trial reported, sorted."""
    return [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT name FROM metrics WHERE trial_id = ? ORDER BY name", [trial_id]
        )
    ]


def latest(db: Database, trial_id: int, name: str) -> tuple[int, float | None] | None:
    """The last reported (step, value) of one metric."""
    row = db.execute(
        "SELECT step, value FROM metrics WHERE trial_id = ? AND name = ? ORDER BY step DESC LIMIT 1",
        [trial_id, name],
    ).fetchone()
    return (row[0], row[1]) if row else None


def count_points(db: Database, trial_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM metrics WHERE trial_id = ?", [trial_id]).fetchone()[0]


def checkpoints(db: Database, trial_id: int) -> list[dict]:
    return list(db["checkpoints"].rows_where("trial_id = ?", [trial_id], order_by="step"))
