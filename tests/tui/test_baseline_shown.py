"""The baseline `decide` adopted, shown where a user looks: the studies list, the study header, text `status`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import DataTable, Static
from tui_helpers import SIZE, open_study, registered, run, screen_text, wait_for, write_study

from runner.launch import register
from runner.spec import load
from store import wizards as wizard_store
from tui.app import make_app

REPO = Path(__file__).resolve().parents[2]
ADOPTED_AT = time.mktime((2026, 12, 2, 12, 0, 0, 0, 0, -1))  # noon, local time: the date is 2026-12-02
LINE = "baseline: lr=0.01, width=128 (adopted 2026-12-02 from tiny/3, mean 0.091)"


def adopt(tmp_path: Path):
    """A study with a baseline recorded by the store function `decide` uses, dated 2026-12-02."""
    db, db_path, study = registered(tmp_path)
    wizard_store.adopt_baseline(db, "tiny", {"width": 128, "lr": 0.01}, "tiny/3", 0.091, None)
    db.execute("UPDATE baselines SET adopted_at = ? WHERE scope = ?", [ADOPTED_AT, "tiny"])
    db.conn.commit()
    return db, db_path


def test_text_status_shows_the_adopted_baseline(tmp_path):
    _, db_path = adopt(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "import sys, runner.cli; sys.exit(runner.cli.main())", "--db", str(db_path),
         "status"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert LINE in result.stdout, result.stdout


def test_studies_list_marks_the_study_and_the_header_says_the_baseline(tmp_path):
    db, db_path = adopt(tmp_path)
    register(db, db_path, load(write_study(tmp_path / "other", name="plain")))  # no baseline: no mark

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(160, 40)) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: table.row_count == 2)
            names = [str(table.get_row_at(i)[0]) for i in range(2)]
            assert names == ["tiny ◆", "plain"], names
            await wait_for(pilot, lambda: f"◆ {LINE}" in screen_text(app))  # on screen, not cut off
            await open_study(pilot, app)
            info = app.screen.query_one("#study-info", Static)
            await wait_for(pilot, lambda: LINE in screen_text(app))
            assert str(info.render()).startswith(f"tiny · val_loss (min) · ◆ {LINE} · sort:")

    run(scenario())


def test_no_baseline_no_mark(tmp_path):
    _, db_path, _ = registered(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            detail = app.screen.query_one("#study-detail", Static)
            await wait_for(pilot, lambda: "reproduce" in str(detail.render()))
            assert str(table.get_row_at(0)[0]) == "tiny" and "◆" not in str(detail.render())

    run(scenario())
