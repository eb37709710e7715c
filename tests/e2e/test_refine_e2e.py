"""`playbook-runner refine` through the real CLI, after a real (tiny) quasi-random exploration."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from runner.spec import load
from tests.e2e.test_bayes_e2e import BOWL, REPO

EXPLORE = """
[study]
name = "explore"
command = "python bowl.py --x {{x}} --y {{y}} --steps {{max_train_steps}}"
max_train_steps = 5
objective = {{ metric = "val_loss", mode = "min" }}
trials = 24
seed = 1
concurrency = 2

[params.x]
role = "nuisance"
low = {x_low}
high = 1.0

[params.y]
role = "nuisance"
low = {y_low}
high = {y_high}

[[trial]]
x = 0.5
y = 0.5
"""


def cli(db: Path, *args: str, timeout: float = 280) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=timeout)


def explore(tmp_path: Path, db: Path, x_low: float, y_low: float = 0.0, y_high: float = 1.0) -> Path:
    (tmp_path / "bowl.py").write_text(BOWL.format(repo=str(REPO)))
    study = tmp_path / "explore.toml"
    study.write_text(EXPLORE.format(x_low=x_low, y_low=y_low, y_high=y_high))
    run = cli(db, "run", str(study), "--cpu-slots", "2")
    assert "25/25 finished" in run.stdout, run.stdout + run.stderr
    return study


def test_refine_writes_a_bayes_study_around_the_good_trials_that_runs(tmp_path, db_path):
    explore(tmp_path, db_path, x_low=0.0)  # the bowl's centre (x 0.3, y 0.6) is well inside
    out = tmp_path / "next" / "refined.toml"
    out.parent.mkdir()
    refined = cli(db_path, "refine", "explore", "-o", str(out), "--trials", "8")
    assert refined.returncode == 0, refined.stdout + refined.stderr
    assert "Is the search space big enough?: ok" in refined.stdout, refined.stdout
    assert "warning: the sampling check says" in refined.stderr  # 24 trials in 2 dimensions: thin

    config = tomllib.loads(out.read_text())
    assert config["study"]["search"] == "bayes" and config["study"]["refines"] == "explore"
    assert config["study"]["name"] == "explore-refined" and "trial" not in config  # manual trials ran already
    x, y = config["params"]["x"], config["params"]["y"]
    assert x["low"] <= 0.3 <= x["high"] and y["low"] <= 0.6 <= y["high"]  # the optimum stays inside
    assert x["high"] < 0.8  # and the crashing region (x > 0.8) is cut away
    assert (x["high"] - x["low"]) * (y["high"] - y["low"]) < 0.5  # a narrower space than the exploration's
    assert load(out).refines == "explore"

    run = cli(db_path, "run", str(out), "--cpu-slots", "2")  # the new file runs from its own folder
    assert "[explore-refined] 8/8 finished: 8 completed" in run.stdout, run.stdout + run.stderr


def test_refine_refuses_when_the_best_trials_crowd_an_edge(tmp_path, db_path):
    explore(tmp_path, db_path, x_low=0.45, y_low=0.5, y_high=0.7)  # the optimum (x 0.3) lies below x's range
    out = tmp_path / "refined.toml"
    refused = cli(db_path, "refine", "explore", "-o", str(out))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "boundary check says" in refused.stderr and "widen x low bound" in refused.stderr
    assert not out.exists()
    forced = cli(db_path, "refine", "explore", "-o", str(out), "--force")
    assert forced.returncode == 0 and tomllib.loads(out.read_text())["study"]["search"] == "bayes"
