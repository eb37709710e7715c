"""Ingest throughput: N live trials' metrics files -> the store, against raw sqlite3 executemany.

Setup (timed on its own as the client's share): N metrics files of S steps x 4 metrics
(train_loss, grad_norm, lr, examples_per_s), written through runner.report.Reporter, so
the lines are exactly what a training script writes; a fresh store.connect() database
holding N running trials.

Timed, "ours": passes like Runner._ingest: read the saved offsets from the store
(trials.in_states), collect() each of the N targets from its offset, then
store.metrics.write_updates() in one transaction, until every point is in. Two
pass sizes: live tailing (a small max-bytes per pass, about what a fast trial
writes between two runner polls) and catch-up (ingest.MAX_BYTES_PER_PASS, what a
restarted runner does).

Timed, baselines: raw sqlite3 (WAL, synchronous=NORMAL) executemany of the same
pre-built (trial, name, step, value, wall) tuples, committing every 100 steps x N
trials; into a plain rowid table (the ceiling), and into a row-per-point table
clustered on (trial, name, step) with INSERT OR REPLACE: the store's layout before
metric blocks (store.series_blocks), kept to show what a keyed row per point costs.

    .venv/bin/python bench/ingest.py [--trials N] [--steps S] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Timer, make_trials, median, print_result  # noqa: E402

from runner import ingest  # noqa: E402
from runner.ingest import TailTarget, add_common_records, collect, decode_common, read_complete_lines  # noqa: E402
from runner.report import Reporter  # noqa: E402
from store import metrics, trials  # noqa: E402
from store.db import connect  # noqa: E402
from store.metrics import TrialUpdate  # noqa: E402
from store.trials import TrialState  # noqa: E402

N_TRIALS = 8  # the default: a typical sweep's concurrent trials on one box
METRIC_NAMES = ("train_loss", "grad_norm", "lr", "examples_per_s")
LIVE_CHUNK = 16 * 1024  # bytes per trial per pass while tailing live (~150 lines)
BASELINE_COMMIT_STEPS = 100
GOAL_RATIO = 0.9  # issue #16: ingest within 10% of the raw no-index ceiling at every size
GOAL_BYTES_PER_POINT = 12.0  # stored
GOAL_WRITTEN_PER_POINT = 200.0  # written by SQLite (WAL + checkpoint), at any logging rate
GOAL_LAG_S = 0.5  # the last point stored after the last line reached the file, N=32
WRITE_RATES = ((1, 1, 1500), (1, 150, 30), (32, 1, 100), (32, 150, 4))  # (trials, steps a pass, passes)

PLAIN_SCHEMA = """CREATE TABLE metrics (
    trial_id INTEGER NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL,
    value REAL, wall_time REAL)"""
ROW_PER_POINT_SCHEMA = """CREATE TABLE metrics (
    trial_id INTEGER NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL,
    value REAL, wall_time REAL, PRIMARY KEY (trial_id, name, step)) WITHOUT ROWID"""


# -- setup -------------------------------------------------------------------


def write_metrics_files(root: Path, steps: int, n_trials: int = N_TRIALS) -> list[str]:
    """One metrics.jsonl per trial, through the real Reporter (flush every 512 points)."""
    paths = []
    rng = random.Random(1234)
    for i in range(n_trials):
        path = root / f"trial-{i}" / "metrics.jsonl"
        path.parent.mkdir(parents=True)
        rep = Reporter(path, flush_interval_s=3600.0)
        base_lr = 3e-4 * (1 + i / 10)
        for step in range(steps):
            loss = 2.5 * math.exp(-step / 5000) + 0.05 * rng.random()
            norm = 1.0 + rng.random()
            lr = base_lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            rep.log(step, train_loss=loss, grad_norm=norm, lr=lr, examples_per_s=12345.6 + step % 13)
        rep.close()
        paths.append(str(path))
    return paths


def fresh_store(root: Path, tag: str, n_trials: int = N_TRIALS) -> tuple[str, list[int], dict[int, str]]:
    """A new store database with n_trials running trials: (path, trial ids, objective modes)."""
    db_path = str(root / f"store-{tag}.db")
    db = connect(db_path)
    ids = make_trials(db, n_trials, str(root))
    for tid in ids:
        assert trials.claim(db, tid, "cpu", "bench-host")
        trials.mark_running(db, tid, os.getpid(), None)
    db.conn.close()
    return db_path, ids, {tid: "min" for tid in ids}


def fresh_raw(root: Path, tag: str, schema: str) -> sqlite3.Connection:
    path = str(root / f"raw-{tag}.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(schema)
    return conn


def baseline_batches(paths: list[str], ids: list[int], steps: int) -> list[list[tuple]]:
    """The same tuples ingest stores, grouped per commit: 100 steps x every trial each."""
    per_trial = []
    for tid, path in zip(ids, paths, strict=True):
        rows = []
        with open(path, "rb") as f:
            for line in f:
                rec = json.loads(line)
                rows.extend((tid, k, rec["step"], v, rec["t"]) for k, v in rec["m"].items())
        per_trial.append(rows)
    per_commit = BASELINE_COMMIT_STEPS * len(METRIC_NAMES)
    batches = []
    for start in range(0, steps * len(METRIC_NAMES), per_commit):
        batches.append([r for rows in per_trial for r in rows[start:start + per_commit]])
    return batches


# -- timed runs ---------------------------------------------------------------


def run_ours(db_path: str, ids: list[int], modes: dict[int, str], paths: list[str],
             max_bytes: int, expected: int) -> dict:
    """Passes like Runner._ingest until every file is read to its end; verifies the result."""
    db = connect(db_path)
    by_id = dict(zip(ids, paths, strict=True))
    sizes = {tid: os.path.getsize(p) for tid, p in by_id.items()}
    saved_defaults = read_complete_lines.__defaults__
    read_complete_lines.__defaults__ = (max_bytes,)  # collect() reads with the default bound
    t_offsets, t_collect, t_write = Timer(), Timer(), Timer()
    passes = 0
    try:
        t0 = time.perf_counter()
        while True:
            with t_offsets:  # the runner re-reads the saved offsets each pass
                rows = {t.id: t for t in trials.in_states(db, {TrialState.STARTING, TrialState.RUNNING})}
            if all(rows[tid].metrics_offset >= sizes[tid] for tid in ids):
                break
            with t_collect:
                now = time.time()
                targets = [
                    TailTarget(trial_id=tid, metrics_path=by_id[tid], stdout_path=by_id[tid] + ".stdout",
                               metrics_offset=rows[tid].metrics_offset,
                               stdout_offset=rows[tid].stdout_offset,
                               objective="train_loss", mode="min")
                    for tid in ids
                ]
                updates = [u for u in (collect(t, now) for t in targets) if not u.is_empty()]
            with t_write:
                metrics.write_updates(db, updates, modes)
            passes += 1
        elapsed = time.perf_counter() - t0
    finally:
        read_complete_lines.__defaults__ = saved_defaults
    verify_store(db, ids, sizes, expected)
    db.conn.close()
    return {
        "seconds": elapsed,
        "passes": passes,
        "split_s": {"collect": t_collect.total, "write_updates": t_write.total,
                    "read_offsets": t_offsets.total},
    }


def verify_store(db, ids: list[int], sizes: dict[int, int], expected: int) -> None:
    count = metrics.count_points(db)
    if count != expected:
        raise SystemExit(f"ingest bench: store holds {count} metric rows, expected {expected}")
    for tid in ids:
        t = trials.get(db, tid)
        if t.metrics_offset != sizes[tid] or t.bad_lines or t.diverged:
            raise SystemExit(
                f"ingest bench: trial {tid}: offset {t.metrics_offset}/{sizes[tid]}, "
                f"bad_lines {t.bad_lines}, diverged {t.diverged}")


def run_raw(conn: sqlite3.Connection, batches: list[list[tuple]], sql: str, expected: int) -> float:
    t0 = time.perf_counter()
    for batch in batches:
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    count = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    if count != expected:
        raise SystemExit(f"ingest bench: raw table holds {count} rows, expected {expected}")
    conn.close()
    return elapsed


def parse_breakdown(paths: list[str], ids: list[int], max_bytes: int) -> dict:
    """Where collect() time goes, per line: reading + splitting, decoding (the msgspec path
    ingest takes for common lines, and json.loads for reference), adding to the columns."""
    t_read, t_json, t_decode, t_add = Timer(), Timer(), Timer(), Timer()
    all_lines = []
    for path in paths:
        offset, size = 0, os.path.getsize(path)
        while offset < size:
            with t_read:
                lines, offset = read_complete_lines(path, offset, max_bytes)
            all_lines.append(lines)
    loads = json.loads
    with t_json:
        for lines in all_lines:
            for line in lines:
                loads(line)
    target = TailTarget(trial_id=ids[0], metrics_path=paths[0], stdout_path="", metrics_offset=0,
                        stdout_offset=0, objective="train_loss", mode="min")
    decoded = []
    with t_decode:
        for lines in all_lines:
            decoded.append(decode_common(lines))
    if any(records is None for records in decoded):
        raise SystemExit("ingest bench: a pass of Reporter lines left the common-line path")
    with t_add:
        for records in decoded:
            add_common_records(records, target, TrialUpdate(trial_id=ids[0]))
    n_lines = sum(len(x) for x in all_lines)
    return {
        "lines": n_lines,
        "read_split_us_per_line": 1e6 * t_read.total / n_lines,
        "json_loads_us_per_line": 1e6 * t_json.total / n_lines,
        "decode_common_us_per_line": 1e6 * t_decode.total / n_lines,
        "add_common_records_us_per_line": 1e6 * t_add.total / n_lines,
    }


# -- the figure ---------------------------------------------------------------

SIZES = (1, 8, 32)  # concurrent trials: one alone, a typical sweep, a big box's worth
POINTS_PER_SIZE = 320_000  # the same points at every size, so the rates compare; ~1 min a size on 2 cores
MLFLOW_POINTS = 32_000  # log_batch sample per size (~5k-10k points/s: a few seconds each)
MLFLOW_LOG_METRIC_CALLS = 500  # log_metric commits once per point: a sample, extrapolated
TB_POINTS = 160_000  # add_scalar sample per size
MLFLOW_GOAL_X = 10.0


def run(steps: int = 20_000, repeats: int = 3, n_trials: int = N_TRIALS, breakdown: bool = True) -> dict:
    """Ours (live and catch-up passes) and the raw ceilings for n_trials x steps x 4 metrics."""
    expected = n_trials * steps * len(METRIC_NAMES)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        paths = write_metrics_files(root, steps, n_trials)
        write_s = time.perf_counter() - t0
        _, ids, _ = fresh_store(root, "ids", n_trials)  # ids are the same in every fresh store
        batches = baseline_batches(paths, ids, steps)
        setup_s = time.perf_counter() - t0

        variants = {"live": LIVE_CHUNK, "catchup": ingest.MAX_BYTES_PER_PASS}
        ours: dict[str, list[dict]] = {k: [] for k in variants}
        raw: dict[str, list[float]] = {"plain": [], "schema": []}
        for r in range(repeats):  # interleaved, so drift hits every series alike
            for name, max_bytes in variants.items():
                db_path, ids_, modes = fresh_store(root, f"{name}-{r}", n_trials)
                assert ids_ == ids
                ours[name].append(run_ours(db_path, ids, modes, paths, max_bytes, expected))
                if name == "live" and r == 0:  # what the live run left, once its trials ended
                    _seal(db_path, ids)
                    stored = storage(db_path, expected)
            raw["plain"].append(run_raw(fresh_raw(root, f"plain-{r}", PLAIN_SCHEMA), batches,
                                        "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", expected))
            raw["schema"].append(run_raw(fresh_raw(root, f"schema-{r}", ROW_PER_POINT_SCHEMA), batches,
                                         "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
                                         expected))
        parse = parse_breakdown(paths, ids, LIVE_CHUNK) if breakdown else None
        file_bytes = sum(os.path.getsize(p) for p in paths)

    def rate(seconds: float) -> float:
        return expected / seconds

    raw_plain = rate(median(raw["plain"]))
    raw_schema = rate(median(raw["schema"]))
    figures = {}
    for name, runs in ours.items():
        best = median([x["seconds"] for x in runs])
        split = {k: median([x["split_s"][k] for x in runs]) for k in runs[0]["split_s"]}
        figures[name] = {
            "max_bytes_per_pass": variants[name],
            "passes": runs[0]["passes"],
            "points_per_s": rate(best),
            "seconds": best,
            "split_s": split,
            "split_share": {k: v / best for k, v in split.items()},
            "ratio_vs_raw_plain": rate(best) / raw_plain,
            "ratio_vs_raw_schema": rate(best) / raw_schema,
        }
    live = figures["live"]
    return {
        "name": "ingest",
        "params": {"trials": n_trials, "steps": steps, "metrics_per_step": len(METRIC_NAMES),
                   "points": expected, "file_bytes": file_bytes, "repeats": repeats,
                   "live_chunk_bytes": LIVE_CHUNK,
                   "baseline_commit_rows": BASELINE_COMMIT_STEPS * len(METRIC_NAMES) * n_trials},
        "setup_s": {"write_files": write_s, "total": setup_s},
        # Reporter.log into the files (the trial's side) then ingest (the runner's side), run one
        # after the other: in real use they overlap in two processes, so this is the pessimistic sum.
        "end_to_end_points_per_s": expected / (write_s + live["seconds"]),
        "client_points_per_s": expected / write_s,
        "raw_plain_points_per_s": raw_plain,
        "raw_schema_points_per_s": raw_schema,
        "schema_cost_ratio": raw_schema / raw_plain,
        "ours": figures,
        "parse_breakdown": parse,
        "storage": stored,
        "metrics_jsonl_bytes_per_point": file_bytes / expected,
        "goal": f"ours (live) >= {GOAL_RATIO:.0%} of raw plain",
        "ratio": live["ratio_vs_raw_plain"],
        "goal_met": live["ratio_vs_raw_plain"] >= GOAL_RATIO,
        "verified_rows": expected,
    }


def run_sizes(sizes: tuple[int, ...] = SIZES, points: int = POINTS_PER_SIZE, repeats: int = 3,
              mlflow_points: int = MLFLOW_POINTS, log_metric_calls: int = MLFLOW_LOG_METRIC_CALLS,
              tb_points: int = TB_POINTS, write_rates: tuple = WRITE_RATES) -> dict:
    """run() at each size with the same points in all, and the peers on samples of the same work."""
    import peers

    out: dict = {"name": "ingest", "sizes": {}, "peers": {"versions": peers.versions()}}
    for n in sizes:
        per_trial = len(METRIC_NAMES) * n
        res = run(max(1, points // per_trial), repeats, n, breakdown=n == sizes[len(sizes) // 2])
        mlflow_steps = -(-max(1, mlflow_points // per_trial) // peers.MLFLOW_BATCH_STEPS) * peers.MLFLOW_BATCH_STEPS
        res["mlflow_log_batch"] = peers.timed_or_missing(
            "mlflow", lambda n=n, s=mlflow_steps: peers.mlflow_log_batch(n, s))
        tb_steps = max(1, tb_points // per_trial)
        res["tensorboard_add_scalar"] = peers.timed_or_missing(
            "tensorboard", lambda n=n, s=tb_steps: peers.tensorboard_add_scalar(n, s))
        out["sizes"][n] = res
    with tempfile.TemporaryDirectory(prefix="bench-ingest-writes-") as tmp:
        out["written"] = [written_per_point(Path(tmp), f"{n}-{k}", n, k, p) for n, k, p in write_rates]
        out["latency"] = latency(Path(tmp), n_trials=max(sizes))
    out["peers"]["mlflow_log_metric"] = peers.timed_or_missing(
        "mlflow", lambda: peers.mlflow_log_metric(log_metric_calls))
    ratios = [r["ratio"] for r in out["sizes"].values()]
    x_mlflow = [r["end_to_end_points_per_s"] / r["mlflow_log_batch"]["points_per_s"]
                for r in out["sizes"].values() if "points_per_s" in r["mlflow_log_batch"]]
    out["goal"] = (f"ours (live) >= {GOAL_RATIO}x raw plain; end to end >= {MLFLOW_GOAL_X:.0f}x MLflow log_batch; "
                   f"<= {GOAL_BYTES_PER_POINT:.0f} bytes stored and <= {GOAL_WRITTEN_PER_POINT:.0f} written a point; "
                   f"last point <= {GOAL_LAG_S} s after the last line")
    out["goal_met"] = (min(ratios) >= GOAL_RATIO and bool(x_mlflow) and min(x_mlflow) >= MLFLOW_GOAL_X
                       and all(r["storage"]["metric_bytes_per_point"] <= GOAL_BYTES_PER_POINT
                               for r in out["sizes"].values())
                       and all(w["bytes_per_point"] <= GOAL_WRITTEN_PER_POINT for w in out["written"])
                       and out["latency"]["last_point_lag_s"] <= GOAL_LAG_S)
    return out


def _k(rate: float) -> str:
    return f"{rate / 1e3:,.1f} k pts/s" if rate < 1e4 else f"{rate / 1e3:,.0f} k pts/s"


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


# -- storage, bytes written, latency ------------------------------------------------


def _seal(db_path: str, ids: list[int]) -> None:
    """What the runner does when a trial ends (store.metrics.seal_tails), when the store has it."""
    seal = getattr(metrics, "seal_tails", None)
    if seal is not None:
        db = connect(db_path)
        for tid in ids:
            seal(db, tid)
        db.conn.close()


def storage(db_path: str, points: int) -> dict:
    """Bytes per stored point: the metric table and its index (dbstat: pages in use, free space
    inside them included), and the whole file, after a checkpoint."""
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = conn.execute("SELECT SUM(pgsize), SUM(unused) FROM dbstat WHERE name LIKE 'metric_blocks%' "
                        "OR name LIKE 'sqlite_autoindex_metric_blocks%'").fetchone()
    page_size, pages, free = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                              for p in ("page_size", "page_count", "freelist_count"))
    conn.close()
    return {"points": points, "metric_bytes": rows[0], "metric_unused_bytes": rows[1],
            "metric_bytes_per_point": rows[0] / points, "metric_unused_share": rows[1] / rows[0],
            "file_bytes_per_point": page_size * (pages - free) / points}


def _wchar() -> int:
    """Bytes this process has handed to write() so far (the WAL's frames and the checkpoints' pages)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("wchar:")).split()[1])


