"""The second block layout (store.series_blocks): what a database holds per point, that every
value reads back bit for bit, that a live series' tail is appended and never rewritten, and
migration 0008 from a database written by the first layout."""

from __future__ import annotations

import math
import random
import struct

import pytest
from test_metric_blocks import reference_buckets
from test_store import add_study, add_trials

import store
from store import metrics
from store.metrics import TrialUpdate
from store.series_blocks import SEAL_POINTS


@pytest.fixture
def trial(db):
    return add_trials(db, add_study(db), n=1)[0]


def write(db, trial_id, points, name="loss"):
    metrics.write_updates(db, [TrialUpdate(trial_id, rows=[(trial_id, name, s, v, w) for s, v, w in points])], {})


def stored(db, trial_id, name="loss"):
    return [(s, v, w) for _, _, s, v, w in metrics.points(db, trial_id, name)]


def bits(x):
    return None if x is None else struct.pack("<d", x)


@pytest.mark.parametrize("kind", ["float64", "float32", "smooth", "awkward"])
def test_every_value_and_wall_time_reads_back_bit_for_bit(db, trial, kind):
    rng = random.Random(kind)
    n = 3 * SEAL_POINTS + 77
    if kind == "float64":  # a noisy loss: no two neighbours share low bits
        values = [2.5 * math.exp(-i / 900) + 0.05 * rng.random() for i in range(n)]
    elif kind == "float32":  # what a float32 tensor's .item() hands out
        values = [struct.unpack("<f", struct.pack("<f", rng.gauss(1, 0.3)))[0] for _ in range(n)]
    elif kind == "smooth":  # a cosine learning-rate schedule
        values = [3e-4 * (1 + math.cos(math.pi * i / n)) / 2 for i in range(n)]
    else:  # signed zeros, subnormals, infinities, NaN (None), the extremes of a float64
        pool = [0.0, -0.0, 5e-324, -2.2e-308, math.inf, -math.inf, None, 1.7976931348623157e308, 1 / 3]
        values = [rng.choice(pool) for _ in range(n)]
    steps = sorted(rng.sample(range(0, 50 * n), n)) if kind != "smooth" else list(range(0, 7 * n, 7))
    walls = [None if rng.random() < 0.01 else 1.7e9 + i * 0.137 + rng.random() * 1e-3 for i in range(n)]
    points = list(zip(steps, values, walls, strict=True))
    for i in range(0, n, 500):  # live passes: an open tail, then sealed blocks
        write(db, trial.id, points[i:i + 500])
    got = stored(db, trial.id)
    assert [s for s, _, _ in got] == steps
    assert [bits(v) for _, v, _ in got] == [bits(v) for v in values]
    assert [bits(w) for _, _, w in got] == [bits(w) for w in walls]
    metrics.seal_tails(db, trial.id)
    assert [(s, bits(v), bits(w)) for s, v, w in stored(db, trial.id)] == [
        (s, bits(v), bits(w)) for s, v, w in points]


def test_a_training_like_series_takes_under_12_bytes_a_point(db_path):
    """Four metrics of 100k steps, logged 100 steps a pass: the metric table and its index hold
    under 12 bytes a point (the first layout took 32), once the trial has ended."""
    db = store.connect(db_path)
    (t,) = add_trials(db, add_study(db), n=1)
    rng = random.Random(5)
    steps = 100_000
    for start in range(0, steps, 100):
        rows = []
        for s in range(start, start + 100):
            wall = 1.7e9 + s * 0.21 + rng.random() * 0.01
            rows += [(t.id, "train_loss", s, 2.5 * math.exp(-s / 30000) + 0.05 * rng.random(), wall),
                     (t.id, "grad_norm", s, struct.unpack("<f", struct.pack("<f", 1 + rng.random()))[0], wall),
                     (t.id, "lr", s, 3e-4 * (1 + math.cos(math.pi * s / steps)) / 2, wall),
                     (t.id, "examples_per_s", s, 12345.6 + s % 13, wall)]
        metrics.write_updates(db, [TrialUpdate(t.id, rows=rows)], {})
    metrics.seal_tails(db, t.id)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    used = db.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'metric_blocks%'").fetchone()[0]
    assert used / (4 * steps) < 12
    assert metrics.count_points(db, t.id) == 4 * steps


def test_a_pass_appends_its_points_and_never_rewrites_the_tail(db, trial):
    """One point a pass: each pass adds one row, the rows stored before it are untouched."""
    for s in range(200):
        write(db, trial.id, [(s, float(s), 1e9 + s)])
        if s == 99:
            before = db.execute("SELECT rowid, data FROM metric_blocks ORDER BY rowid").fetchall()
    after = db.execute("SELECT rowid, data FROM metric_blocks ORDER BY rowid").fetchall()
    assert after[:100] == before and len(after) == 200
    assert stored(db, trial.id) == [(s, float(s), 1e9 + s) for s in range(200)]


