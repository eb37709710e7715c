"""playbook-tui against real SQLite stores (and, once, a real runner process).

No pytest-asyncio here: each test drives the app with asyncio.run().
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from textual.widgets import DataTable, Static
from tui_helpers import (
    EVIL,
    EVIL_PARAM,
    SIZE,
    Notes,
    cell,
    column_labels,
    finish,
    open_study,
    plain_row,
    registered,
    run,
    wait_for,
    write_study,
)

from runner.judging import study_outcomes
from store import lease, studies, trials
from store.trials import TrialState
from tui.app import make_app
from tui.data.snapshot import StorePoller, View
from tui.screens import RunnerStatus, StudiesScreen
from tui.widgets.plot import PlotWidget


def curve_lengths(app) -> dict[str, int]:
    """Points per series of the study screen's plot."""
    return {s.label: len(s.xs) for s in app.screen.query_one("#study-plot", PlotWidget).spec.series}


# -- studies and trials as stored --------------------------------------------


def test_studies_table_then_trials_with_failure(tmp_path):
    db, db_path, study = registered(tmp_path)
    one, two = trials.list_for_study(db, study.id)
    finish(db, one.id, TrialState.COMPLETED, best=0.25)
    finish(db, two.id, TrialState.FAILED, reason="exit", feasible=0,
           detail="Traceback (most recent call last):\nValueError: width must be even")

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            row = dict(zip(column_labels(table), plain_row(table, str(study.id)), strict=True))
            assert row["study"] == "tiny"
            assert row["best (trial)"] == "0.25 (#1)"
            assert (row["done"], row["failed"], row["infeas."], row["queued"]) == ("1", "1", "1", "0")
            assert row["config"].endswith("study.toml")
            status = app.screen.query_one(RunnerStatus)
            await wait_for(pilot, lambda: "no runner" in str(status.render()))

            trials_table = await open_study(pilot, app)
            assert "width*" in column_labels(trials_table)  # scientific: starred
            assert "lr" in column_labels(trials_table)
            assert cell(trials_table, str(one.id), "state") == "completed"
            assert cell(trials_table, str(one.id), "best val_loss") == "0.25"
            assert cell(trials_table, str(one.id), "steps") == "4/5"
            assert cell(trials_table, str(two.id), "state") == "failed (exit)"
            assert cell(trials_table, str(two.id), "detail") == "ValueError: width must be even"
            await pilot.press("down")  # the detail pane follows the cursor
            pane = app.screen.query_one("#trial-detail", Static)
            await wait_for(pilot, lambda: "failed (exit, infeasible)" in str(pane.render()))
            assert "ValueError: width must be even" in str(pane.render())

            # The highlighted trial's curves come from the store.
            await wait_for(pilot, lambda: curve_lengths(app) == {"#2 train_loss": 5})

            await pilot.press("escape")
            assert isinstance(app.screen, StudiesScreen)

    run(scenario())


def test_untrusted_text_is_shown_literally(tmp_path):
    db, db_path, study = registered(tmp_path, extra=EVIL_PARAM)
    one, _ = trials.list_for_study(db, study.id)
    finish(db, one.id, TrialState.FAILED, reason="exit", detail="stderr says " + EVIL)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(160, 30)) as pilot:  # wide: a column per parameter, and the detail
            table = await open_study(pilot, app)
            label = cell(table, str(one.id), "label")
            detail = cell(table, str(one.id), "detail")
            for text in (label, detail):
                assert "[bold red]x[/]" in text  # markup not interpreted
                assert "\\x1b]52;c;aGk=\\x07" in text  # escapes made visible...
                assert "\x1b" not in text and "\x07" not in text  # ...never sent raw
            pane = app.screen.query_one("#trial-detail", Static)
            await wait_for(pilot, lambda: "[bold red]x[/]" in str(pane.render()))
            assert "\x1b" not in str(pane.render())

    run(scenario())


def test_sort_cycles_columns_and_reverses(tmp_path):
    db, db_path, study = registered(tmp_path)
    one, two = trials.list_for_study(db, study.id)
    finish(db, one.id, TrialState.COMPLETED, best=0.5)
    finish(db, two.id, TrialState.COMPLETED, best=0.1)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app)
            order = lambda: [r.key.value for r in table.ordered_rows]  # noqa: E731
            assert order() == [str(one.id), str(two.id)]
            screen = app.screen
            while screen.table.sort_column != "best":
                await pilot.press("s")
            assert order() == [str(two.id), str(one.id)]  # best first (ascending)
            assert "sort: best val_loss ▲" in str(screen.query_one("#study-info", Static).render())
            await pilot.press("S")
            assert order() == [str(one.id), str(two.id)]

    run(scenario())


# -- registering the sample study -------------------------------------------------


def test_empty_database_offers_the_sample_study(tmp_path):
    db_path = tmp_path / "empty.db"
    sample = write_study(tmp_path / "sample", name="sample")

    async def scenario():
        notes = Notes()
        app = make_app(db_path, sample_study=sample)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            empty = app.screen.query_one("#empty", Static)
            await wait_for(pilot, lambda: "No studies" in str(empty.render()))
            assert str(sample) in str(empty.render())
            await pilot.press("n")
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            assert cell(table, "1", "study") == "sample"
            assert cell(table, "1", "queued") == "2"
            await wait_for(pilot, lambda: notes.has("registered study sample: 2 new trial(s)"))

    run(scenario())