def written_per_point(root: Path, tag: str, n_trials: int, steps_per_pass: int, passes: int) -> dict:
    """A live run where each pass finds `steps_per_pass` new lines per trial: the bytes SQLite wrote
    (WAL frames, then the checkpoint into the file; the lines the bench appends are not counted)
    and the CPU time per stored point."""
    paths = write_metrics_files(root / f"w-{tag}", steps_per_pass * passes, n_trials)
    lines = [Path(p).read_bytes().splitlines(keepends=True) for p in paths]
    live = [p + ".live" for p in paths]
    db_path, ids, modes = fresh_store(root / f"w-{tag}", "store", n_trials)
    db = connect(db_path)
    by_id = dict(zip(ids, live, strict=True))
    files = [open(p, "ab") for p in live]  # noqa: SIM115 (closed below)
    written = appended = 0
    cpu = 0.0
    try:
        for k in range(passes):
            for f, trial_lines in zip(files, lines, strict=True):
                chunk = b"".join(trial_lines[k * steps_per_pass:(k + 1) * steps_per_pass])
                f.write(chunk)
                f.flush()
                appended += len(chunk)
            before, c0 = _wchar(), time.process_time()
            rows = {t.id: t for t in trials.in_states(db, {TrialState.STARTING, TrialState.RUNNING})}
            targets = [TailTarget(trial_id=tid, metrics_path=by_id[tid], stdout_path=by_id[tid] + ".stdout",
                                  metrics_offset=rows[tid].metrics_offset, stdout_offset=0,
                                  objective="train_loss", mode="min") for tid in ids]
            metrics.write_updates(db, [u for u in (collect(t, time.time()) for t in targets)
                                       if not u.is_empty()], modes)
            written += _wchar() - before
            cpu += time.process_time() - c0
        before = _wchar()
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        written += _wchar() - before
        points = metrics.count_points(db)
    finally:
        for f in files:
            f.close()
        db.conn.close()
    expected = n_trials * steps_per_pass * passes * len(METRIC_NAMES)
    if points != expected:
        raise SystemExit(f"ingest bench: written_per_point stored {points} points, expected {expected}")
    return {"trials": n_trials, "steps_per_pass": steps_per_pass, "passes": passes, "points": points,
            "bytes_written": written, "bytes_per_point": written / points, "cpu_us_per_point": 1e6 * cpu / points}


