"""The requeue_trial command (the TUI's `r`): a real Runner takes it and runs the trial again, in full."""

from __future__ import annotations

import socket

import store
from runner import launch
from runner.service import Runner
from runner.spec import load
from store import commands, studies, trials
from store.trials import TrialState

STUDY = """
[study]
name = "s"
command = "python trainer.py --lr {lr} --steps {max_train_steps}"
max_train_steps = 5
objective = { metric = "val_loss", mode = "min" }
trials = 0
concurrency = 1

[params.lr]
role = "nuisance"
values = [0.1]

[[trial]]
lr = 0.1
"""


def test_a_stopped_trial_requeued_through_the_runner_runs_again_from_scratch(make_study, db_path):
    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(STUDY)))
    (trial,) = trials.list_for_study(db, study.id)
    assert trials.claim(db, trial.id, "cpu", socket.gethostname())
    assert trials.finish(db, trial.id, TrialState.STOPPED, reason="user")
    commands.enqueue(db, "requeue_trial", trial_id=trial.id)
    completed_once = commands.enqueue(db, "requeue_trial", trial_id=trial.id)  # a double press
    studies.set_active(db, study.id, True)

    runner = Runner(db_path, cpu_slots=1, log=lambda _: None)
    runner.start()
    try:
        runner.serve(until=runner.idle)
    finally:
        runner.close()
    row = trials.get(db, trial.id)
    assert (row.state, row.last_step, row.reason) == (TrialState.COMPLETED, 4, None)
    results = dict(db.execute("SELECT id, result FROM commands"))
    assert list(results.values()) == ["requeued", "not stopped, failed or lost"]
    assert results[completed_once] == "not stopped, failed or lost"
