"""Metric series stored in blocks: what a reader gets back equals what was reported, however
the points arrived (in passes, repeated, out of order, resumed), and a downsampled curve
equals the same buckets computed from every point."""

from __future__ import annotations

import math
import random
import sqlite3

import pytest
from test_store import add_study, add_trials

import store
from store import metrics
from store.metrics import TrialUpdate
from store.series_blocks import SEAL_POINTS as BLOCK_POINTS
from store.trials import TrialState


def write(db, trial_id, points, name="loss"):
    """One ingest pass: (step, value, wall) points of one metric."""
    rows = [(trial_id, name, s, v, w) for s, v, w in points]
    metrics.write_updates(db, [TrialUpdate(trial_id, rows=rows)], {})


def stored(db, trial_id, name="loss"):
    return [(s, v, w) for _, _, s, v, w in metrics.points(db, trial_id, name)]


def expected_after(passes):
    """What a per-point INSERT OR REPLACE would hold: the last value reported at each step."""
    last: dict[int, tuple] = {}
    for points in passes:
        for s, v, w in points:
            last[s] = (v, w)
    return [(s, *last[s]) for s in sorted(last)]


def reference_buckets(points, max_points):
    """read_series' contract computed from every point: bucket by step, last value, extremes."""
    lo, hi = points[0][0], points[-1][0]
    span = hi - lo + 1
    buckets: dict[int, list] = {}
    for s, v, w in points:
        buckets.setdefault((s - lo) * max_points // span, []).append((s, v, w))
    steps, values, lows, highs, walls = [], [], [], [], []
    for key in sorted(buckets):
        pts = buckets[key]
        finite = [v for _, v, _ in pts if v is not None]
        steps.append(pts[-1][0])
        values.append(pts[-1][1])
        walls.append(pts[-1][2])
        lows.append(min(finite) if finite else None)
        highs.append(max(finite) if finite else None)
    return steps, values, lows, highs, walls


@pytest.fixture
def trial(db):
    return add_trials(db, add_study(db), n=1)[0]


def test_points_written_in_many_small_passes_read_back_exactly(db, trial):
    rng = random.Random(3)
    passes, step = [], 0
    for _ in range(60):  # pass sizes around and across the block size
        n = rng.choice([1, 3, 17, BLOCK_POINTS - 1, BLOCK_POINTS, BLOCK_POINTS + 5])
        passes.append([(s, rng.random(), 1e9 + s) for s in range(step, step + n)])
        step += n
    for points in passes:
        write(db, trial.id, points)
    assert stored(db, trial.id) == expected_after(passes)
    assert metrics.count_points(db, trial.id) == step
    assert metrics.latest(db, trial.id, "loss") == (step - 1, passes[-1][-1][1])
    # Full blocks are sealed whole, not left as many small ones: about one per BLOCK_POINTS, and
    # fewer than BLOCK_POINTS points wait in the open tail.
    sealed, tail = db.execute("SELECT COUNT(*) FILTER (WHERE codec = 1), SUM(n) FILTER (WHERE codec = 0) "
                              "FROM metric_blocks WHERE trial_id = ?", [trial.id]).fetchone()
    assert sealed <= step // BLOCK_POINTS + 1 and (tail or 0) < BLOCK_POINTS


def test_repeated_out_of_order_and_resumed_steps_keep_the_last_reported_value(db, trial):
    first = [(s, float(s), 10.0 + s) for s in range(0, 1000)]
    repeat_in_pass = [(1000, 1.0, None), (1001, 2.0, None), (1000, 3.0, None)]  # 1000 ends as 3.0
    backwards = [(1500, 5.0, None), (1200, 6.0, None), (1100, 7.0, None)]
    resumed = [(s, -float(s), 20.0 + s) for s in range(400, 700)]  # a trial resumed from step 400
    before_all = [(0, 99.0, None)]  # rewrites the very first step
    passes = [first, repeat_in_pass, backwards, resumed, before_all]
    for points in passes:
        write(db, trial.id, points)
    got = stored(db, trial.id)
    assert got == expected_after(passes)
    assert dict((s, v) for s, v, _ in got)[1000] == 3.0
    # Blocks never overlap: each series' step ranges are disjoint and in order.
    ranges = db.execute("SELECT first_step, last_step FROM metric_blocks WHERE trial_id = ? "
                        "ORDER BY first_step", [trial.id]).fetchall()
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def test_nan_values_and_unknown_wall_times_come_back_as_none_and_inf_as_inf(db, trial):
    write(db, trial.id, [(0, 1.0, None), (1, None, 5.0), (2, math.inf, 6.0), (3, -math.inf, None)])
    assert stored(db, trial.id) == [(0, 1.0, None), (1, None, 5.0), (2, math.inf, 6.0),
                                    (3, -math.inf, None)]
    assert metrics.recent(db, trial.id, "loss", 3) == [None, math.inf, -math.inf]


@pytest.mark.parametrize("seed", range(6))
def test_downsampled_curve_equals_buckets_computed_from_every_point(db, trial, seed):
    rng = random.Random(seed)
    stride = rng.choice([1, 1, 3, 100])
    n = rng.choice([50, 399, 401, 3000, 20_000])
    points = []
    for i in range(n):
        if rng.random() < 0.1:
            continue  # gaps: not every step reported
        v = None if rng.random() < 0.02 else rng.gauss(0, 1)
        points.append((i * stride, v, None if rng.random() < 0.05 else 1e9 + i))
    points[rng.randrange(len(points))] = (points[len(points) // 2][0], 1e6, 1.0)  # a spike
    points.sort(key=lambda p: p[0])
    points = expected_after([points])
    chunk = rng.choice([7, 150, 5000])
    for i in range(0, len(points), chunk):
        write(db, trial.id, points[i:i + chunk])
    for max_points in (10, 400, 1000):
        got = metrics.read_series(db, trial.id, "loss", max_points=max_points)
        assert got.total_points == len(points)
        if points[-1][0] - points[0][0] + 1 <= max_points:
            assert got.steps == [p[0] for p in points]
            continue
        steps, values, lows, highs, walls = reference_buckets(points, max_points)
        assert (got.steps, got.values, got.lows, got.highs, got.walls) == (steps, values, lows, highs, walls)
        assert len(got.steps) <= max_points


def test_recent_spans_blocks_and_is_oldest_first(db, trial):
    write(db, trial.id, [(s, float(s), None) for s in range(3 * BLOCK_POINTS + 10)])
    last = 3 * BLOCK_POINTS + 9
    assert metrics.recent(db, trial.id, "loss", 200) == [float(s) for s in range(last - 199, last + 1)]
    assert metrics.recent(db, trial.id, "loss", 10_000)[0] == 0.0


def test_a_requeued_trial_starts_its_curves_afresh(db, trial):
    from store import trials

    write(db, trial.id, [(s, 1.0, None) for s in range(300)])
    assert trials.claim(db, trial.id, "cpu0", "host")
    trials.mark_running(db, trial.id, 1, None)
    db.execute("UPDATE trials SET state = ? WHERE id = ?", [TrialState.LOST.value, trial.id])
    assert trials.requeue(db, trial.id)
    assert metrics.count_points(db, trial.id) == 0 and metrics.read_series(db, trial.id, "loss").steps == []


def test_a_database_from_before_blocks_keeps_every_point(db_path, capsys):
    """Migration 0003 moves the row-per-point table into blocks: nothing lost, NaN kept as None."""
    from store.schema import MIGRATIONS

    old = store.connect(db_path, migrate=False)
    MIGRATIONS.apply(old, stop_before="0003_metric_blocks")
    trial = add_trials(old, add_study(old), n=2)
    rows = [(t.id, name, s, None if s == 8 else s * 0.5, 1e9 + s)
            for t in trial for name in ("loss", "acc") for s in range(0, 700, 2)]
    old.conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
    old.conn.close()
    db = store.connect(db_path)
    assert "store: 1,400 points moved in" in capsys.readouterr().err  # a long wait says what it is
    assert sorted(metrics.points(db)) == sorted(rows)
    assert metrics.read_series(db, trial[0].id, "loss", max_points=50).total_points == 350
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.execute("SELECT * FROM metrics")
