"""Every view tells the same outcome of a real digits run: status, export, analyze and the TUI.

Seven hand-placed trials of the real digits train.py: five learning rates that train, one
so small the network stays at chance (the analysis judges it "failed to train") and one so
large it reports NaN (the runner marks it diverged). The views used to disagree: status and
the TUI counted 1 infeasible, export called the dead trial feasible, analyze counted 2.
"""

from __future__ import annotations

import csv
import io
import json

from runner.cli import main as cli
from store import connect, studies
from tests.sample_copies import small_digits
from tui.data.snapshot import View, read_snapshot, read_studies, read_trials
from tui.screens.trial import title_text
from tui.widgets import tables

TRAIN = (0.1, 0.15, 0.2, 0.3, 0.4)
DEAD_LR, DIVERGING_LR = 1e-4, 60.0


def _run(tmp_path, capsys) -> str:
    manual = tuple({"learning_rate": lr, "weight_decay": 1e-4, "width": 32}
                   for lr in (*TRAIN, DEAD_LR, DIVERGING_LR))
    study_file = small_digits(tmp_path / "study.toml", name="dg-views", max_train_steps=100, trials=0,
                              widths=(32,), extra_args="--train-size 2000 --val-size 500", manual=manual)
    db = str(tmp_path / "pb" / "playbook.db")
    assert cli(["--db", db, "run", str(study_file), "--cpu-slots", "2"]) == 0
    assert "7/7 finished" in capsys.readouterr().out
    return db


def _json(capsys, *argv) -> object:
    assert cli(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_every_view_counts_the_same_infeasible_trials(tmp_path, capsys):
    db = _run(tmp_path, capsys)
    dead, diverged = len(TRAIN) + 1, len(TRAIN) + 2  # trial numbers, in the order of the file

    status = _json(capsys, "--db", db, "status", "dg-views", "--json")["studies"][0]
    status_infeasible = {t["number"] for t in status["trials"] if t["feasible"] is False}

    exported = _json(capsys, "--db", db, "export", "dg-views", "--format", "json")
    export_infeasible = {r["trial"] for r in exported if r["feasible"] is False}
    assert cli(["--db", db, "export", "dg-views", "--format", "csv"]) == 0
    csv_rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    csv_infeasible = {int(r["trial"]) for r in csv_rows if r["feasible"] == "False"}

    report = _json(capsys, "--db", db, "analyze", "dg-views", "--json")
    check = next(c for c in report["checks"] if c["key"] == "infeasible_trials")
    analyze_infeasible = {t["trial"] for t in check["evidence"]["trials"]}

    store = connect(db)
    study = studies.by_name(store, "dg-views")
    row = next(r for r in read_studies(store) if r.name == "dg-views")
    tui_rows = read_trials(store, study.id)
    tui_infeasible = {r.number for r in tui_rows if "infeasible" in tables.state_text(r, long=True)}

    assert analyze_infeasible == {dead, diverged}, check["summary"]
    assert status_infeasible == export_infeasible == csv_infeasible == tui_infeasible == analyze_infeasible
    counts = {status["counts"]["infeasible"], report["outcomes"]["counts"]["infeasible"],
              row.counts["infeasible"], check["evidence"]["n_infeasible"]}
    assert counts == {2}

    # The analysis' judgement reads the same everywhere, with its reason.
    by_number = {t["number"]: t for t in status["trials"]}
    assert by_number[dead]["outcome"] == "failed to train"
    assert "robust sd worse" in by_number[dead]["outcome_why"]
    assert by_number[diverged]["outcome"] == "failed (diverged)"
    assert next(r for r in exported if r["trial"] == dead)["outcome"] == "failed to train"
    dead_row = next(r for r in tui_rows if r.number == dead)
    assert tables.state_text(dead_row) == "failed to train"
    assert "robust sd worse" in tables.detail_text(dead_row)
    opened = read_snapshot(store, View(study_id=study.id, trial_id=dead_row.id, detail=True), None, True)
    # The trial screen's title:
    assert "completed (failed to train, infeasible)" in title_text(opened.trial, row).plain
    causes = {"diverged": 1, "failed to train": 1}
    assert status["infeasible_by"] == report["outcomes"]["infeasible_by"] == causes

    assert cli(["--db", db, "status", "dg-views"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "infeasible 2 (diverged 1, failed to train 1)" in text or \
        "infeasible 2 (failed to train 1, diverged 1)" in text
    assert f"trial {dead} failed to train (analysis: best val_error" in text
    assert cli(["--db", db, "analyze", "dg-views"]) == 0
    assert "trials: completed 6, failed 1; infeasible 2" in " ".join(capsys.readouterr().out.split())
