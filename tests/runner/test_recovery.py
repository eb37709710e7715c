"""A runner's recovery of trials a dead runner left claimed: real database, real Runner, real processes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from one_trial import registered

from runner.service import Runner
from store import studies, trials
from store.trials import TrialState


def recover(db_path) -> list[str]:
    said: list[str] = []
    runner = Runner(db_path, cpu_slots=1, log=said.append)
    runner.start()
    runner.close()
    return said


def test_a_claim_whose_runner_died_before_the_spawn_goes_back_to_the_queue(make_study, db_path):
    db, _, trial = registered(make_study, db_path)
    assert trials.claim(db, trial.id, "cpu", socket.gethostname())  # ...and the runner dies here
    said = recover(db_path)
    row = trials.get(db, trial.id)
    assert (row.state, row.attempt, row.detail) == (TrialState.QUEUED, 0, None), said
    assert any("had not started" in line for line in said)


def test_an_earlier_attempts_records_do_not_settle_a_claim_that_never_started(make_study, db_path):
    """Attempt 1 ran and was re-queued; attempt 2 was claimed, and its runner died before the spawn:
    attempt 1's exit record in the folder says nothing about attempt 2."""
    db, study, trial = registered(make_study, db_path)
    assert trials.claim(db, trial.id, "cpu", socket.gethostname())
    assert trials.requeue(db, trial.id)
    assert trials.claim(db, trial.id, "cpu", socket.gethostname())
    folder = Path(trial.trial_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "launch.json").write_text(json.dumps({"attempt": 1, "pid": 999_999, "pgid": 999_999}))
    (folder / "exit.json").write_text(json.dumps({"attempt": 1, "returncode": 0}))
    recover(db_path)
    assert trials.get(db, trial.id).state is TrialState.QUEUED
    # It runs in full when a runner gets to it; attempt 1's files are archived first.
    studies.set_active(db, study.id, True)
    runner = Runner(db_path, cpu_slots=1, log=lambda _: None)
    runner.start()
    try:
        runner.serve(until=runner.idle)
    finally:
        runner.close()
    row = trials.get(db, trial.id)
    assert (row.state, row.attempt, row.last_step) == (TrialState.COMPLETED, 2, 4)
    assert json.loads((folder / "attempt-1" / "exit.json").read_text())["attempt"] == 1
    assert json.loads((folder / "exit.json").read_text())["attempt"] == 2