def test_a_full_tail_is_sealed_and_sealing_an_ended_trial_keeps_every_point(db, trial):
    points = [(s, s * 0.5, 1e9 + s) for s in range(SEAL_POINTS + 300)]
    for i in range(0, len(points), 50):
        write(db, trial.id, points[i:i + 50])
    kinds = db.execute("SELECT codec, SUM(n) FROM metric_blocks GROUP BY codec ORDER BY codec").fetchall()
    assert kinds == [(0, 300), (1, SEAL_POINTS)]  # raw open tail, one packed block
    assert metrics.seal_tails(db, trial.id) == 300
    assert db.execute("SELECT codec, SUM(n) FROM metric_blocks GROUP BY codec").fetchall() == [
        (1, len(points))]
    assert stored(db, trial.id) == points
    write(db, trial.id, [(len(points), 7.0, None)])  # a later point (a resumed trial) still appends
    assert stored(db, trial.id)[-1] == (len(points), 7.0, None)


def test_a_point_back_in_step_rewrites_the_open_tail_too(db, trial):
    """A resumed trial logging an early step again while its series has an open tail: the merged run
    is sealed whole, so no raw row is left stranded before a sealed one (it would never be sealed)."""
    points = [(s, float(s), None) for s in range(SEAL_POINTS + 200)]
    write(db, trial.id, points[:SEAL_POINTS + 100])  # seals 1,024, leaves a raw row of 100
    write(db, trial.id, points[SEAL_POINTS + 100:])  # a second raw row of 100
    write(db, trial.id, [(SEAL_POINTS + 150, -1.0, None)])  # back in step, into the second raw row
    rows = db.execute("SELECT codec FROM metric_blocks WHERE trial_id = ? ORDER BY first_step",
                      [trial.id]).fetchall()
    assert [c for (c,) in rows] == sorted((c for (c,) in rows), reverse=True)  # packed, then raw
    expected = dict((s, v) for s, v, _ in points)
    expected[SEAL_POINTS + 150] = -1.0
    assert [(s, v) for s, v, _ in stored(db, trial.id)] == sorted(expected.items())
    metrics.seal_tails(db, trial.id)
    assert db.execute("SELECT COUNT(*) FROM metric_blocks WHERE codec = 0").fetchone()[0] == 0


# -- migration 0008 from the first block layout ------------------------------------------------

def v3_rows(trial_id, name, points, size=128):
    """Rows of the first layout, written here byte by byte as its writer did: 128 points a block;
    steps NULL when evenly spaced, else little-endian int64s; float64 values and walls, NaN for none."""
    rows = []
    for i in range(0, len(points), size):
        chunk = points[i:i + size]
        steps = [p[0] for p in chunk]
        vals = [math.nan if p[1] is None else p[1] for p in chunk]
        walls = [math.nan if p[2] is None else p[2] for p in chunk]
        n, first, last = len(steps), steps[0], steps[-1]
        stride = (last - first) // (n - 1) if n > 1 else 1
        even = steps == list(range(first, last + 1, stride))
        finite = [v for v in vals if v == v]
        rows.append((trial_id, name, first, last, n, min(finite, default=None), max(finite, default=None),
                     chunk[-1][1], chunk[-1][2], None if even else struct.pack(f"<{n}q", *steps),
                     struct.pack(f"<{n}d", *vals), struct.pack(f"<{n}d", *walls)))
    return rows


def test_a_database_of_the_first_block_layout_is_repacked_with_every_point(db_path, capsys, monkeypatch):
    from store import schema

    monkeypatch.setattr(schema, "PROGRESS_EVERY_SERIES", 2)
    old = store.connect(db_path, migrate=False)
    schema.MIGRATIONS.apply(old, stop_before="0008_packed_metric_blocks")
    ts = add_trials(old, add_study(old), n=3)
    rng = random.Random(8)
    expected = {}
    for t in ts:
        for name in ("loss", "acc", "lr"):
            n = rng.choice([1, 127, 128, 129, 2500])
            stride = rng.choice([1, 10])
            steps = sorted(rng.sample(range(10 * n), n)) if name == "acc" else list(range(0, n * stride, stride))
            pts = [(s, None if rng.random() < 0.02 else rng.gauss(0, 1), None if rng.random() < 0.02 else 1e9 + s)
                   for s in steps]
            expected[(t.id, name)] = pts
            old.conn.executemany("INSERT INTO metric_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 v3_rows(t.id, name, pts))
    old.conn.commit()
    old.conn.close()

    db = store.connect(db_path)
    err = capsys.readouterr().err
    assert "store: packing the metric points of 9 series" in err
    assert "store: 2/9 series (22%)" in err and "store: 9/9 series (100%)" in err
    for (tid, name), pts in expected.items():
        got = [(s, bits(v), bits(w)) for s, v, w in stored(db, tid, name)]
        assert got == [(s, bits(v), bits(w)) for s, v, w in pts], (tid, name)
        series = metrics.read_series(db, tid, name, max_points=50)
        assert series.total_points == len(pts)
        if pts[-1][0] - pts[0][0] + 1 > 50:  # a downsampled curve: the same buckets as from every point
            assert (series.steps, series.values, series.lows, series.highs, series.walls) == \
                reference_buckets(pts, 50)
    assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'metric_blocks_v3'").fetchone()[0] == 0
