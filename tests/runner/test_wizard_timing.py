"""Wizard time estimates from the trials this machine ran, start-up included; no training time from a
step count never given. Real trial processes whose start-up (a 1 s sleep standing for imports and data)
dwarfs a short stage's steps, as torch's import does for the digits sample."""

from __future__ import annotations

import re
import time

import pytest

from runner import launch
from runner.service import Runner
from runner.spec import load
from runner.wizard_cli import drive
from runner.wizards import view
from runner.wizards.start import start_probe
from runner.wizards.timing import combine, split_trial, stage_seconds
from store import studies

STARTUP_S = 1.0
SLOW_START = f"""
import sys
import time

from runner.report import Reporter

batch, steps = int(sys.argv[1]), int(sys.argv[2])
time.sleep({STARTUP_S})  # start-up: imports, data, building the model
report = Reporter()
for step in range(1, steps + 1):
    time.sleep(0.01)
    report.log(step, examples_per_s=1000.0 * batch, train_loss=1.0 / step)
"""

STUDY = """
[study]
name = "slow"
command = "python slow_train.py {batch_size} {max_train_steps}"
max_train_steps = 100
objective = { metric = "train_loss", mode = "min" }
trials = 0

[params.batch_size]
role = "fixed"
value = 8

[params.lr]
role = "nuisance"
values = [0.1, 0.2]
in_command = false

[[trial]]
lr = 0.1

[[trial]]
lr = 0.2
"""


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "slow"
    path.mkdir()
    (path / "slow_train.py").write_text(SLOW_START)
    (path / "study.toml").write_text(STUDY)
    return path


def run_all(db_path, timeout: float = 120) -> None:
    runner = Runner(db_path, cpu_slots=2)
    runner.start()
    deadline = time.monotonic() + timeout
    try:
        runner.serve(until=lambda: runner.idle() or time.monotonic() > deadline)
    finally:
        runner.close()


def test_split_trial_separates_start_up_steps_and_tail():
    # Spawned at 100; step 1 reported at 102.01 (2 s start-up, 10 ms a step); step 101 at 103.01;
    # ended at 103.51.
    split = split_trial(100.0, 103.51, [1, 51, 101], [102.01, 102.51, 103.01])
    assert split.startup_s == pytest.approx(2.0) and split.step_s == pytest.approx(0.01)
    assert split.tail_s == pytest.approx(0.5)
    timing = combine([split, split_trial(0.0, 4.0, [1, 101], [3.01, 4.01])], "s")
    expected = 3 * (2.5 + 0.25 + 0.3)  # median start-up, tail and 30 steps, three waves
    assert stage_seconds(timing, trial_count=3, concurrency=1, steps=30) == pytest.approx(expected)
    assert stage_seconds(None, 3, 1, 30) is None


def test_a_short_stage_is_estimated_with_its_trials_start_up(folder, db, db_path):
    base, _ = launch.register(db, db_path, load(folder / "study.toml"))
    studies.set_active(db, base.id, True)
    run_all(db_path)

    kind = start_probe(db, db_path, study="slow", start=4, cap=16, steps=12, skip=2, gpus_per_trial=0)
    line = kind.advance().plan_lines[0]
    assert "start-up" in line and "from 2 trial(s) of slow" in line
    estimate = float(re.search(r"about (\d+) s", line).group(1))
    began = time.monotonic()
    status = drive(kind, db_path, answer=lambda q, s: "run", say=lambda _: None, poll_s=0.05)
    took = time.monotonic() - began
    assert status.done
    # Three 12-step trials, one at a time: three start-ups. Steps x the base study's rate said < 1 s.
    assert 0.5 * took <= estimate <= 2 * took, (line, took)


def test_a_command_probe_without_train_steps_prints_no_training_time(folder, db, db_path, monkeypatch):
    monkeypatch.chdir(folder)
    command = "python slow_train.py {batch_size} {max_train_steps}"
    kind = start_probe(db, db_path, command=command, start=4, cap=8, steps=10, skip=2, gpus_per_trial=0)
    status = drive(kind, db_path, answer=lambda q, s: "run", say=lambda _: None, poll_s=0.05)
    assert status.done and status.result["recommended"] == 8
    assert "training_time" not in status.result
    lines = view.render(kind.wizard, status.stage_results)
    assert not any("steps take about" in line for line in lines)
    assert "training time: pass --train-steps N to estimate it at this batch size" in lines

    told = start_probe(db, db_path, command=command, name="told", start=4, cap=8, steps=10, skip=2,
                       gpus_per_trial=0, train_steps=500)
    status = drive(told, db_path, answer=lambda q, s: "run", say=lambda _: None, poll_s=0.05)
    t = status.result["training_time"]
    assert t["steps"] == 500 and t["startup_s"] >= 0.8 * STARTUP_S  # once per run, on top of the steps
    # The steps at the measured throughput (the script reports 1000 examples/s per example: 1 ms a step).
    assert t["seconds"] == pytest.approx(t["startup_s"] + 500 * 0.001)
    assert any("500 steps take about" in line and "start-up" in line
               for line in view.render(told.wizard, status.stage_results))


def test_the_runners_gpu_series_never_times_a_trial(make_study, db_path):
    # A trial that reports only `zloss` (no preferred metric) on a GPU box also has the runner's
    # runner.gpu_mem_mib series, stepped in seconds since start: timing it by that series would give
    # 1 s per step. Steps 1..101 at 10 ms each after 2 s of start-up; the GPU series at 0..3 s.
    from runner.wizards.timing import trial_split
    from store import metrics
    from store import trials as trial_store
    from store.metrics import TrialUpdate
    from tests.runner.one_trial import registered

    db, _, trial = registered(make_study, db_path)
    steps = list(range(1, 102))
    zloss = [(trial.id, "zloss", s, 1.0 / s, 102.0 + 0.01 * (s - 1)) for s in steps]
    gpu = [(trial.id, "runner.gpu_mem_mib", s, 500.0, 100.0 + s) for s in range(4)]
    metrics.write_updates(db, [TrialUpdate(trial.id, rows=zloss + gpu)], {trial.id: "min"})
    db.execute("UPDATE trials SET started_at = 100.0, ended_at = 103.5 WHERE id = ?", [trial.id])
    db.conn.commit()
    split = trial_split(db, trial_store.get(db, trial.id))
    assert split.step_s == pytest.approx(0.01) and split.startup_s == pytest.approx(2.0, abs=0.02)
