"""Curve reads: store.metrics.read_series(max_points=400) against a plain SELECT of the whole series.

Setup (not timed): a store of 200 trials x 10,000 steps x 4 metrics (8M points),
trials created through the store's functions, points inserted with executemany
straight into its metrics table, in key order.

Timed: read_series() for 20 trials x 2 metrics, on a fresh connection, first
with the database file dropped from the OS page cache (cold, best effort), then
again on warm caches; the baseline reads each full series with
store.metrics.points() (what a client drawing every point would do),
measured the same way.

    .venv/bin/python bench/read.py [--trials N] [--steps S] [--repeats R]
    .venv/bin/python bench/read.py --study    # the 1,000-trial study, against MLflow

--study: the study a user opens, 1,000 trials x 10,000 steps x 4 metrics (40M points,
tui_bench.build()'s file in the temp dir, built once and shared with the TUI bench).
Timed on a fresh connection, cold (file dropped from the page cache) and warm: every
trial's row (store.trials.list_for_study) plus read_series(train_loss, 400 points) of
20 trials (goal <= 300 ms). Baseline: MLflow's get_metric_history of the same 20
series, from an MLflow sqlite store holding those 20 series only (every point: MLflow
does not downsample), on a fresh client, cold and warm.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import drop_file_cache, make_trials, median, print_result, ratio  # noqa: E402

from store import metrics, trials  # noqa: E402
from store.db import connect  # noqa: E402
from store.metrics import TrialUpdate  # noqa: E402

METRICS = ("train_loss", "grad_norm", "lr", "val_error")
READ_TRIALS = 20
READ_METRICS = ("train_loss", "val_error")
MAX_POINTS = 400



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
        metrics.write_updates(db, [TrialUpdate(tid, rows=rows)], {})
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    count = metrics.count_points(db)
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
    """The baseline: every point of each series (store.metrics.points), on a fresh connection."""
    t0 = time.perf_counter()
    db = connect(path)
    t1 = time.perf_counter()
    for tid, name in picks:
        pts = metrics.points(db, tid, name)
        if len(pts) != steps:
            raise SystemExit(f"read bench: full read of ({tid}, {name}) gave {len(pts)} points")
    t2 = time.perf_counter()
    db.conn.close()
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


# -- one long series: 1,000,000 steps -----------------------------------------------------

LONG_STEPS = 1_000_000


def build_long(path: str, steps: int, chunk: int = 10_000) -> int:
    """One trial with one metric of `steps` steps, written in live-sized passes; its id."""
    db = connect(path)
    (tid,) = make_trials(db, 1, os.path.dirname(path))
    rng = random.Random(3)
    for start in range(0, steps, chunk):
        rows = [(tid, "train_loss", s, 2.0 * math.exp(-s / (steps / 3)) + 0.05 * rng.random(), 1.7e9 + s * 0.1)
                for s in range(start, min(steps, start + chunk))]
        metrics.write_updates(db, [TrialUpdate(tid, rows=rows)], {})
    seal = getattr(metrics, "seal_tails", None)  # what the runner does when the trial ends
    if seal is not None:
        seal(db, tid)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return tid


def run_long(steps: int = LONG_STEPS, repeats: int = 5) -> dict:
    """read_series(400 points) and read_all of one 1M-step series, cold and warm, fresh connections."""
    with tempfile.TemporaryDirectory(prefix="bench-read-long-") as tmp:
        path = os.path.join(tmp, "store.db")
        t0 = time.perf_counter()
        tid = build_long(path, steps)
        build_s = time.perf_counter() - t0

        def curve() -> float:
            db = connect(path)
            t = time.perf_counter()
            s = metrics.read_series(db, tid, "train_loss", max_points=MAX_POINTS)
            elapsed = time.perf_counter() - t
            db.conn.close()
            if s.total_points != steps or s.steps[-1] != steps - 1 or not 0 < len(s.steps) <= MAX_POINTS:
                raise SystemExit(f"read bench: long read_series gave {len(s.steps)} of {s.total_points}")
            return elapsed

        def every_point() -> float:
            db = connect(path)
            t = time.perf_counter()
            s = metrics.read_all(db, tid, "train_loss")
            elapsed = time.perf_counter() - t
            db.conn.close()
            if len(s.steps) != steps:
                raise SystemExit(f"read bench: long read_all gave {len(s.steps)} points")
            return elapsed

        dropped = drop_file_cache(path)
        cold = curve()
        warm = [curve() for _ in range(repeats)]
        full = [every_point() for _ in range(max(1, repeats // 2))]
        db_bytes = os.path.getsize(path)
    return {"name": "read_long", "params": {"steps": steps, "max_points": MAX_POINTS, "repeats": repeats},
            "build_s": build_s, "db_bytes": db_bytes, "bytes_per_point": db_bytes / steps,
            "page_cache_dropped": dropped, "read_series_cold_ms": 1e3 * cold,
            "read_series_warm_ms": 1e3 * median(warm), "read_all_warm_ms": 1e3 * median(full)}


def long_rows(res: dict) -> list[tuple[str, ...]]:
    steps = f"{res['params']['steps']:,}"
    return [(f"read_series of one {steps}-step series, cold / warm",
             f"{res['read_series_cold_ms']:.1f} / {res['read_series_warm_ms']:.1f} ms", "", "", "", ""),
            (f"read_all of one {steps}-step series, warm", f"{res['read_all_warm_ms']:.0f} ms",
             f"file {res['bytes_per_point']:.1f} B/point", "", "", "")]


# -- the study a user opens: 1,000 trials x 10,000 steps x 4 metrics --------------------

STUDY_GOAL_MS = 300.0
STUDY_METRIC = "train_loss"  # one curve per trial: 20 series, the same ones MLflow reads


def study_path(n_trials: int, steps: int) -> Path:
    """Where tui_bench keeps the big study's file (built once, reused by both benches)."""
    return Path(tempfile.gettempdir()) / "playbook-tui-bench" / f"bench-{n_trials}x{steps}" / "playbook.db"


