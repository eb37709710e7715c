"""SIGKILL the runner at seeded random points of a running study, again and again: nothing is lost."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from fault_helpers import (
    file_points,
    pid_alive,
    read_db,
    run_cli,
    start_runner,
    stored_points,
    study_file,
    study_trials,
    wait_for,
)

from store import metrics

KILLS = 4


def point_count(db_path: Path) -> int:
    return read_db(db_path, lambda db: metrics.count_points(db)) or 0
SEED = 6  # fixed: the same kill points every run, so a failure can be replayed


@pytest.mark.timeout(90)
def test_repeated_runner_sigkill_loses_no_metric_line(tmp_path, db_path):
    params = [{"mode": "steady", "sleep": 0.02 + 0.01 * (i % 3)} for i in range(12)]
    study = study_file(tmp_path / "study", params, steps=80, concurrency=3)
    rng = random.Random(SEED)
    kills_mid_study = 0
    for _ in range(KILLS):
        before = point_count(db_path)
        proc = start_runner(db_path, study, "--cpu-slots", "3")
        # Once this runner is ingesting, at a random point: mid-pass, mid-launch, mid-settle.
        wait_for(lambda: point_count(db_path) > before, 30, "the restarted runner to ingest")  # noqa: B023
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Between runners, a trial row that says running either still has its process,
        # or its process ended and left the exit file a later runner settles it from.
        rows = study_trials(db_path)
        kills_mid_study += any(t.state.value == "running" for t in rows)
        for t in rows:
            if t.state.value == "running":
                assert pid_alive(t.pid) or (Path(t.trial_dir) / "exit.json").exists(), t
    assert kills_mid_study >= 2  # the kills did land while trials ran
    done = run_cli(db_path, "run", str(study), "--cpu-slots", "3", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = study_trials(db_path)
    assert [t.state.value for t in rows] == ["completed"] * len(params), [(t.state, t.detail) for t in rows]
    for t in rows:
        written = file_points(Path(t.trial_dir) / "metrics.jsonl")
        assert len(written) == 80 * 3
        assert stored_points(db_path, t.id) == written, f"trial {t.number}"
        assert t.last_step == 79 and t.bad_lines == 0
        assert not pid_alive(t.pid)