LATENCY_WRITER = """
import sys, time
from runner.report import Reporter
paths, rate, seconds = sys.argv[1].split(","), float(sys.argv[2]), float(sys.argv[3])
reps = [Reporter(p) for p in paths]
t0 = time.time()
step = 0
while time.time() - t0 < seconds:
    for r in reps:
        r.log(step, train_loss=1.0 / (step + 1), grad_norm=1.5, lr=3e-4, examples_per_s=1000.0 + step % 7)
    step += 1
    time.sleep(max(0.0, t0 + step / rate - time.time()))
for r in reps:
    r.close()
print(time.time(), step, flush=True)
"""


def latency(root: Path, n_trials: int = 32, rate: float = 100.0, seconds: float = 6.0, poll_s: float = 0.2) -> dict:
    """Live trials reporting `rate` steps/s each for `seconds` (a child process, through the real
    Reporter), ingested by passes like the runner's every `poll_s`: how long after the last line
    reached its file the last point was stored."""
    import subprocess

    base = root / "latency"
    base.mkdir()
    paths = []
    for i in range(n_trials):
        (base / f"trial-{i}").mkdir()
        paths.append(str(base / f"trial-{i}" / "metrics.jsonl"))
    db_path, ids, modes = fresh_store(base, "store", n_trials)
    db = connect(db_path)
    by_id = dict(zip(ids, paths, strict=True))
    child = subprocess.Popen([sys.executable, "-c", LATENCY_WRITER, ",".join(paths), str(rate), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    passes, pass_s = 0, []
    stored_at = None
    while True:
        t0 = time.perf_counter()
        rows = {t.id: t for t in trials.in_states(db, {TrialState.STARTING, TrialState.RUNNING})}
        targets = [TailTarget(trial_id=tid, metrics_path=by_id[tid], stdout_path=by_id[tid] + ".stdout",
                              metrics_offset=rows[tid].metrics_offset, stdout_offset=0, objective="train_loss",
                              mode="min") for tid in ids]
        updates = [u for u in (collect(t, time.time()) for t in targets) if not u.is_empty()]
        if updates:
            metrics.write_updates(db, updates, modes)
            stored_at = time.time()
        pass_s.append(time.perf_counter() - t0)
        passes += 1
        if child.poll() is not None and not updates and all(
                rows[tid].metrics_offset >= os.path.getsize(by_id[tid]) for tid in ids):
            break
        time.sleep(poll_s)
    done_at, steps = child.stdout.read().split()
    points = metrics.count_points(db)
    db.conn.close()
    expected = n_trials * int(steps) * len(METRIC_NAMES)
    if points != expected:
        raise SystemExit(f"ingest bench: latency run stored {points} points, expected {expected}")
    return {"trials": n_trials, "rate_steps_per_s": rate, "seconds": seconds, "poll_s": poll_s,
            "points": points, "passes": passes, "pass_ms_median": 1e3 * median(pass_s),
            "pass_ms_max": 1e3 * max(pass_s), "last_point_lag_s": (stored_at or 0.0) - float(done_at)}


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    """(figure, ours, baseline, ratio, goal, met?) rows for run_all's table."""
    from peers import NOT_INSTALLED

    rows: list[tuple[str, ...]] = []
    for n, r in res["sizes"].items():
        live, catch = r["ours"]["live"], r["ours"]["catchup"]
        rows.append((f"ingest N={n} live ({live['passes']} passes)", _k(live["points_per_s"]),
                     f"raw sqlite3 {_k(r['raw_plain_points_per_s'])}", f"{live['ratio_vs_raw_plain']:.2f}x",
                     f">= {GOAL_RATIO}x", _met(live["ratio_vs_raw_plain"] >= GOAL_RATIO)))
        rows.append((f"ingest N={n} catch-up", _k(catch["points_per_s"]),
                     f"raw sqlite3 {_k(r['raw_plain_points_per_s'])}", f"{catch['ratio_vs_raw_plain']:.2f}x",
                     "", ""))
        e2e = r["end_to_end_points_per_s"]
        mlb = r["mlflow_log_batch"]
        if "points_per_s" in mlb:
            x = e2e / mlb["points_per_s"]
            rows.append((f"end to end N={n} (Reporter + ingest)", _k(e2e), f"MLflow log_batch {_k(mlb['points_per_s'])}",
                         f"{x:.1f}x", f">= {MLFLOW_GOAL_X:.0f}x", _met(x >= MLFLOW_GOAL_X)))
        else:
            rows.append((f"end to end N={n} (Reporter + ingest)", _k(e2e), f"MLflow log_batch {NOT_INSTALLED}",
                         "", f">= {MLFLOW_GOAL_X:.0f}x", ""))
        tb = r["tensorboard_add_scalar"]
        rows.append((f"end to end N={n}", _k(e2e),
                     f"TB add_scalar {_k(tb['points_per_s'])}" if "points_per_s" in tb
                     else f"TB add_scalar {NOT_INSTALLED}",
                     f"{e2e / tb['points_per_s']:.1f}x" if "points_per_s" in tb else "", "", ""))
    for n, r in res["sizes"].items():
        st = r["storage"]
        rows.append((f"stored N={n}: metric table + index", f"{st['metric_bytes_per_point']:.1f} B/point "
                     f"({st['metric_unused_share']:.0%} unused)", f"metrics.jsonl {r['metrics_jsonl_bytes_per_point']:.1f}"
                     " B/point", "", f"<= {GOAL_BYTES_PER_POINT:.0f} B",
                     _met(st["metric_bytes_per_point"] <= GOAL_BYTES_PER_POINT)))
    for w in res["written"]:
        rows.append((f"written N={w['trials']}, {w['steps_per_pass']} step(s) a pass",
                     f"{w['bytes_per_point']:,.0f} B/point, {w['cpu_us_per_point']:.1f} us CPU/point", "", "",
                     f"<= {GOAL_WRITTEN_PER_POINT:.0f} B", _met(w["bytes_per_point"] <= GOAL_WRITTEN_PER_POINT)))
    lat = res["latency"]
    rows.append((f"last point stored after the last line, N={lat['trials']} at {lat['rate_steps_per_s']:.0f} steps/s",
                 f"{lat['last_point_lag_s']:.2f} s (pass median {lat['pass_ms_median']:.1f} ms, "
                 f"poll {lat['poll_s']} s)", "", "", f"<= {GOAL_LAG_S} s", _met(lat["last_point_lag_s"] <= GOAL_LAG_S)))
    mid = res["sizes"][next(iter(res["sizes"]))]
    lm = res["peers"]["mlflow_log_metric"]
    if "points_per_s" in lm:
        rows.append((f"end to end N={next(iter(res['sizes']))}", _k(mid["end_to_end_points_per_s"]),
                     f"MLflow log_metric {lm['points_per_s']:,.0f} pts/s (from {lm['calls']} calls)",
                     f"{mid['end_to_end_points_per_s'] / lm['points_per_s']:,.0f}x", "", ""))
    else:
        rows.append(("end to end", "", f"MLflow log_metric {NOT_INSTALLED}", "", "", ""))
    for r in res["sizes"].values():
        if r["parse_breakdown"]:
            live = r["ours"]["live"]["split_share"]
            b = r["parse_breakdown"]
            rows.append((f"ingest live split (N={r['params']['trials']})",
                         f"collect {live['collect']:.0%}, write {live['write_updates']:.0%}, "
                         f"offsets {live['read_offsets']:.0%}", "", "", "", ""))
            rows.append(("parse per line", f"msgspec decode {b['decode_common_us_per_line']:.1f} us + columns "
                         f"{b['add_common_records_us_per_line']:.1f} us",
                         f"json.loads {b['json_loads_us_per_line']:.1f} us", "", "", ""))
            rows.append(("raw, keyed row per point (the old layout) / raw plain", _k(r["raw_schema_points_per_s"]),
                         _k(r["raw_plain_points_per_s"]), f"{r['schema_cost_ratio']:.2f}x", "", ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--points", type=int, default=POINTS_PER_SIZE, help="points stored at each size")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    res = run_sizes(tuple(args.trials), args.points, args.repeats)
    print_result(res)
    for row in summary_rows(res):
        print(" | ".join(row))
    if not res["goal_met"]:
        print(f"goal not met: {res['goal']}")


if __name__ == "__main__":
    main()
