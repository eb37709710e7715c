"""Help from any screen, a palette of every action, and keys that ask before they stop anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tui_helpers import SIZE, Notes, manual_study, open_study, registered, run, screen_text, wait_for

from store import commands, lease, studies, trials
from store.trials import TrialState
from tui.app import make_app
from tui.screens import StudiesScreen, StudyScreen
from tui.screens.help import ConfirmScreen, HelpScreen


def _own_the_db(db) -> None:
    """This test process holds the runner lease, so the TUI sees a live runner and sends commands."""
    lease.acquire(db, "test-token", os.getpid(), socket.gethostname(), lambda _lease: False)


def _pending(db) -> list[tuple[str, int | None, int | None]]:
    return [tuple(r) for r in db.execute(
        "SELECT kind, study_id, trial_id FROM commands WHERE taken_at IS NULL ORDER BY id")]


def test_help_lists_every_key_of_the_current_screen_from_any_screen(tmp_path):
    _, db_path, _, _ = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = screen_text(app)
            for line in ("n", "Sample study"), ("X", "Stop study"), ("W", "Wizards"), ("q", "Quit"):
                assert any(line[0] in row and line[1] in row for row in text.splitlines()), (line, text)
            assert "q quits from any screen" in text
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))

            await open_study(pilot, app, rows=6)
            await pilot.press("f1")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            rows = screen_text(app).splitlines()
            # Every key of the study screen, even those the 80-column footer cannot show.
            for key, word in (("x", "Stop trial"), ("X", "Stop study"), ("s", "Sort"), ("S", "Reverse sort"),
                              ("l", "Launch"), ("a", "Add trials"), ("r", "Re-queue"), ("f", "Filter"),
                              ("esc", "Back"), ("?", "Help")):
                assert any(f" {key} " in f" {row} " and word in row for row in rows), (key, word)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))

    run(scenario())


def test_q_quits_from_the_study_screen(tmp_path):
    _, db_path, _ = registered(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app)
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=10)

    run(scenario())


def test_palette_lists_app_and_screen_actions(tmp_path):
    _, db_path, _ = registered(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Wizards", "Help", "Sample study", "Stop study"} <= titles
            await open_study(pilot, app)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Wizards", "Help", "Re-queue", "Reverse sort"} <= titles
            # Typing `wiz` in the palette finds the wizards, and running it opens them.
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press("w", "i", "z")
            await wait_for(pilot, lambda: "Wizards" in screen_text(app))
            await pilot.press("enter")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "WizardsScreen")

    run(scenario())


def test_stop_trial_asks_and_acts_on_the_trial_under_the_cursor_at_the_key_press(tmp_path):
    db, db_path, study, t = manual_study(tmp_path)
    _own_the_db(db)
    running = t[4]

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            table.move_cursor(row=[k.value for k in table.rows].index(str(running.id)))
            await pilot.pause()
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert f"Stop trial #{running.number} (running" in screen_text(app)
            assert _pending(db) == []  # nothing until the answer
            table.move_cursor(row=0)  # the rows move under the cursor while the question is open
            await pilot.press("y")
            await wait_for(pilot, lambda: _pending(db) == [("stop_trial", None, running.id)])

            await pilot.press("X")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "Stop study tiny? Its 1 running trial(s) stop" in screen_text(app)
            await pilot.press("n")  # no: nothing sent
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
            await pilot.pause(0.3)
            assert _pending(db) == [("stop_trial", None, running.id)]

    run(scenario())


def test_stop_study_from_the_studies_screen_asks_first(tmp_path):
    db, db_path, study = registered(tmp_path)
    studies.set_active(db, study.id, True)

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.studies)
            await pilot.press("X")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "Stop study tiny?" in screen_text(app)
            assert studies.get(db, study.id).active
            await pilot.press("enter")
            await wait_for(pilot, lambda: notes.has("set inactive"))
            assert not studies.get(db, study.id).active

    run(scenario())


def test_requeue_a_failed_trial_without_a_runner(tmp_path):
    db, db_path, study, t = manual_study(tmp_path)
    failed = t[3]

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            table = await open_study(pilot, app, rows=6)
            table.move_cursor(row=0)  # a completed trial is refused
            await pilot.pause()
            await pilot.press("r")
            await wait_for(pilot, lambda: notes.has("only a stopped, failed or lost trial"))
            table.move_cursor(row=[k.value for k in table.rows].index(str(failed.id)))
            await pilot.pause()
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert f"Re-queue trial #{failed.number} (failed" in screen_text(app)
            await pilot.press("y")
            await wait_for(pilot, lambda: notes.has(f"re-queued trial #{failed.number}"))
            assert trials.get(db, failed.id).state is TrialState.QUEUED

    run(scenario())


def test_requeue_with_a_live_runner_goes_through_its_command_queue(tmp_path):
    db, db_path, study, t = manual_study(tmp_path)
    _own_the_db(db)
    failed = t[3]

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            table = await open_study(pilot, app, rows=6)
            table.move_cursor(row=[k.value for k in table.rows].index(str(failed.id)))
            await pilot.pause()
            await pilot.press("r", "y")
            await wait_for(pilot, lambda: _pending(db) == [("requeue_trial", None, failed.id)])
            assert trials.get(db, failed.id).state is TrialState.FAILED  # the runner does it

    run(scenario())
    # What the runner does with it (runner/service.py), through the same store function.
    (cmd,) = commands.take_pending(db)
    assert trials.requeue_ended(db, cmd.trial_id)
    assert trials.get(db, failed.id).state is TrialState.QUEUED
    assert not trials.requeue_ended(db, cmd.trial_id)  # queued now: a second one does nothing


def test_tui_help_speaks_to_users():
    result = subprocess.run([sys.executable, "-c", "import sys, tui.app; sys.exit(tui.app.main())", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    text = result.stdout
    for said in ("Tuning Playbook", "--db PATH", "$PLAYBOOK_DB", ".playbook/playbook.db",
                 "one above it", "q quits", "? or f1", "ctrl+p"):
        assert said in text, said
    assert "poller" not in text and "thread" not in text  # not the developer's docstring


def test_header_says_which_database_and_why(tmp_path):
    _, db_path, _ = registered(tmp_path)

    async def scenario():
        app = make_app(db_path, db_source=f"found in {tmp_path}")
        async with app.run_test(size=(240, 30)) as pilot:  # wide enough for pytest's long tmp path
            await wait_for(pilot, lambda: f"{db_path} (found in {tmp_path})" in screen_text(app).splitlines()[0])

    run(scenario())