def test_registration_problems_are_notifications(tmp_path):
    db_path = tmp_path / "empty.db"
    bad = tmp_path / "bad" / "study.toml"
    bad.parent.mkdir()
    bad.write_text('[study]\nname = "bad"\n')

    async def scenario(sample: Path, expected: str):
        notes = Notes()
        app = make_app(db_path, sample_study=sample)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            await pilot.press("n")
            await wait_for(pilot, lambda: notes.has(expected))
            assert app.is_running  # a message, not a crash

    run(scenario(tmp_path / "nowhere" / "study.toml", "the sample study file is missing"))
    run(scenario(bad, "invalid study file"))
    # Same name, different config: the name's next version, the first one kept.
    write_study(tmp_path / "first", name="same")
    run(scenario(tmp_path / "first" / "study.toml", "registered study same:"))
    run(scenario(write_study(tmp_path / "second", name="same", extra="# changed\n[[trial]]\nlr = 0.1\nwidth = 4\n"),
                 "registered study same v2:"))


# -- stopping and launching -------------------------------------------------------


def test_stop_without_a_runner_says_so(tmp_path):
    db, db_path, study = registered(tmp_path)
    studies.set_active(db, study.id, True)

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            await open_study(pilot, app)
            await pilot.press("x", "y")  # y: the confirmation each stop asks for
            await wait_for(pilot, lambda: notes.has("no runner is alive"))
            await pilot.press("X", "y")
            await wait_for(pilot, lambda: notes.has("set inactive"))
            assert not studies.get(db, study.id).active

    run(scenario())


def _stop_runner(db) -> None:
    held = lease.current(db)
    if held is not None:
        try:
            os.kill(held.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_launch_runs_the_trials_with_a_real_runner(tmp_path):
    db, db_path, study = registered(tmp_path)

    def all_completed() -> bool:
        """every trial completed in the store"""
        rows = trials.list_for_study(db, study.id)
        return all(t.state is TrialState.COMPLETED for t in rows)

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            table = await open_study(pilot, app)
            await pilot.press("l")
            await wait_for(pilot, lambda: notes.has("started runner pid"))
            await wait_for(pilot, all_completed, timeout=30)
            # The app follows the store on its own.
            await wait_for(pilot, lambda: all(
                cell(table, key.value, "state") == "completed" for key in table.rows))
            assert all(cell(table, key.value, "best val_loss") != "—" for key in table.rows)
            await wait_for(pilot, lambda: curve_lengths(app).get("#1 val_loss") == 1)
            assert curve_lengths(app)["#1 train_loss"] == 5

    try:
        run(scenario())
    finally:
        _stop_runner(db)
    best = study_outcomes(db, study).best_value
    assert best is not None and best > 0


# -- the poller and the import budget ----------------------------------------------


def test_poller_skips_unchanged_store(tmp_path):
    db, db_path, study = registered(tmp_path)
    poller = StorePoller(db_path)
    try:
        view = View(study.id)
        first = poller.poll(view)
        assert first is not None and [t.number for t in first.trials] == [1, 2]
        assert first.roles == {"lr": "nuisance", "width": "scientific"}
        assert poller.poll(view) is None  # nothing changed
        studies.set_notes(db, study.id, "a commit from another connection")
        assert poller.poll(view) is not None
        assert poller.poll(View(study.id, first.trials[0].id)) is not None  # the view moved
    finally:
        poller.close()


def test_importing_the_app_does_not_import_torch():
    code = "import tui.app, sys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr


def test_cli_entry_point_reports_unusable_database(tmp_path):
    (tmp_path / "not-a-db").write_text("hello, this is not sqlite " * 100)
    result = subprocess.run([sys.executable, "-c", "import sys, tui.app; sys.exit(tui.app.main())",
                             "--db", str(tmp_path / "not-a-db")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "cannot use this database" in result.stderr



def test_command_palette_lists_the_screen_keys(tmp_path):
    _, db_path, _ = registered(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Sample study", "Launch", "Stop study", "Notes", "GPUs"} <= titles
            await open_study(pilot, app)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Back", "Launch", "Stop trial", "Stop study", "Sort", "Reverse sort", "Open trial",
                    "Overlay", "Next plot", "Filter"} <= titles
            assert "Copy selected text" not in titles  # Screen's own keys stay out

    run(scenario())


def test_store_errors_show_in_the_status_line_and_clear(tmp_path, monkeypatch):
    db, db_path, study = registered(tmp_path)
    import tui.data.snapshot

    real, failures = tui.data.snapshot.read_studies, []

    def flaky(conn):
        if failures:  # fail once, after the first good read
            failures.pop()
            raise sqlite3.OperationalError("database is locked")
        return real(conn)

    monkeypatch.setattr(tui.data.snapshot, "read_studies", flaky)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            status = app.screen.query_one(RunnerStatus)
            await wait_for(pilot, lambda: "no runner" in str(status.render()))
            failures.append(1)
            studies.set_notes(db, study.id, "a change, so the poller reads again")
            await wait_for(pilot, lambda: "store error: database is locked" in str(status.render()))
            await wait_for(pilot, lambda: "no runner" in str(status.render()))  # the next good read

    run(scenario())
