"""`status` as plain text: the same columns as before, a long table folded, colour only on a terminal."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

from runner.cli import main as cli
from runner.launch import register
from runner.spec import load
from runner.status_view import render_status
from store import connect, trials
from store.trials import TrialState

STUDY = """\
[study]
name = "long"
goal = "Is a 60-trial table readable?"
command = "python train.py --lr {lr}"
max_train_steps = 10
objective = { metric = "val_loss", mode = "min" }
trials = 60

[params.lr]
role = "nuisance"
low = 1e-4
high = 1.0
scale = "log"
"""


def long_study(tmp_path: Path) -> tuple[Path, list]:
    spec = tmp_path / "study.toml"
    spec.write_text(textwrap.dedent(STUDY))
    db_path = tmp_path / "playbook.db"
    db = connect(db_path)
    study, _ = register(db, db_path, load(spec))
    rows = trials.list_for_study(db, study.id)
    for t in rows[:45]:  # 45 finished, one of them (#30) running
        trials.claim(db, t.id, "cpu", "here")
        if t.number != 30:
            trials.finish(db, t.id, TrialState.COMPLETED if t.number % 9 else TrialState.FAILED)
    trials.mark_running(db, rows[29].id, 1, None)
    db.conn.close()
    return db_path, rows


def test_a_long_table_is_folded_around_its_ends_and_running_trials_and_all_shows_every_row(tmp_path, capsys):
    db_path, rows = long_study(tmp_path)
    assert cli(["--db", str(db_path), "status", "long"]) == 0
    out = capsys.readouterr().out
    shown = [int(line.split()[0]) for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert shown == [*range(1, 11), 30, *range(51, 61)]
    assert "… 19 trial(s) not shown (completed 17, failed 2; status --all shows every trial)" in out
    assert "… 20 trial(s) not shown (completed 13, queued 5, failed 2; status --all shows every trial)" in out
    assert cli(["--db", str(db_path), "status", "long", "--all"]) == 0
    out = capsys.readouterr().out
    assert [int(line.split()[0]) for line in out.splitlines()
            if line.split() and line.split()[0].isdigit()] == list(range(1, 61))
    assert "not shown" not in out


def test_the_table_keeps_its_columns_and_colours_only_a_terminal(tmp_path, capsys):
    db_path, _ = long_study(tmp_path)
    assert cli(["--db", str(db_path), "status", "long", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    plain = io.StringIO()
    render_status(report, plain)  # a StringIO is not a terminal: no escapes
    lines = plain.getvalue().splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.split() == ["#", "state", "lr", "best", "val_loss", "@step", "progress"]
    assert "\x1b" not in plain.getvalue()
    row = next(line for line in lines if line.split()[:2] == ["30", "running"])
    assert row.split()[-3:] == ["-", "-", "-/10"]
    colored = io.StringIO()
    render_status(report, colored, color=True)
    assert "\x1b[36mrunning" in colored.getvalue()  # a running trial's state, in cyan