def ensure_study(path: Path, n_trials: int, steps: int) -> None:
    """Build the study with tui_bench.build() unless its file is there (minutes at full size)."""
    import tui_bench

    if not path.exists():
        print(f"  building {n_trials} x {steps} x 4 study once at {path} (not timed)...", flush=True)
        tui_bench.build(path, n_trials, steps)


def open_study(path: str, study_id: int, picks: list[int], n_trials: int, steps: int) -> tuple[float, float]:
    """(table seconds, curves seconds) on a fresh connection: every trial's row, then 20 curves."""
    t0 = time.perf_counter()
    db = connect(path)
    rows = trials.list_for_study(db, study_id)
    t1 = time.perf_counter()
    if len(rows) != n_trials:
        raise SystemExit(f"read bench: trial table has {len(rows)} rows, expected {n_trials}")
    for tid in picks:
        s = metrics.read_series(db, tid, STUDY_METRIC, max_points=MAX_POINTS)
        if s.total_points != steps or not 0 < len(s.steps) <= MAX_POINTS:
            raise SystemExit(f"read bench: read_series({tid}) gave {len(s.steps)} of {s.total_points} points")
    t2 = time.perf_counter()
    db.conn.close()
    return t1 - t0, t2 - t1


def run_study(n_trials: int = 1000, steps: int = 10_000, repeats: int = 5, path: Path | None = None) -> dict:
    """The trial table and 20 downsampled curves of the big study; MLflow on the same 20 series."""
    import peers

    path = path or study_path(n_trials, steps)
    ensure_study(path, n_trials, steps)
    db = connect(path)
    study_id = db.execute("SELECT id FROM studies WHERE name = 'bench'").fetchone()[0]
    with_points = [r[0] for r in db.execute(
        "SELECT id FROM trials WHERE study_id = ? AND state != 'queued' ORDER BY id", [study_id])]
    picks = random.Random(11).sample(with_points, READ_TRIALS)
    series = [(f"trial-{tid}", [(p[2], p[3]) for p in metrics.points(db, tid, STUDY_METRIC)])
              for tid in picks]
    db.conn.close()

    drop_file_cache(path)
    cold = open_study(str(path), study_id, picks, n_trials, steps)
    warm = [open_study(str(path), study_id, picks, n_trials, steps) for _ in range(repeats)]
    full = [read_full(str(path), [(t, STUDY_METRIC) for t in picks], steps)[1] for _ in range(repeats)]
    out = {
        "name": "read_study",
        "params": {"trials": n_trials, "steps": steps, "metrics": 4, "series": READ_TRIALS,
                   "max_points": MAX_POINTS, "repeats": repeats, "file_mb": round(path.stat().st_size / 2**20)},
        "cold_ms": {"table": 1e3 * cold[0], "curves": 1e3 * cold[1], "total": 1e3 * sum(cold)},
        "warm_ms": {"table": 1e3 * median([w[0] for w in warm]), "curves": 1e3 * median([w[1] for w in warm]),
                    "total": 1e3 * median([sum(w) for w in warm])},
        "full_select_curves_warm_ms": 1e3 * median(full),
        "goal": f"table + {READ_TRIALS} curves <= {STUDY_GOAL_MS:.0f} ms (cold)",
    }
    out["goal_met"] = out["cold_ms"]["total"] <= STUDY_GOAL_MS
    out["mlflow"] = peers.timed_or_missing("mlflow", lambda: _mlflow_history(series, steps, repeats))
    return out


