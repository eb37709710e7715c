"""keep_metrics_jsonl = false: an ended trial's metrics.jsonl goes once every point is stored;
by default it stays. Real database, real Runner, real trainer processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from one_trial import STUDY

import store
from runner import launch
from runner.service import Runner
from runner.spec import SpecError, load
from store import metrics, studies, trials
from store.trials import TrialState


def run_study(make_study, db_path, extra: str = "", steps: int = 300):
    body = STUDY.replace("max_train_steps = 5", f"max_train_steps = {steps}").replace(
        'concurrency = 1\n', f"concurrency = 1\n{extra}")
    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(body)))
    studies.set_active(db, study.id, True)
    runner = Runner(db_path, cpu_slots=1, log=lambda _: None)
    runner.start()
    try:
        runner.serve(until=runner.idle)
    finally:
        runner.close()
    (trial,) = trials.list_for_study(db, study.id)
    return db, trial


def test_the_file_goes_and_every_point_it_held_stays_in_the_store(make_study, db_path):
    db, trial = run_study(make_study, db_path, "keep_metrics_jsonl = false\n")
    assert trial.state is TrialState.COMPLETED
    assert not (Path(trial.trial_dir) / "metrics.jsonl").exists()
    assert metrics.count_points(db, trial.id) == 300 * 3  # train_loss, val_loss, grad_norm each step
    assert metrics.latest(db, trial.id, "val_loss")[0] == 299
    # Sealed: no open tail left behind for a trial that will not report again.
    assert db.execute("SELECT COUNT(*) FROM metric_blocks WHERE trial_id = ? AND codec = 0",
                      [trial.id]).fetchone()[0] == 0


def test_by_default_the_file_stays_and_matches_the_store(make_study, db_path):
    db, trial = run_study(make_study, db_path)
    path = Path(trial.trial_dir) / "metrics.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 300
    stored = {(s, v) for _, _, s, v, _ in metrics.points(db, trial.id, "train_loss")}
    assert stored == {(r["step"], r["m"]["train_loss"]) for r in lines}


def test_a_file_not_ingested_to_its_end_is_kept(make_study, db_path, tmp_path):
    """The store's offset short of the file's end (lines no pass stored): the file stays."""
    from runner.ingest import ingested_to_the_end

    db, trial = run_study(make_study, db_path, "keep_metrics_jsonl = false\n", steps=5)
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 9, "m": {"train_loss": 1.0}}\n')  # bytes past the stored offset (0 here)
    db.execute("UPDATE trials SET metrics_offset = 0 WHERE id = ?", [trial.id])
    spec = load(Path(db.execute("SELECT config_path FROM studies").fetchone()[0]))
    said = []
    ingested_to_the_end(db, trial.id, path, spec, said.append)
    assert path.exists()


def test_a_bad_keep_metrics_jsonl_is_named(tmp_path):
    (tmp_path / "s.toml").write_text(
        '[study]\nname = "s"\ncommand = "python t.py"\nmax_train_steps = 5\n'
        'objective = { metric = "loss" }\nkeep_metrics_jsonl = "no"\n')
    with pytest.raises(SpecError) as info:
        load(tmp_path / "s.toml")
    assert "study.keep_metrics_jsonl: expected true or false, got 'no'" in info.value.problems
