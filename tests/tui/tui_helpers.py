"""Shared fixtures of the TUI tests: real stores built with the store's own functions, and Pilot helpers."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path

from rich.console import Console
from textual.notifications import Notify
from textual.widgets import DataTable

from runner.launch import register
from runner.spec import load
from store import connect, trials
from store.metrics import TrialUpdate, write_updates
from store.trials import TrialState
from tui.screens import StudyScreen
from tui.screens.trial import TrialScreen

SIZE = (100, 30)
EVIL = "[bold red]x[/] \x1b]52;c;aGk=\x07"  # markup, and an OSC 52 clipboard write

TRAIN_PY = """\
import argparse
from runner.report import Reporter

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--width", type=int)
p.add_argument("--steps", type=int)
a = p.parse_args()
report = Reporter()
loss = 1.0
for step in range(a.steps):
    loss *= 1 - a.lr
    report.log(step, train_loss=loss, grad_norm=2 * loss)
report.log(a.steps - 1, val_loss=loss / a.width)
report.close()
"""

STUDY_TOML = """\
[study]
name = "{name}"
goal = "Does width help? (a smoke test)"
command = "python train.py --lr {{lr}} --width {{width}} --steps {{max_train_steps}}"
max_train_steps = 5
objective = {{ metric = "val_loss", mode = "min" }}
trials = 1
concurrency = 2
timeout = 60

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"

[params.width]
role = "scientific"
values = [4, 8]
"""

# Six hand-placed trials (no search): two per width finish, one diverges, one runs, one waits.
MANUAL_TRIALS = "".join(
    f"\n[[trial]]\nlr = {lr}\nwidth = {width}\n"
    for lr, width in ((0.01, 4), (0.1, 4), (0.03, 8), (0.3, 8), (0.5, 8), (0.02, 4))
)

# TOML escapes: the stored value holds a real ESC and BEL.
EVIL_PARAM = """
[params.label]
role = "nuisance"
values = ["[bold red]x[/] \\u001b]52;c;aGk=\\u0007"]
in_command = false
"""


def write_study(folder: Path, name: str = "tiny", extra: str = "", manual: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN_PY)
    path = folder / "study.toml"
    text = STUDY_TOML.format(name=name)
    if manual:
        text = text.replace("trials = 1", "trials = 0") + MANUAL_TRIALS
    path.write_text(text + extra)
    return path


def registered(tmp_path: Path, extra: str = "", manual: bool = False, expect: int | None = None):
    db_path = tmp_path / "db" / "playbook.db"
    db = connect(db_path)
    study, added = register(db, db_path, load(write_study(tmp_path / "study", extra=extra, manual=manual)))
    assert added == (expect if expect is not None else (6 if manual else 2))
    return db, db_path, study


def start(db, trial_id: int, slot: str = "cpu") -> None:
    assert trials.claim(db, trial_id, slot, "testhost")
    trials.mark_running(db, trial_id, os.getpid(), None)


def report(db, trial_id: int, *, steps: int = 5, best: float | None = None, val: float | None = None,
           checkpoints: tuple[tuple[int, float], ...] = (), scale: float = 1.0) -> None:
    """Curves a trial would report: train_loss and grad_norm each step, val_loss at the end."""
    rows = [(trial_id, name, s, v * scale * (0.8 ** s), 1_700_000_000.0 + s)
            for s in range(steps) for name, v in (("train_loss", 1.0), ("grad_norm", 2.0))]
    if val is not None:
        rows.append((trial_id, "val_loss", steps - 1, val, 1_700_000_000.0 + steps))
    ckpts = [(trial_id, step, f"ckpt-{step}.pt", obj, 1_700_000_000.0 + step) for step, obj in checkpoints]
    write_updates(db, [TrialUpdate(trial_id, rows=rows, checkpoints=ckpts, last_step=steps - 1,
                                   best=(best, steps - 1) if best is not None else None)],
                  {trial_id: "min"})


def finish(db, trial_id: int, state: TrialState, *, best: float | None = None, steps: int = 5,
           reason: str | None = None, detail: str | None = None, feasible: int | None = 1,
           **curves) -> None:
    """Take a trial through the lifecycle a runner would, with a curve and a best value."""
    start(db, trial_id)
    report(db, trial_id, steps=steps, best=best, **curves)
    assert trials.finish(db, trial_id, state, reason=reason, detail=detail, feasible=feasible)


def manual_study(tmp_path: Path):
    """The six manual trials in every state; #2 (width 4) and #4 (width 8) are the best per width."""
    db, db_path, study = registered(tmp_path, manual=True)
    t = trials.list_for_study(db, study.id)
    finish(db, t[0].id, TrialState.COMPLETED, best=0.30, val=0.30, checkpoints=((2, 0.4), (4, 0.3)))
    finish(db, t[1].id, TrialState.COMPLETED, best=0.20, val=0.20, scale=0.9)
    finish(db, t[2].id, TrialState.COMPLETED, best=0.25, val=0.25, scale=0.8)
    finish(db, t[3].id, TrialState.FAILED, reason="diverged", feasible=0, steps=3,
           detail="train_loss is nan at step 2")
    start(db, t[4].id, slot="gpu:0")
    report(db, t[4].id, steps=3)
    return db, db_path, study, t


def fix_times(db, study_id: int) -> None:
    """Fixed start and end times and pids, so the screens show the same every run."""
    db.execute("UPDATE trials SET started_at = 1700000000.0, ended_at = 1700000042.5, pid = 4242 "
               "WHERE study_id = ? AND ended_at IS NOT NULL", [study_id])


def write_command(trial_dir: str, argv: list[str], cwd: str = "/work/study") -> None:
    """The command.json a runner writes at spawn."""
    Path(trial_dir).mkdir(parents=True, exist_ok=True)
    (Path(trial_dir) / "command.json").write_text(json.dumps({"argv": argv, "cwd": cwd}))


def run(coro):
    return asyncio.run(coro)


async def wait_for(pilot, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate.__doc__ or predicate}")
        await pilot.pause(0.05)


def plain_row(table: DataTable, key: str) -> list[str]:
    return [c.plain for c in table.get_row(key)]


def column_labels(table: DataTable) -> list[str]:
    return [c.label.plain for c in table.columns.values()]


def cell(table: DataTable, key: str, label: str) -> str:
    return plain_row(table, key)[column_labels(table).index(label)]


class Notes(list):
    """Collects notification texts (pass as run_test's message_hook)."""

    def __call__(self, message) -> None:
        if isinstance(message, Notify):
            self.append(message.notification.message)

    def has(self, text: str) -> bool:
        return any(text in n for n in self)


async def open_study(pilot, app, rows: int = 2) -> DataTable:
    studies_table = app.screen.query_one(DataTable)
    await wait_for(pilot, lambda: studies_table.row_count >= 1)
    await pilot.press("enter")
    # Pushed is not yet composed: under load the table can be a frame or two behind.
    await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen) and bool(app.screen.query("#trials")))
    table = app.screen.query_one("#trials", DataTable)
    await wait_for(pilot, lambda: table.row_count == rows)
    return table


async def open_trial(pilot, app, table: DataTable, trial_id: int) -> TrialScreen:
    """Move the cursor to the trial's row and press enter."""
    keys = [r.key.value for r in table.ordered_rows]
    table.move_cursor(row=keys.index(str(trial_id)))
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, TrialScreen))
    screen = app.screen
    await wait_for(pilot, lambda: screen._detail is not None and screen._detail.id == trial_id)
    return screen


def screen_text(app) -> str:
    """The screen as plain text, as the terminal shows it (what export_screenshot renders, uncolored)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)
