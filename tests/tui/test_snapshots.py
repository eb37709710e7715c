"""Whole screens from fixed data, compared as SVG screenshots (pytest-textual-snapshot).

The SVGs live in __snapshots__/test_snapshots/. After an intended change, rewrite them with
`python -m pytest tests/tui/test_snapshots.py --snapshot-update` and look at the new
images (a failing run also writes snapshot_report.html with both side by side).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from textual.widgets import DataTable
from tui_helpers import (
    SIZE,
    fix_times,
    manual_study,
    open_study,
    open_trial,
    screen_text,
    wait_for,
    write_command,
)

import tui.screens.study as study_screen
from store import connect
from tests.tui.test_wizard_screens import _study as probe_study
from tui.app import make_app
from tui.screens.base import RunnerStatus
from tui.screens.wizards import WizardScreen, WizardsScreen
from tui.widgets.checklist import CheckLine
from tui.widgets.plot import PlotWidget

SMALL = (80, 24)  # the smallest terminal the TUI is laid out for


async def settled(pilot) -> None:
    """Every plot drawn at its size and the runner probe done: nothing left to change."""
    app = pilot.app
    status = app.screen.query_one(RunnerStatus)
    await wait_for(pilot, lambda: "no runner" in str(status.render()))
    await wait_for(pilot, lambda: all(p.drawn for p in app.screen.query(PlotWidget) if p.display
                                      and p.region.area))
    await pilot.pause(0.1)


def fixture(tmp_path):
    db, db_path, study, t = manual_study(tmp_path)
    fix_times(db, study.id)
    write_command(t[0].trial_dir, ["python", "train.py", "--lr", "0.01", "--width", "4", "--steps", "5"])
    app = make_app(db_path)
    app.sub_title = "playbook.db"  # not the temporary path
    return app, t


def test_study_screen_with_overlaid_curves(tmp_path, snap_compare):
    app, _ = fixture(tmp_path)

    async def scenario(pilot):
        await open_study(pilot, pilot.app, rows=6)
        await pilot.press("space", "down")
        plot = pilot.app.screen.query_one("#study-plot", PlotWidget)
        await wait_for(pilot, lambda: len(plot.spec.series) == 4)
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=scenario)


def test_study_screen_at_80x24(tmp_path, snap_compare):
    app, _ = fixture(tmp_path)

    async def scenario(pilot):
        await open_study(pilot, pilot.app, rows=6)
        await settled(pilot)

    assert snap_compare(app, terminal_size=SMALL, run_before=scenario)


def test_study_screen_axis_plot(tmp_path, snap_compare):
    app, _ = fixture(tmp_path)

    async def scenario(pilot):
        await open_study(pilot, pilot.app, rows=6)
        await pilot.press("p")
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=scenario)


def test_study_screen_checklist(tmp_path, snap_compare, monkeypatch):
    app, _ = fixture(tmp_path)
    # The checklist's title says when it was computed: a fixed time here.
    monkeypatch.setattr(study_screen, "time", SimpleNamespace(strftime=lambda fmt, when: "12:00:00",
                                                              localtime=lambda when: when,
                                                              monotonic=time.monotonic))

    async def scenario(pilot):
        await open_study(pilot, pilot.app, rows=6)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(pilot.app.focused, CheckLine))
        await pilot.press("enter")  # the first check, expanded
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=scenario)


def test_trial_screen_overview(tmp_path, snap_compare):
    app, t = fixture(tmp_path)

    async def scenario(pilot):
        table = await open_study(pilot, pilot.app, rows=6)
        await open_trial(pilot, pilot.app, table, t[0].id)
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=scenario)


def test_studies_screen_at_80x24(tmp_path, snap_compare):
    app, _ = fixture(tmp_path)
    db = connect(app.db_path)  # the study's paths, as if it lived in /work/study
    db.execute("UPDATE studies SET config_path = REPLACE(config_path, ?, '/work'), "
               "reproduce_command = REPLACE(reproduce_command, ?, '/work')", [str(tmp_path), str(tmp_path)])
    db.conn.commit()
    db.conn.close()

    async def scenario(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#studies").row_count == 1)
        await wait_for(pilot, lambda: "no runner" in str(pilot.app.screen.query_one(RunnerStatus).render()))
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SMALL, run_before=scenario)


def test_trial_screen_curves(tmp_path, snap_compare):
    app, t = fixture(tmp_path)

    async def scenario(pilot):
        table = await open_study(pilot, pilot.app, rows=6)
        screen = await open_trial(pilot, pilot.app, table, t[0].id)
        await pilot.press("2")
        plot = screen.query_one("#metric-plot", PlotWidget)
        for _ in range(5):  # the objective (one point) first; m moves to the next metric
            if plot.spec.title.startswith("train_loss"):
                break
            await pilot.press("m")
            await pilot.pause(0.2)
        await wait_for(pilot, lambda: plot.spec.title.startswith("train_loss") and plot.spec.has_data)
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=scenario)


def test_trial_screen_logs(tmp_path, snap_compare):
    app, t = fixture(tmp_path)
    folder = Path(t[3].trial_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout.log").write_text("".join(f"step {s} train_loss {0.8 ** s:.4f}\n" for s in range(3)))
    (folder / "stderr.log").write_text("Traceback (most recent call last):\n  File \"train.py\", line 12\n"
                                       "FloatingPointError: train_loss is nan at step 2\n")

    async def scenario(pilot):
        table = await open_study(pilot, pilot.app, rows=6)
        await open_trial(pilot, pilot.app, table, t[3].id)
        await pilot.press("4")
        await wait_for(pilot, lambda: "FloatingPointError" in screen_text(pilot.app))
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=scenario)


def test_finished_batch_size_probe_wizard(tmp_path, snap_compare):
    """A probe run for real by the headless command (4 batch sizes, a stdlib script whose
    throughput saturates at 32), then opened in the TUI: its trials, plot and report."""
    db_path = probe_study(tmp_path)
    done = subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), "probe-batch", "probe-me",
                           "--start", "8", "--cap", "64", "--steps", "12", "--skip", "2", "--set", "lr=0.1",
                           "--yes"], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    app = make_app(db_path)
    app.sub_title = "playbook.db"

    async def scenario(pilot):
        app = pilot.app
        await pilot.press("W")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardsScreen)
                       and app.screen.query_one(DataTable).row_count == 1, timeout=20)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen), timeout=20)
        await wait_for(pilot, lambda: app.screen.current is not None and app.screen.current.wizard.verdict,
                       timeout=20)
        await wait_for(pilot, lambda: all(p.drawn for p in app.screen.query(PlotWidget) if p.region.area))
        await pilot.pause(0.2)

    # 40 lines: the report's measured start-up time ("20 steps take about ...") stays below the fold.
    assert snap_compare(app, terminal_size=(120, 40), run_before=scenario)
