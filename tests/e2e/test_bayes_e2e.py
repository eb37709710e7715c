"""A bayes study through the real CLI: real trial processes, a real SQLite file, crashes included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import store
from runner.search import nuisance_samples
from runner.spec import load
from store import studies, trials
from store.trials import TrialState

REPO = Path(__file__).resolve().parents[2]

# A "training" whose validation loss is a bowl around x = 0.3, y = 0.6 and that crashes for x > 0.8.
BOWL = textwrap.dedent("""
    import argparse, sys
    sys.path.insert(0, {repo!r})
    from runner.report import Reporter

    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    p.add_argument("--y", type=float)
    p.add_argument("--steps", type=int)
    args = p.parse_args()
    if args.x > 0.8:
        print("RuntimeError: the loss exploded", file=sys.stderr)
        sys.exit(1)
    report = Reporter(flush_every=1)
    bowl = (args.x - 0.3) ** 2 + (args.y - 0.6) ** 2
    for step in range(args.steps):
        report.log(step, val_loss=1.0 + bowl + 1.0 / (step + 1))
    report.close()
""")

STUDY = """
[study]
name = "bowl"
command = "python bowl.py --x {x} --y {y} --steps {max_train_steps}"
max_train_steps = 5
objective = { metric = "val_loss", mode = "min" }
trials = 14
seed = 7
concurrency = 2
search = { kind = "bayes", sampler = "tpe", startup_trials = 6 }

[params.x]
role = "nuisance"
low = 0.0
high = 1.0

[params.y]
role = "nuisance"
low = 0.0
high = 1.0
"""


def test_bayes_study_runs_its_budget_through_crashes_and_beats_its_start(tmp_path, db_path):
    (tmp_path / "bowl.py").write_text(BOWL.format(repo=str(REPO)))
    study_file = tmp_path / "bowl.toml"
    study_file.write_text(STUDY)
    run = subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), "run", str(study_file),
                          "--cpu-slots", "2"], capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "14 trials" not in run.stdout.splitlines()[0]  # only the quasi-random start is queued up front
    assert "6 trials (6 new)" in run.stdout, run.stdout

    db = store.connect(db_path)
    rows = trials.list_for_study(db, studies.by_name(db, "bowl").id)
    assert len(rows) == 14 and all(t.state.is_finished() for t in rows), [t.state for t in rows]
    assert [t.number for t in rows] == list(range(1, 15))
    spec = load(study_file)
    start = nuisance_samples(spec, 6)
    assert [t.params for t in rows[:6]] == start  # the start is the study's quasi-random points
    assert [t.params for t in rows[6:]] != nuisance_samples(spec, 14)[6:]  # the rest came from the model
    crashed = [t for t in rows if t.state is TrialState.FAILED]
    assert crashed and all(t.feasible == 0 for t in crashed)  # crashes happened and the search went on
    best_start = min(t.best_value for t in rows[:6] if t.best_value is not None)
    best_model = min(t.best_value for t in rows[6:] if t.best_value is not None)
    assert best_model < best_start
    assert f"[bowl] 14/14 finished: {14 - len(crashed)} completed" in run.stdout

    again = subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), "run", str(study_file),
                            "--cpu-slots", "2"], capture_output=True, text=True, timeout=120)
    assert "14 trials (0 new)" in again.stdout, again.stdout  # the budget is spent: nothing more runs
    assert len(trials.list_for_study(db, studies.by_name(db, "bowl").id)) == 14
