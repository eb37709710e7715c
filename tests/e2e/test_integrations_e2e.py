"""The Hugging Face and Lightning samples through the real CLI: `run`, then `analyze --json`.

Each study file is a shrunk copy of the sample's (one learning rate per scientific value, 30
steps, small data); its workdir is the real sample folder, so the trials run the real
train.py with the real Trainer and the integration under the real runner and store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import tomli_w

import store
from store import metrics, studies, trials

SAMPLES = Path(__file__).resolve().parents[2] / "sample_studies"
STEPS, EVAL_EVERY = 30, 10
PER_STEP = ("train_loss", "grad_norm", "lr", "examples_per_s", "peak_memory_mb")


def shrunk(sample: str, path: Path, name: str, extra_args: str) -> Path:
    data = tomllib.loads((SAMPLES / sample / "study.toml").read_text())
    data["study"].update(name=name, workdir=str(SAMPLES / sample), max_train_steps=STEPS, trials=1,
                         concurrency=2, timeout=240)
    data["study"]["command"] += f" {extra_args}"
    data["params"]["eval_every"]["value"] = EVAL_EVERY
    path.write_text(tomli_w.dumps(data))
    return path


def cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("playbook-runner")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "runner"]
    return subprocess.run([*argv, "--db", str(db), *args], capture_output=True, text=True, timeout=280)


CASES = {
    # sample: (objective, extra args, the steps one training run numbers, compute axis)
    "hf_tiny": ("eval_loss", "--train-size 512 --val-size 64", range(1, STEPS + 1), "flops"),
    "lightning_tiny": ("val_error", "--train-size 1024 --val-size 256", range(STEPS), "seconds"),
}


@pytest.mark.parametrize("sample", list(CASES))
def test_sample_runs_under_the_runner_with_every_point_once(sample, tmp_path):
    objective, extra, steps, axis = CASES[sample]
    study_file = shrunk(sample, tmp_path / "study.toml", sample, extra)
    db_path = tmp_path / "pb" / "playbook.db"
    run = cli(db_path, "run", str(study_file), "--cpu-slots", "2")
    assert run.returncode == 0, run.stderr
    assert "2/2 finished: 2 completed" in run.stdout, run.stdout + run.stderr

    db = store.connect(db_path)
    for trial in trials.list_for_study(db, studies.by_name(db, sample).id):
        stored = metrics.points(db, trial.id)
        per_name = Counter(name for _, name, _, _, _ in stored)
        assert not [k for k, n in Counter((name, step) for _, name, step, _, _ in stored).items() if n > 1]
        for name in PER_STEP:
            assert sorted(s for _, n, s, _, _ in stored if n == name) == list(steps), (trial.number, name)
        assert per_name[objective] == STEPS // EVAL_EVERY
        values = {s: v for _, n, s, v, _ in stored if n == objective}
        lines = (Path(trial.trial_dir) / "metrics.jsonl").read_text().splitlines()
        written = Counter((name, r["step"]) for r in map(json.loads, lines) for name in r.get("m", {}))
        assert max(written.values()) == 1  # the file itself: nothing written twice

        marks = metrics.checkpoints(db, trial.id)
        assert marks, f"trial {trial.number}: no checkpoint recorded"
        for mark in marks:  # each marked with the objective measured at its own step
            assert mark["objective"] == pytest.approx(values[mark["step"]]), mark
        assert Path(marks[-1]["path"]).exists()
        assert all(0 < v < 1e6 for _, n, _, v, _ in stored if n == "grad_norm")
        assert all(v > 0 for _, n, _, v, _ in stored if n == "examples_per_s")

    report = cli(db_path, "analyze", sample, "--json")
    assert report.returncode == 0, report.stderr
    checks = {c["key"]: c for c in json.loads(report.stdout)["checks"]}
    for key in ("training_curves", "gradient_norm", "compute"):
        assert checks[key]["verdict"] != "n/a", (key, checks[key]["summary"])
    assert checks["gradient_norm"]["evidence"]["recommended_threshold"] > 0
    assert checks["compute"]["evidence"]["axis"] == axis
