"""The requeue_trial command (the TUI's `r`): a real Runner takes it and runs the trial again, in full."""

from __future__ import annotations

import socket

from one_trial import registered

from runner.service import Runner
from store import commands, studies, trials
from store.trials import TrialState


def test_a_stopped_trial_requeued_through_the_runner_runs_again_from_scratch(make_study, db_path):
    db, study, trial = registered(make_study, db_path)
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
