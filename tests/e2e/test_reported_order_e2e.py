"""A training script that resumes and logs steps again, through the real CLI: its points are
merged by step (the last value wins) and every view says how many, with one sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
from runner.report import Reporter

r = Reporter()
for step in range(1, 11):
    r.log(step, val_loss=1.0 / step)
for step in range(6, 11):  # resumed from the step-5 checkpoint: steps 6-10 logged again
    r.log(step, val_loss=0.5 / step)
r.flush()
"""
STUDY = """[study]
name = "resumed"
command = "python train.py --lr {lr}"
max_train_steps = 10
objective = { metric = "val_loss", mode = "min" }
trials = 1

[params.lr]
role = "nuisance"
low = 0.01
high = 0.1
"""


def playbook(db_path: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), *args],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_resumed_run_logging_steps_again_is_merged_and_counted_in_status_and_analyze(tmp_path):
    folder = tmp_path / "resumed"
    folder.mkdir()
    (folder / "train.py").write_text(SCRIPT)
    (folder / "study.toml").write_text(STUDY)
    db_path = tmp_path / "pb" / "playbook.db"
    playbook(db_path, "run", str(folder / "study.toml"))

    (study,) = json.loads(playbook(db_path, "status", "--json"))["studies"]
    (trial,) = study["trials"]
    assert trial["state"] == "completed", trial
    assert trial["out_of_order"] == 5
    assert trial["out_of_order_sample"].startswith("val_loss at step 6 after step 10 (value 0.0833333")
    line = json.loads(trial["out_of_order_sample"].split("): ", 1)[1])  # the line the script wrote
    assert (line["step"], line["m"]) == (6, {"val_loss": 0.5 / 6})
    assert trial["best_value"] == 0.05  # the resumed attempt's values are the ones kept
    human = playbook(db_path, "status")
    assert "trial 1: 5 reported point(s) repeated or went back in step" in human

    report = json.loads(playbook(db_path, "analyze", "resumed", "--json"))
    (found,) = report["capture"]["reported_out_of_order"]
    assert (found["trial"], found["out_of_order"]) == (1, 5)
    assert "val_loss at step 6 after step 10" in playbook(db_path, "analyze", "resumed")
