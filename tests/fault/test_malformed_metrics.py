"""Malformed metric lines written by a real trial under the real runner: good lines kept, bad counted."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest
from fault_helpers import read_db, run_cli, start_runner, stored_points, study_file, study_trials, wait_for

from runner.ingest import MAX_BYTES_PER_PASS
from store import metrics


@pytest.mark.timeout(60)
def test_malformed_lines_are_counted_and_good_ones_kept(tmp_path, db_path):
    # faulty.py raw writes RAW_LINES: the bad ones, a torn line, a NaN loss, an unfinished last line.
    study = study_file(tmp_path / "study", [{"mode": "raw", "sleep": 5}], steps=10)
    done = run_cli(db_path, "run", str(study), "--grace", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(db_path)
    assert stored_points(db_path, trial.id) == {
        ("train_loss", 0, 2.0),
        ("train_loss", 1, 1.9), ("huge", 1, 1e308),
        ("train_loss", 3, 1.7),  # unknown fields beside the metrics are ignored
        ("train_loss", 4, 1.6), ("train_loss", 5, 1.45),  # out of order is fine; a repeat: last wins
        ("acc", 6, math.inf), ("gn", 6, -math.inf),
        ("train_loss", 7, 1.3),  # written in two pieces 0.6 s apart: read once it was whole
        ("train_loss", 8, None),  # NaN, stored as missing
    }
    # Bad: not JSON; a value beyond float range (10**400); the last line, never finished.
    assert trial.bad_lines == 3
    assert (trial.state.value, trial.reason) == ("failed", "diverged")  # stopped at the NaN loss
    assert (trial.last_step, trial.best_value, trial.best_step) == (8, 1.3, 7)


@pytest.mark.timeout(90)
def test_a_trial_that_ended_while_no_runner_watched_is_read_to_its_last_line(tmp_path, db_path):
    """More than one ingest pass's worth (MAX_BYTES_PER_PASS) written while the runner was dead."""
    steps = 250_000  # about 14 MiB of lines
    study = study_file(tmp_path / "study", [{"mode": "burst", "sleep": 2}], steps=steps)
    proc = start_runner(db_path, study)
    (trial,) = wait_for(lambda: [t for t in study_trials(db_path) if t.state.value == "running"], 30,
                        "the trial to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    metrics_file = Path(trial.trial_dir) / "metrics.jsonl"
    wait_for(lambda: (Path(trial.trial_dir) / "exit.json").exists(), 30, "the trial to end")
    assert metrics_file.stat().st_size > MAX_BYTES_PER_PASS
    done = run_cli(db_path, "run", str(study), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(db_path)
    count = read_db(db_path, lambda db: metrics.count_points(db))
    assert (trial.state.value, count, trial.last_step, trial.bad_lines) == ("completed", steps, steps - 1, 0)