def _mlflow_history(series: list, steps: int, repeats: int) -> dict:
    """get_metric_history of the same 20 series, from an MLflow store holding only them."""
    import peers

    with tempfile.TemporaryDirectory(prefix="bench-read-mlflow-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        runs = list(peers.mlflow_history_store(root, iter(series)).values())
        build_s = time.perf_counter() - t0
        cold = peers.mlflow_read_history(root, runs, steps, cold=True)
        # ~0.5 s per series at 10,000 points: two warm reads keep the figure under half a minute.
        warm = [peers.mlflow_read_history(root, runs, steps, cold=False) for _ in range(min(repeats, 2))]
    return {"build_s": build_s, "cold_ms": 1e3 * cold, "warm_ms": 1e3 * median(warm),
            "store": f"{len(runs)} runs x {steps} steps of {STUDY_METRIC} only (not the whole study)"}


def study_rows(res: dict) -> list[tuple[str, ...]]:
    """(figure, ours, baseline, ratio, goal, met?) rows for the big study's reads."""
    from peers import NOT_INSTALLED

    p, c, w = res["params"], res["cold_ms"], res["warm_ms"]
    size = f"{p['trials']}x{p['steps']}x4"
    rows = [(f"open {size}: table + {p['series']} curves, cold", f"{c['total']:.0f} ms "
             f"(table {c['table']:.0f}, curves {c['curves']:.0f})", "", "", f"<= {STUDY_GOAL_MS:.0f} ms",
             "yes" if res["goal_met"] else "NO"),
            (f"open {size}: table + {p['series']} curves, warm", f"{w['total']:.0f} ms "
             f"(table {w['table']:.0f}, curves {w['curves']:.0f})", "", "", "", "")]
    m = res["mlflow"]
    if "missing" in m:
        rows.append((f"{p['series']} curves", f"{w['curves']:.0f} ms", f"MLflow get_metric_history {NOT_INSTALLED}",
                     "", "", ""))
    else:
        rows.append((f"{p['series']} curves, cold", f"{c['curves']:.1f} ms",
                     f"MLflow get_metric_history {m['cold_ms']:.0f} ms", ratio(c['curves'] / m['cold_ms']), "", ""))
        rows.append((f"{p['series']} curves, warm", f"{w['curves']:.1f} ms",
                     f"MLflow get_metric_history {m['warm_ms']:.0f} ms", ratio(w['curves'] / m['warm_ms']), "", ""))
    rows.append((f"{p['series']} curves, warm", f"{w['curves']:.1f} ms",
                 f"full SELECT {res['full_select_curves_warm_ms']:.1f} ms",
                 f"{w['curves'] / res['full_select_curves_warm_ms']:.2f}x", "", ""))
    return rows


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    """(figure, ours, baseline, ratio, goal, met?) rows for run_all's table."""
    c, w, n = res["cold"], res["warm"], res["params"]["series_read"]
    size = f"{res['params']['trials']}x{res['params']['steps']}x4"
    return [
        (f"read_series x{n} of {size}, cold{'' if c['page_cache_dropped'] else ' (cache not dropped)'}",
         f"{c['ours_ms']:.1f} ms", f"full SELECT {c['full_ms']:.1f} ms", f"{c['ratio_ours_vs_full']:.2f}x", "", ""),
        (f"read_series x{n} of {size}, warm", f"{w['ours_ms']:.1f} ms ({w['ours_ms_per_series']:.2f}/series)",
         f"full SELECT {w['full_ms']:.1f} ms", f"{w['ratio_ours_vs_full']:.2f}x", "", ""),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--study", action="store_true",
                    help="the 1,000 x 10,000 x 4 study (tui_bench's file) and MLflow instead")
    ap.add_argument("--long", action="store_true", help="one 1,000,000-step series instead")
    args = ap.parse_args()
    if args.long:
        res = run_long(repeats=args.repeats)
        rows = long_rows(res)
    elif args.study:
        res = run_study(repeats=args.repeats)
        rows = study_rows(res)
    else:
        res = run(args.trials, args.steps, args.repeats)
        rows = summary_rows(res)
    print_result(res)
    for row in rows:
        print(" | ".join(row))


if __name__ == "__main__":
    main()
