"""Whole screens at 100x30 from fixed data, compared as text with tests/tui/snapshots/*.txt.

pytest-textual-snapshot 1.1.0 (the latest) pins syrupy 4.8.0, which needs pytest < 9;
this project runs pytest 9, so these compare plain text (layout and content, not
colors). After an intended change, regenerate with TUI_SNAPSHOT_UPDATE=1 and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from tui_helpers import (
    SIZE,
    fix_times,
    manual_study,
    open_study,
    open_trial,
    run,
    screen_text,
    wait_for,
    write_command,
)

from tui.app import make_app
from tui.screens.base import RunnerStatus
from tui.widgets.checklist import CheckLine
from tui.widgets.plot import PlotWidget

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("TUI_SNAPSHOT_UPDATE") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
        return
    expected = path.read_text()
    if text != expected:
        diff = "\n".join(difflib.unified_diff(expected.splitlines(), text.splitlines(), "expected", "actual",
                                              lineterm=""))
        raise AssertionError(f"screen differs from {path.name} (TUI_SNAPSHOT_UPDATE=1 rewrites it):\n{diff}")


async def settled(pilot, app) -> None:
    """Every plot drawn at its size and the runner probe done: nothing left to change."""
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


def test_study_screen_with_overlaid_curves(tmp_path):
    app, _ = fixture(tmp_path)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=6)
            await pilot.press("space", "down")
            plot = app.screen.query_one("#study-plot", PlotWidget)
            await wait_for(pilot, lambda: len(plot.spec.series) == 4)
            await settled(pilot, app)
            assert_snapshot("study_curves", screen_text(app))

    run(scenario())


def test_study_screen_axis_plot(tmp_path):
    app, _ = fixture(tmp_path)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=6)
            await pilot.press("p")
            await settled(pilot, app)
            assert_snapshot("study_axis_lr", screen_text(app))

    run(scenario())


def test_study_screen_checklist(tmp_path):
    app, _ = fixture(tmp_path)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=6)
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.focused, CheckLine))
            await pilot.press("enter")  # the first check, expanded
            await settled(pilot, app)
            # The title says when it was computed: a fixed time here.
            assert_snapshot("study_checklist", re.sub(r"\d\d:\d\d:\d\d", "12:00:00", screen_text(app)))

    run(scenario())


def test_trial_screen_overview(tmp_path):
    app, t = fixture(tmp_path)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await open_trial(pilot, app, table, t[0].id)
            await settled(pilot, app)
            assert_snapshot("trial_overview", screen_text(app))

    run(scenario())
