"""Curve reads: store.metrics.read_series(max_points=400) against a plain SELECT of the whole series.

Setup (not timed): a store of 200 trials x 10,000 steps x 4 metrics (8M points),
trials created through the store's functions, points inserted with executemany
straight into its metrics table, in key order.

Timed: read_series() for 20 trials x 2 metrics, on a fresh connection, first
with the database file dropped from the OS page cache (cold, best effort), then
again on warm caches; the baseline reads each full series with
SELECT step, value ... ORDER BY step (what a client drawing every point would do),
measured the same way.

    .venv/bin/python bench/read.py [--trials N] [--steps S] [--repeats R]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import drop_file_cache, make_trials, median, print_result  # noqa: E402

from store import metrics  # noqa: E402
from store.db import connect  # noqa: E402

METRICS = ("train_loss", "grad_norm", "lr", "val_error")
READ_TRIALS = 20
READ_METRICS = ("train_loss", "val_error")
MAX_POINTS = 400

FULL_SQL = "SELECT step, value FROM metrics WHERE trial_id = ? AND name = ? ORDER BY step"


def build(path: str, n_trials: int, steps: int) -> list[int]:
    """The store database with every point in; returns the trial ids."""
    db = connect(path)
    ids = make_trials(db, n_trials, os.path.dirname(path))
    conn = db.conn
    rng = random.Random(7)
    t_start = 1.7e9
    for tid in ids:
        base = 2.0 + rng.random()
        rows = []
        for name in sorted(METRICS):  # key order: (trial, name, step)
            r = rng.random
            if name == "train_loss":
                rows.extend((tid, name, s, base * math.exp(-s / 3000) + 0.05 * r(), t_start + s * 0.1)
                            for s in range(steps))
            elif name == "val_error":
                rows.extend((tid, name, s, 0.5 * math.exp(-s / 4000) + 0.02 * r(), t_start + s * 0.1)
                            for s in range(steps))
            elif name == "lr":
                rows.extend((tid, name, s, 3e-4 * (1 + math.cos(math.pi * s / steps)) / 2, t_start + s * 0.1)
                            for s in range(steps))
            else:
                rows.extend((tid, name, s, 1.0 + r(), t_start + s * 0.1) for s in range(steps))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    count = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    if count != n_trials * steps * len(METRICS):
        raise SystemExit(f"read bench: built {count} points, expected {n_trials * steps * len(METRICS)}")
    conn.close()
    return ids


def read_ours(path: str, picks: list[tuple[int, str]], steps: int) -> tuple[float, float]:
    """(seconds to open, seconds for all read_series calls) on a fresh connection."""
    t0 = time.perf_counter()
    db = connect(path)
    t1 = time.perf_counter()
    for tid, name in picks:
        s = metrics.read_series(db, tid, name, max_points=MAX_POINTS)
        if s.total_points != steps or not 0 < len(s.steps) <= MAX_POINTS or s.steps[-1] != steps - 1:
            raise SystemExit(f"read bench: read_series({tid}, {name}) gave {len(s.steps)} buckets "
                             f"of {s.total_points} points")
    t2 = time.perf_counter()
    db.conn.close()
    return t1 - t0, t2 - t1


def read_full(path: str, picks: list[tuple[int, str]], steps: int) -> tuple[float, float]:
    """The baseline: every point of each series, plain SELECT, on a fresh connection."""
    t0 = time.perf_counter()
    db = connect(path)
    t1 = time.perf_counter()
    conn = db.conn
    for tid, name in picks:
        pts = conn.execute(FULL_SQL, [tid, name]).fetchall()
        if len(pts) != steps:
            raise SystemExit(f"read bench: full read of ({tid}, {name}) gave {len(pts)} points")
    t2 = time.perf_counter()
    conn.close()
    return t1 - t0, t2 - t1


def run(n_trials: int = 200, steps: int = 10_000, repeats: int = 5) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp:
        path = os.path.join(tmp, "store.db")
        t0 = time.perf_counter()
        ids = build(path, n_trials, steps)
        build_s = time.perf_counter() - t0
        db_bytes = os.path.getsize(path)
        rng = random.Random(11)
        picks = [(tid, name) for tid in rng.sample(ids, min(READ_TRIALS, len(ids))) for name in READ_METRICS]

        cold_dropped = drop_file_cache(path)
        cold_ours = read_ours(path, picks, steps)
        drop_file_cache(path)
        cold_full = read_full(path, picks, steps)

        warm_ours, warm_full = [], []
        for _ in range(repeats):  # fresh connection each time: SQLite's own cache starts empty
            warm_ours.append(read_ours(path, picks, steps)[1])
            warm_full.append(read_full(path, picks, steps)[1])

    n = len(picks)
    ours_ms, full_ms = 1e3 * median(warm_ours), 1e3 * median(warm_full)
    return {
        "name": "read",
        "params": {"trials": n_trials, "steps": steps, "metrics": len(METRICS),
                   "points": n_trials * steps * len(METRICS), "series_read": n,
                   "max_points": MAX_POINTS, "repeats": repeats, "db_bytes": db_bytes},
        "build_s": build_s,
        "cold": {
            "page_cache_dropped": cold_dropped,
            "ours_ms": 1e3 * cold_ours[1], "full_ms": 1e3 * cold_full[1],
            "connect_ms": 1e3 * cold_ours[0],
            "ratio_ours_vs_full": cold_ours[1] / cold_full[1],
        },
        "warm": {
            "ours_ms": ours_ms, "full_ms": full_ms,
            "ours_ms_per_series": ours_ms / n, "full_ms_per_series": full_ms / n,
            "ratio_ours_vs_full": ours_ms / full_ms,
        },
        "goal": None,  # informational: no target was set for curve reads
        "ratio": ours_ms / full_ms,
    }


def summary_rows(res: dict) -> list[tuple[str, str, str, str]]:
    c, w, n = res["cold"], res["warm"], res["params"]["series_read"]
    return [
        (f"read_series x{n} cold{'' if c['page_cache_dropped'] else ' (cache not dropped)'}",
         f"{c['ours_ms']:.1f} ms", f"full SELECT {c['full_ms']:.1f} ms", f"{c['ratio_ours_vs_full']:.2f}x"),
        (f"read_series x{n} warm (fresh conn)", f"{w['ours_ms']:.1f} ms ({w['ours_ms_per_series']:.2f}/series)",
         f"full SELECT {w['full_ms']:.1f} ms", f"{w['ratio_ours_vs_full']:.2f}x"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    res = run(args.trials, args.steps, args.repeats)
    print_result(res)
    for row in summary_rows(res):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
