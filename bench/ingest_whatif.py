"""What-ifs for the ingest gap: how fast would the store's insert be with another metrics schema?

Not a figure of the product: raw sqlite3 (WAL, synchronous=NORMAL) executemany of the
same N trials x S steps x 4 metrics, committing every 100 steps x N trials, into:
- plain: a rowid table with no key (the ingest bench's ceiling);
- store: the store's schema today (TEXT name in a WITHOUT ROWID primary key) with
  INSERT OR REPLACE, rows in key order as write_updates() sorts them;
- int-id: the same WITHOUT ROWID key with an INTEGER metric id instead of the name
  (a small metric_names table would map them);
- int-id, plain INSERT: the same, without OR REPLACE (a repeated step would then need
  an ON CONFLICT clause or a check first).
Also the Python side the pipeline pays per point before the insert (json.loads of a
line and building its 4 tuples), and that parse + the store-schema insert run serially
against the same with the inserts on a writer thread.

    .venv/bin/python bench/ingest_whatif.py [--trials 8] [--steps 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import median, print_result  # noqa: E402

NAMES = ("examples_per_s", "grad_norm", "lr", "train_loss")  # sorted: key order
COMMIT_STEPS = 100
SCHEMAS = {
    "plain": ("CREATE TABLE metrics (trial_id INTEGER, name TEXT, step INTEGER, value REAL, wall_time REAL)",
              "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", False),
    "store": ("CREATE TABLE metrics (trial_id INTEGER NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, "
              "value REAL, wall_time REAL, PRIMARY KEY (trial_id, name, step)) WITHOUT ROWID",
              "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)", False),
    "int_id": ("CREATE TABLE metrics (trial_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, "
               "step INTEGER NOT NULL, value REAL, wall_time REAL, PRIMARY KEY (trial_id, metric_id, step)) "
               "WITHOUT ROWID", "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)", True),
    "int_id_insert": ("CREATE TABLE metrics (trial_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, "
                      "step INTEGER NOT NULL, value REAL, wall_time REAL, "
                      "PRIMARY KEY (trial_id, metric_id, step)) WITHOUT ROWID",
                      "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", True),
}


def batches(n_trials: int, steps: int, int_ids: bool) -> list[list[tuple]]:
    """Rows per commit (100 steps x every trial), sorted in key order like write_updates()."""
    out = []
    for start in range(0, steps, COMMIT_STEPS):
        rows = [(t, i if int_ids else name, s, 1.0 / (s + 1), 1.7e9 + s)
                for t in range(1, n_trials + 1) for i, name in enumerate(NAMES)
                for s in range(start, min(steps, start + COMMIT_STEPS))]
        out.append(rows)
    return out


def insert(tmp: str, tag: str, schema: str, sql: str, data: list[list[tuple]]) -> float:
    conn = sqlite3.connect(os.path.join(tmp, f"{tag}.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(schema)
    t0 = time.perf_counter()
    for rows in data:
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    n = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    conn.close()
    if n != sum(len(b) for b in data):
        raise SystemExit(f"whatif: {tag} holds {n} rows")
    return elapsed


def python_side(lines: int) -> float:
    """Seconds per point for json.loads of a Reporter-like line and building its 4 row tuples."""
    line = json.dumps({"step": 12345, "t": 1.7e9, "m": {n: 0.123456789 for n in NAMES}}).encode()
    t0 = time.perf_counter()
    for _ in range(lines):
        rec = json.loads(line)
        step, wall = rec["step"], rec["t"]
        [(1, k, step, v, wall) for k, v in rec["m"].items()]
    return (time.perf_counter() - t0) / (lines * len(NAMES))


def _lines(n_trials: int, steps: int) -> list[list[bytes]]:
    """Reporter-like metrics lines, grouped per commit (100 steps x every trial)."""
    out = []
    for start in range(0, steps, COMMIT_STEPS):
        out.append([json.dumps({"step": s, "t": 1.7e9 + s, "m": {n: 1.0 / (s + 1) for n in NAMES}}).encode()
                    for _ in range(n_trials) for s in range(start, min(steps, start + COMMIT_STEPS))])
    return out


def _parse(lines: list[bytes]) -> list[tuple]:
    rows = []
    for i, line in enumerate(lines):
        rec = json.loads(line)
        step, wall = rec["step"], rec["t"]
        rows.extend((i % 64, k, step, v, wall) for k, v in rec["m"].items())
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return rows


def pipeline(tmp: str, tag: str, groups: list[list[bytes]], threaded: bool) -> float:
    """Parse + insert into the store schema, in one thread, or with the inserts on a writer thread.

    sqlite3 lets go of the GIL while SQLite works, so a writer thread can overlap the
    next batch's json parsing with this batch's B-tree inserts.
    """
    import queue
    import threading

    schema, sql, _ = SCHEMAS["store"]
    conn = sqlite3.connect(os.path.join(tmp, f"{tag}.db"), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(schema)

    def write(rows: list[tuple]) -> None:
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")

    t0 = time.perf_counter()
    if threaded:
        q: queue.Queue = queue.Queue(maxsize=2)
        writer = threading.Thread(target=lambda: [write(r) for r in iter(q.get, None)])
        writer.start()
        for g in groups:
            q.put(_parse(g))
        q.put(None)
        writer.join()
    else:
        for g in groups:
            write(_parse(g))
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def run(n_trials: int = 8, steps: int = 20_000, repeats: int = 3) -> dict:
    points = n_trials * steps * len(NAMES)
    data = {False: batches(n_trials, steps, False), True: batches(n_trials, steps, True)}
    times: dict[str, list[float]] = {k: [] for k in SCHEMAS}
    with tempfile.TemporaryDirectory(prefix="bench-whatif-") as tmp:
        for r in range(repeats):
            for tag, (schema, sql, int_ids) in SCHEMAS.items():
                times[tag].append(insert(tmp, f"{tag}-{r}", schema, sql, data[int_ids]))
        groups = _lines(n_trials, steps)
        for r in range(repeats):
            for threaded in (False, True):
                tag = "pipeline_writer_thread" if threaded else "pipeline_serial"
                times.setdefault(tag, []).append(pipeline(tmp, f"{tag}-{r}", groups, threaded))
    rates = {k: points / median(v) for k, v in times.items()}
    per_point = python_side(50_000)
    return {"params": {"trials": n_trials, "steps": steps, "points": points, "repeats": repeats},
            "points_per_s": rates, "vs_plain": {k: v / rates["plain"] for k, v in rates.items()},
            "python_parse_us_per_point": 1e6 * per_point}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    res = run(args.trials, args.steps, args.repeats)
    print_result(res)
    for k, v in res["points_per_s"].items():
        print(f"{k:14s} {v / 1e3:7,.0f} k pts/s  {res['vs_plain'][k]:.2f}x plain")


if __name__ == "__main__":
    main()
