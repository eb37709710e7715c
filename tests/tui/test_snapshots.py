"""Whole screens from fixed data, compared as SVG screenshots (pytest-textual-snapshot).

The SVGs live in __snapshots__/test_snapshots/. After an intended change, rewrite them with
`python -m pytest tests/tui/test_snapshots.py --snapshot-update` and look at the new
images (a failing run also writes snapshot_report.html with both side by side).
"""

from __future__ import annotations

from types import SimpleNamespace

from tui_helpers import SIZE, fix_times, manual_study, open_study, open_trial, wait_for, write_command

import tui.screens.study as study_screen
from store import connect
from tui.app import make_app
from tui.screens.base import RunnerStatus
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
                                                              localtime=lambda when: when))

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
