"""Shared helpers for the benchmarks (not a test module; run the bench scripts by hand)."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from pathlib import Path

from sqlite_utils import Database

from store import studies, trials

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def make_trials(db: Database, n: int, run_dir: str, *, objective: str = "train_loss",
                name: str = "bench") -> list[int]:
    """A study with `n` queued trials, created through the store's own functions; their ids."""
    config_text = f"# bench study {name}\n"
    study = studies.upsert(db, {
        "name": name,
        "goal": "benchmark",
        "notes": "",
        "config_path": os.path.join(run_dir, "study.toml"),
        "config_text": config_text,
        "config_hash": hashlib.sha256(config_text.encode()).hexdigest(),
        "command_template": "python train.py",
        "objective_metric": objective,
        "objective_mode": "min",
        "max_train_steps": 1,
        "run_dir": run_dir,
        "reproduce_command": "",
    })
    new = [
        trials.NewTrial(number=i, source="manual", params={"lr": 1e-3, "seed": i},
                        roles={"lr": "scientific", "seed": "nuisance"}, argv=["python", "train.py"],
                        trial_dir=os.path.join(run_dir, f"trial-{i}"))
        for i in range(n)
    ]
    trials.insert_new(db, study.id, new)
    return [t.id for t in trials.list_for_study(db, study.id)]


def ratio(x: float) -> str:
    """A ratio for the tables: two decimals, or two significant digits when it is tiny."""
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


class Timer:
    """Accumulating perf_counter timer: `with t: ...` adds the elapsed seconds to t.total."""

    __slots__ = ("total", "_t0")

    def __init__(self) -> None:
        self.total = 0.0
        self._t0 = 0.0

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.total += time.perf_counter() - self._t0


def drop_file_cache(path: str | os.PathLike) -> bool:
    """Ask the kernel to drop a file's clean cached pages (best effort); True if asked."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except (OSError, AttributeError):
        return False
    finally:
        os.close(fd)


def print_result(result: dict) -> None:
    """A benchmark result dict, readable, for running one script alone."""
    print(json.dumps(result, indent=2, default=str))
