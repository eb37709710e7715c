"""The tools users run today, driven on the same work as ours: MLflow's sqlite store and TensorBoard.

Both are optional bench dependencies (`pip install -e '.[bench]'`). Every function here
takes a temporary folder, does real writes or reads, checks what it stored, and returns
plain numbers; when a peer is not installed, `missing(name)` says so and the callers put
NOT_INSTALLED in their rows instead of a figure.

    .venv/bin/python bench/peers.py        # which peers are installed, and a small sample of each
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import drop_file_cache, median, print_result  # noqa: E402

NOT_INSTALLED = "not installed (pip install -e '.[bench]')"
NO_PEERS_ENV = "PLAYBOOK_BENCH_NO_PEERS"  # set: act as if no peer were installed (run_all --no-peers)
METRIC_NAMES = ("train_loss", "grad_norm", "lr", "examples_per_s")
MLFLOW_BATCH_STEPS = 100  # steps per log_batch call: 400 metrics, under MLflow's 1,000-per-batch cap
MLFLOW_BUILD_BATCH = 1000  # MLflow's own cap on metrics per log_batch (the fastest way to fill a store)


def missing(name: str) -> bool:
    """True when peer `name` ("mlflow" or "tensorboard") cannot be imported here (or NO_PEERS_ENV is set)."""
    if os.environ.get(NO_PEERS_ENV):
        return True
    try:
        if name == "mlflow":
            import mlflow  # noqa: F401
            import sqlalchemy  # noqa: F401
        elif name == "tensorboard":
            _summary_writer()
        else:
            raise ValueError(name)
    except ImportError:
        return True
    return False


def versions() -> dict[str, str]:
    """Installed peer versions, or NOT_INSTALLED."""
    out = {}
    for name in ("mlflow", "tensorboard"):
        if missing(name):
            out[name] = NOT_INSTALLED
            continue
        mod = __import__(name)
        out[name] = getattr(mod, "__version__", "?")
    return out


def _quiet() -> None:
    # MLflow and alembic log every table migration at INFO; keep the table readable.
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _summary_writer() -> type:
    """torch's SummaryWriter (needs the tensorboard package), else tensorboardX's."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from tensorboardX import SummaryWriter
    return SummaryWriter


def _values(step: int, trial: int) -> tuple[float, float, float, float]:
    """The four metrics a training step reports (the same shapes as our ingest bench)."""
    return (2.5 * math.exp(-step / 5000) + 0.01 * trial, 1.0 + (step % 7) / 7,
            3e-4 * (1 + trial / 10), 12345.6 + step % 13)


# -- MLflow ---------------------------------------------------------------------


def _mlflow_client(root: Path):
    """A client on a fresh sqlite store in `root` (creating its tables takes seconds: not timed)."""
    _quiet()
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench", artifact_location=str(root / "artifacts"))
    return client, exp


def _mlflow_rows(root: Path) -> int:
    conn = sqlite3.connect(root / "mlflow.db")
    try:
        return conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    finally:
        conn.close()


def mlflow_log_batch(n_trials: int, steps: int) -> dict:
    """n_trials runs each logging `steps` steps x 4 metrics with log_batch (100 steps a call).

    The runs take turns, one batch each, as concurrent trials would. Timed: the
    log_batch calls (client and store in one process, committed rows). Checked:
    the store's metrics table holds every point.
    """
    from mlflow.entities import Metric

    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        root = Path(tmp)
        client, exp = _mlflow_client(root)
        run_ids = [client.create_run(exp).info.run_id for _ in range(n_trials)]
        now_ms = int(time.time() * 1000)
        t0 = time.perf_counter()
        for start in range(0, steps, MLFLOW_BATCH_STEPS):
            for i, run_id in enumerate(run_ids):
                batch = [Metric(k, v, now_ms + s, s)
                         for s in range(start, min(steps, start + MLFLOW_BATCH_STEPS))
                         for k, v in zip(METRIC_NAMES, _values(s, i), strict=True)]
                client.log_batch(run_id, metrics=batch)
        elapsed = time.perf_counter() - t0
        points = n_trials * steps * len(METRIC_NAMES)
        stored = _mlflow_rows(root)
    if stored != points:
        raise SystemExit(f"mlflow bench: {stored} metric rows stored, expected {points}")
    return {"trials": n_trials, "steps": steps, "points": points, "seconds": elapsed,
            "points_per_s": points / elapsed}


