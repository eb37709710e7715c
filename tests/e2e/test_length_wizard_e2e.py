"""The training-length wizard end to end: the real CLI, real tiny torch trainings, a real SQLite file.

The length_demo sample (sample_studies/length_demo) fits its 256 training examples in about
60-120 steps at a good constant lr; each trial here is 40-150 steps, 3-5 s with the torch import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_studies" / "length_demo"
USAGE = 2


def cli(db_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def as_json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def length_db(tmp_path) -> Path:
    """The length_demo study registered (no trials of its own: the wizard plans every run)."""
    data = tomllib.loads((SAMPLE / "study.toml").read_text())
    data["study"].update(workdir=str(SAMPLE), trials=0)
    path = tmp_path / "length.toml"
    path.write_text(tomli_w.dumps(data))
    db_path = tmp_path / "pb" / "playbook.db"
    done = cli(db_path, "run", str(path))
    assert done.returncode == 0, done.stderr
    return db_path


def trials_of(db_path: Path, study: str) -> list[dict]:
    rows = {s["name"]: s for s in as_json(cli(db_path, "status", "--json"))["studies"]}
    return rows[study]["trials"]


@pytest.mark.timeout(240)
def test_the_sweep_gives_a_first_max_train_steps(length_db):
    out = as_json(cli(length_db, "length", "length-demo", "--low", "0.03", "--high", "0.3", "--points", "3",
                      "--horizon", "150", "--sweep-set", "weight_decay=0", "--yes", "--json"))
    sweep = out["stages"]["sweep"]
    assert out["stage"] == "done" and "round-1" not in out["stages"]  # no --rounds: not compute-bound
    assert [r["learning_rate"] for r in sweep["rows"]] == [0.03, 0.0949, 0.3]
    fastest = next(r for r in sweep["rows"] if r["learning_rate"] == sweep["fastest_lr"])
    steps = sweep["max_train_steps"]
    assert steps is not None and 0 < steps < 150 and fastest["steps_to_target"] == steps
    assert all(r["steps_to_target"] is None or r["steps_to_target"] >= steps for r in sweep["rows"])
    assert sweep["target_proposed"] and "of the first training loss" in sweep["target_why"]
    assert out["verdict"] == f"max_train_steps {steps}"
    # the sweep ran what it said: constant lr, no weight decay, the horizon's steps, every point reported
    for t in trials_of(length_db, "length-demo.length.sweep"):
        assert t["state"] == "completed" and t["last_step"] == 150
        assert t["params"]["schedule"] == "constant" and t["params"]["weight_decay"] == 0
    text = cli(length_db, "wizards", "length-demo.length")
    assert f"start with max_train_steps = {steps}" in text.stdout and "steps to target" in text.stdout


@pytest.mark.timeout(300)
def test_rounds_stretch_the_schedule_and_report_the_rank_correlation(length_db):
    out = as_json(cli(length_db, "length", "length-demo", "--low", "0.01", "--high", "0.1", "--skip-sweep",
                      "--rounds", "--round1-steps", "40", "--round2-steps", "120", "--round1-points", "2",
                      "--vary", "width=32,128", "--keep", "3", "--yes", "--json"))
    r1, r2 = out["stages"]["round-1"], out["stages"]["round-2"]
    assert "sweep" not in out["stages"]
    # round 1: the lr grid crossed with the widths, one trial each
    assert sorted(r["config"] for r in r1["rows"]) == [
        "learning_rate=0.01 width=128", "learning_rate=0.01 width=32",
        "learning_rate=0.1 width=128", "learning_rate=0.1 width=32"]
    ranked = sorted((r for r in r1["rows"] if r["objective"] is not None), key=lambda r: r["objective"])
    assert r1["chosen"] == [r["params"] for r in ranked[:3]]  # round 1's best three go on, best first
    # round 1: linear, decay over the last 20 of 40 steps; round 2: the same 20-step decay after 100 at the peak
    short_trials = trials_of(length_db, "length-demo.length.round-1")
    assert {(t["params"]["learning_rate"], t["params"]["width"]) for t in short_trials} == {
        (0.01, 32), (0.01, 128), (0.1, 32), (0.1, 128)}
    for t in short_trials:
        assert (t["params"]["schedule"], t["params"]["decay_steps"], t["last_step"]) == ("linear", 20, 40)
    long_trials = trials_of(length_db, "length-demo.length.round-2")
    assert sorted((t["params"]["learning_rate"], t["params"]["width"]) for t in long_trials) == sorted(
        (c["learning_rate"], c["width"]) for c in r1["chosen"])
    for t in long_trials:
        assert (t["params"]["schedule"], t["params"]["decay_steps"], t["last_step"]) == ("linear", 20, 120)
    assert r2["stretch"]["constant_steps"] == 100
    moved = r2["transfer"]
    assert moved["pairs"] == 3 and moved["spearman"] is not None and -1 <= moved["spearman"] <= 1
    assert moved["verdict"] in ("transferred", "partly", "did not transfer")
    assert out["verdict"].startswith("rounds: " + moved["verdict"])
    assert [p["param"] for p in r2["params"]] == ["learning_rate", "width"]
    text = cli(length_db, "wizards", "length-demo.length").stdout
    assert "Spearman rho" in text and "Kendall tau" in text and "constant phase at the peak lr grows" in text
    assert "width: round 1's best" in text and "big architecture wins: likely to transfer" in text
    assert "warmup length and initialization" in text  # the playbook's order


def test_a_study_without_a_schedule_parameter_is_refused_and_nothing_is_stored(length_db):
    bad = cli(length_db, "length", "length-demo", "--schedule-param", "lr_schedule", "--yes")
    assert bad.returncode == USAGE
    assert "has no parameter 'lr_schedule' for the lr schedule" in bad.stderr
    assert as_json(cli(length_db, "wizards", "--json")) == []
