"""Printed logs through the real CLI: a script that only prints, captured by study.metrics patterns.

The script prints the word-level LSTM example's lines (tests/scripts/printed_log.py): the
batch index restarts every epoch, so only a step rule keeps every line on one curve.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import store
from store import metrics, studies, trials

SCRIPT = Path(__file__).parents[1] / "scripts" / "printed_log.py"
EPOCHS, BATCHES, INTERVAL = 3, 167, 20

TRAIN = r"'\| epoch +(?P<epoch>\d+) \| +(?P<batch>\d+)/ *(?P<batches>\d+) batches \|.*\| loss +(?P<train_loss>\S+)'"
VALID = r"'\| end of epoch +(?P<epoch>\d+) \|.*\| valid loss +(?P<val_loss>\S+)'"
HEAD = """[study]
name = "{name}"
command = "python printed_log.py --epochs {epochs} --batches {batches} --lr {{lr}} --sleep 0.01 {extra}"
max_train_steps = {max_steps}{unit}
objective = {{ metric = "{objective}", mode = "min" }}
trials = 1
"""
PARAMS = """
[params.lr]
role = "nuisance"
low = 10.0
high = 30.0
"""


def study_file(tmp_path: Path, metrics_toml: str, *, name: str = "lstm", objective: str = "val_loss",
               extra: str = "", max_steps: int = EPOCHS * BATCHES, epochs: str = str(EPOCHS),
               unit: str = "") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(SCRIPT, folder / "printed_log.py")
    path = folder / "study.toml"
    path.write_text(HEAD.format(name=name, epochs=epochs, batches=BATCHES, extra=extra, max_steps=max_steps,
                                objective=objective, unit=unit) + metrics_toml + PARAMS)
    return path


def playbook(db_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed command line, as a user runs it."""
    proc = subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), *args],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def status_trial(db_path: Path) -> dict:
    (study,) = json.loads(playbook(db_path, "status", "--json").stdout)["studies"]
    (trial,) = study["trials"]
    return trial


def printed(trial_dir: str, pattern: str) -> list[tuple[int, ...]]:
    """Every printed line that matches, as its numbers (epoch, batch, value) or (epoch, value)."""
    text = (Path(trial_dir) / "stdout.log").read_text()
    return [tuple(float(g) for g in m.groups()) for m in re.finditer(pattern, text)]


def series(db_path: Path, name: str) -> tuple[list[int], list[float]]:
    db = store.connect(db_path)
    (t,) = trials.list_for_study(db, studies.by_name(db, "lstm").id)
    s = metrics.read_series(db, t.id, name, max_points=10_000)
    return s.steps, s.values


def test_epoch_batch_rule_keeps_every_printed_line_in_order_on_one_curve(tmp_path):
    rules = (f"\n[[study.metrics]]\npattern = {TRAIN}\nstep = \"epoch_batch\"\n"
             f"\n[[study.metrics]]\npattern = {VALID}\nstep = \"epoch\"\n")
    db_path = tmp_path / "pb" / "playbook.db"
    run = playbook(db_path, "run", str(study_file(tmp_path, rules)))
    assert "warning" not in run.stderr
    trial = status_trial(db_path)
    assert trial["state"] == "completed", trial

    train = printed(trial["trial_dir"], r"\| epoch +(\d+) \| +(\d+)/ *\d+ batches .*\| loss +(\S+)")
    per_epoch = len(range(INTERVAL, BATCHES, INTERVAL))
    assert len(train) == EPOCHS * per_epoch  # 8 lines an epoch, the batch index restarting each time
    steps, values = series(db_path, "train_loss")
    assert steps == [int((epoch - 1) * BATCHES + batch) for epoch, batch, _ in train]
    assert values == [loss for _, _, loss in train]
    valid = printed(trial["trial_dir"], r"end of epoch +(\d+) .*valid loss +(\S+)")
    assert series(db_path, "val_loss") == ([int(e) * BATCHES for e, _ in valid], [v for _, v in valid])

    assert trial["last_step"] == EPOCHS * BATCHES and trial["best_step"] == EPOCHS * BATCHES
    capture = trial["capture"]
    assert (capture["out_of_order"], capture["dropped"], capture["notes"]) == (0, 0, [])
    assert capture["batches_per_epoch"] == BATCHES
    report = json.loads(playbook(db_path, "analyze", "lstm", "--json").stdout)
    assert report["capture"] == {"no_objective": [], "trials": [], "reported_out_of_order": []}


def test_a_study_that_counts_max_train_steps_in_epochs_shows_progress_in_steps(tmp_path):
    """`--epochs {max_train_steps}` with step_unit = "epoch": progress is 501/501, never 501/3."""
    rules = (f"\n[[study.metrics]]\npattern = {TRAIN}\nstep = \"epoch_batch\"\n"
             f"\n[[study.metrics]]\npattern = {VALID}\nstep = \"epoch\"\n")
    db_path = tmp_path / "pb" / "playbook.db"
    path = study_file(tmp_path, rules, max_steps=EPOCHS, epochs="{max_train_steps}", unit='\nstep_unit = "epoch"')
    playbook(db_path, "run", str(path))
    trial = status_trial(db_path)
    assert trial["state"] == "completed" and trial["max_train_steps"] == EPOCHS
    assert (trial["last_step"], trial["progress_total"]) == (EPOCHS * BATCHES, EPOCHS * BATCHES)
    human = playbook(db_path, "status").stdout
    assert f"{EPOCHS * BATCHES}/{EPOCHS * BATCHES}" in human and f"{EPOCHS * BATCHES}/{EPOCHS} " not in human