def mlflow_log_metric(calls: int) -> dict:
    """`calls` log_metric calls (one point each, one run), timed; the rate is extrapolated from them.

    log_metric commits one transaction per point, so a full-size run would take
    hours; the per-call cost is flat in the number of points already stored, which
    is what the extrapolation assumes.
    """
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        root = Path(tmp)
        client, exp = _mlflow_client(root)
        run_id = client.create_run(exp).info.run_id
        samples = array("d")
        for s in range(calls):
            v = _values(s // 4, 0)[s % 4]
            t0 = time.perf_counter()
            client.log_metric(run_id, METRIC_NAMES[s % 4], v, step=s // 4)
            samples.append(time.perf_counter() - t0)
        stored = _mlflow_rows(root)
    if stored != calls:
        raise SystemExit(f"mlflow bench: {stored} metric rows stored after {calls} log_metric calls")
    total = sum(samples)
    return {"calls": calls, "seconds": total, "points_per_s": calls / total,
            "median_ms": 1e3 * median(list(samples)), "extrapolated": True}


def mlflow_history_store(root: Path, series: Iterator[tuple[str, list[tuple[int, float]]]]) -> dict[str, str]:
    """An MLflow store in `root` with one run per (label, points) series of train_loss; label -> run id."""
    from mlflow.entities import Metric

    client, exp = _mlflow_client(root)
    runs = {}
    for label, points in series:
        run_id = client.create_run(exp, run_name=label).info.run_id
        for start in range(0, len(points), MLFLOW_BUILD_BATCH):
            client.log_batch(run_id, metrics=[Metric("train_loss", v, 1_700_000_000_000 + s, s)
                                              for s, v in points[start:start + MLFLOW_BUILD_BATCH]])
        runs[label] = run_id
    return runs


def mlflow_read_history(root: Path, run_ids: list[str], steps: int, cold: bool) -> float:
    """Seconds for get_metric_history('train_loss') of every run, on a fresh client; checks each length."""
    _quiet()
    from mlflow import MlflowClient

    if cold:
        drop_file_cache(root / "mlflow.db")
    t0 = time.perf_counter()
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    for run_id in run_ids:
        hist = client.get_metric_history(run_id, "train_loss")
        if len(hist) != steps:
            raise SystemExit(f"mlflow bench: get_metric_history gave {len(hist)} points, expected {steps}")
    return time.perf_counter() - t0


# -- TensorBoard -----------------------------------------------------------------


def _count_tb_scalars(log_dir: Path) -> int:
    """Scalar events in a writer's folder, read back with TensorBoard's own loader."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    except ImportError:
        return -1  # tensorboardX alone has no reader: the count is not checked
    n = 0
    for path in log_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            n += len(event.summary.value)
    return n


def tensorboard_add_scalar(n_trials: int, steps: int) -> dict:
    """n_trials SummaryWriters, each step's 4 metrics through add_scalar, until close() has flushed.

    The writers take turns step by step, as concurrent trials would. Timed: every
    add_scalar call and the final close() (the point is on disk, in an event file).
    Checked: the first writer's file holds its steps x 4 scalars.
    """
    writer_cls = _summary_writer()
    with tempfile.TemporaryDirectory(prefix="bench-tb-") as tmp:
        dirs = [Path(tmp) / f"trial-{i}" for i in range(n_trials)]
        t0 = time.perf_counter()
        writers = [writer_cls(log_dir=str(d)) for d in dirs]
        for s in range(steps):
            for i, w in enumerate(writers):
                for k, v in zip(METRIC_NAMES, _values(s, i), strict=True):
                    w.add_scalar(k, v, s)
        for w in writers:
            w.close()
        elapsed = time.perf_counter() - t0
        stored = _count_tb_scalars(dirs[0])
    if stored not in (-1, steps * len(METRIC_NAMES)):
        raise SystemExit(f"tensorboard bench: {stored} scalars in the event file, expected {steps * 4}")
    points = n_trials * steps * len(METRIC_NAMES)
    return {"trials": n_trials, "steps": steps, "points": points, "seconds": elapsed,
            "points_per_s": points / elapsed, "checked": stored != -1}


def tensorboard_call_loop(calls: int) -> tuple[array, array]:
    """Per-call ns of one add_scalar, and of one step's four add_scalar calls, in a timed loop."""
    writer_cls = _summary_writer()
    pc = time.perf_counter_ns
    with tempfile.TemporaryDirectory(prefix="bench-tb-") as tmp:
        w = writer_cls(log_dir=tmp)
        add = w.add_scalar
        one, four = array("q", bytes(8 * calls)), array("q", bytes(8 * calls))
        loss, norm, lr, eps = 2.5, 1.25, 3e-4, 12345.6
        for i in range(calls):
            loss *= 0.99999
            t0 = pc()
            add("train_loss", loss, i)
            t1 = pc()
            one[i] = t1 - t0
        for i in range(calls):
            loss *= 0.99999
            t0 = pc()
            add("train_loss", loss, i)
            add("grad_norm", norm, i)
            add("lr", lr, i)
            add("examples_per_s", eps, i)
            t1 = pc()
            four[i] = t1 - t0
        w.close()
    return one, four


def timed_or_missing(name: str, fn: Callable[[], dict]) -> dict:
    """fn()'s result, or {"missing": NOT_INSTALLED} when the peer is not installed."""
    if missing(name):
        return {"missing": NOT_INSTALLED}
    return fn()


def main() -> None:
    print_result({
        "versions": versions(),
        "mlflow_log_batch": timed_or_missing("mlflow", lambda: mlflow_log_batch(2, 200)),
        "mlflow_log_metric": timed_or_missing("mlflow", lambda: mlflow_log_metric(50)),
        "tensorboard_add_scalar": timed_or_missing("tensorboard", lambda: tensorboard_add_scalar(2, 500)),
    })


if __name__ == "__main__":
    main()