def test_a_restarting_counter_read_as_the_step_is_counted_and_shown_never_silent(tmp_path):
    """The plain `step` group on the batch index: epochs 2 and 3 land on epoch 1's steps."""
    plain = r"'\| epoch +\d+ \| +(?P<step>\d+)/.*\| loss +(?P<train_loss>\S+)'"
    valid = r"'\| end of epoch +(?P<step>\d+) \|.*\| valid loss +(?P<val_loss>\S+)'"
    rules = f"metrics = [{plain}, {valid}]\n"  # the plain form, as before step rules existed
    db_path = tmp_path / "pb" / "playbook.db"
    playbook(db_path, "run", str(study_file(tmp_path, rules)))
    trial = status_trial(db_path)
    per_epoch = len(range(INTERVAL, BATCHES, INTERVAL))
    capture = trial["capture"]
    assert capture["out_of_order"] == (EPOCHS - 1) * per_epoch
    assert re.match(r"\| epoch +2 \| +20/", capture["samples"]["out_of_order"])
    assert any(note.startswith(f"{(EPOCHS - 1) * per_epoch} printed point(s) repeated or went back")
               for note in capture["notes"])
    assert series(db_path, "val_loss")[0] == [1, 2, 3]
    human = playbook(db_path, "status").stdout
    assert "repeated or went back in step" in human and "| epoch   2 |" in human
    report = json.loads(playbook(db_path, "analyze", "lstm", "--json").stdout)
    (found,) = report["capture"]["trials"]
    assert found["trial"] == 1 and found["out_of_order"] == capture["out_of_order"]
    assert "repeated or went back in step" in playbook(db_path, "analyze", "lstm").stdout


def test_float_steps_are_read_and_a_fractional_step_is_dropped_with_its_line(tmp_path):
    rules = "metrics = ['step (?P<step>\\S+) loss (?P<loss>\\S+)']\n"
    db_path = tmp_path / "pb" / "playbook.db"
    playbook(db_path, "run", str(study_file(tmp_path, rules, objective="loss", extra="--style steps")))
    trial = status_trial(db_path)
    assert trial["state"] == "completed"
    steps, _ = series_of(db_path, "loss")
    assert steps == list(range(0, BATCHES, INTERVAL))  # printed as 0.00, 20.00, ...
    capture = trial["capture"]
    assert capture["dropped"] == 1 and capture["samples"]["dropped"].startswith(f"step {BATCHES - 0.5:.2f}")
    assert "not a whole number" in capture["drop_reason"]
    assert "1 matched line(s) dropped" in playbook(db_path, "status").stdout


def series_of(db_path: Path, name: str) -> tuple[list[int], list[float]]:
    db = store.connect(db_path)
    t = trials.list_for_study(db, studies.list_all(db)[0].id)[0]
    s = metrics.read_series(db, t.id, name, max_points=10_000)
    return s.steps, s.values


def test_an_objective_that_never_arrives_is_a_clear_outcome(tmp_path):
    """Capture only the training loss and a pattern that never matches: `run` warns, the trial
    ends failed (no_objective) naming what it did report, and `analyze` says so."""
    never = r"'accuracy (?P<step>\d+) (?P<acc>\S+)'"
    train = r"'\| epoch +(?P<step>\d+) \|.*\| loss +(?P<train_loss>\S+)'"  # the epoch as step: good enough
    rules = f"metrics = [{never}, {train}]\n"
    db_path = tmp_path / "pb" / "playbook.db"
    run = playbook(db_path, "run", str(study_file(tmp_path, rules)))
    assert "warning:" in run.stderr and "(?P<val_loss>...)" in run.stderr
    trial = status_trial(db_path)
    assert (trial["state"], trial["reason"], trial["feasible"]) == ("failed", "no_objective", None)
    assert trial["detail"] == "exited 0 without reporting val_loss; it reported: train_loss"
    assert trial["capture"]["unmatched_patterns"] == [never.strip("'")]
    assert f"pattern matched no line: {never}" in trial["capture"]["notes"]

    report = json.loads(playbook(db_path, "analyze", "lstm", "--json").stdout)
    assert report["capture"]["no_objective"] == [{"trial": 1, "detail": trial["detail"]}]
    summaries = [c["summary"] for c in report["checks"]]
    assert not any(s.startswith("no feasible trial yet") for s in summaries), summaries
    assert any(s.startswith("no trial reported val_loss: 1 trial(s) ended no_objective") for s in summaries)
    human = playbook(db_path, "analyze", "lstm").stdout
    assert "without reporting val_loss" in human and "pattern matched no line" in human
