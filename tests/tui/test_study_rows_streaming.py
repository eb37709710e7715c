"""A big study's trial table: a few screens of rows before the first paint, the rest a batch a
frame, and a sort or filter asked for meanwhile applies to every row."""

from __future__ import annotations

from textual.widgets import DataTable
from tui_helpers import SIZE, cell, run, wait_for, write_study

import tui.widgets.trial_table as trial_table
from runner.launch import register
from runner.spec import load
from store import connect, trials
from tui.app import make_app
from tui.screens import StudyScreen
from tui.widgets.trial_table import TrialTable

N = 600  # trials: 300 per width; more than the first screens and one batch


def big_study(tmp_path):
    """N queued trials, every third one completed (with a best value)."""
    path = write_study(tmp_path / "study")
    path.write_text(path.read_text().replace("trials = 1", f"trials = {N // 2}"))
    db_path = tmp_path / "db" / "playbook.db"
    db = connect(db_path)
    study, added = register(db, db_path, load(path))
    assert added == N
    rows = trials.list_for_study(db, study.id)
    with db.conn:
        db.conn.executemany("UPDATE trials SET state = 'completed', feasible = 1, best_value = ?, "
                            "best_step = 4, last_step = 4 WHERE id = ?",
                            [(1.0 / t.number, t.id) for t in rows if t.number % 3 == 0])
    db.conn.close()
    return db_path


def numbers(table: DataTable) -> list[int]:
    return [int(cell(table, r.key.value, "#").lstrip("●★")) for r in table.ordered_rows]


async def open_big(pilot, app, during=None) -> tuple[DataTable, list[tuple[bool, int]]]:
    """Open the study; record (feeding, rows in the table) after each sync of the table, and
    run `during(screen)` once, between the first and the second batch."""
    calls: list[tuple[bool, int]] = []
    sync = TrialTable.resync
    pending = [during] if during else []

    def recorded(self, feeding=False):
        if feeding and pending:
            pending.pop()(self.screen)  # a key pressed between two frames of the stream
        sync(self, feeding)
        calls.append((feeding, self.row_count))

    TrialTable.resync = recorded
    try:
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen) and app.screen.rows)
        table = app.screen.query_one("#trials", DataTable)
        await wait_for(pilot, lambda: table.rows_pending == 0 and table.row_count > 0)
    finally:
        TrialTable.resync = sync
    return table, [c for c in calls if c[1]]


def test_rows_arrive_a_bounded_batch_at_a_time_in_order(tmp_path):
    db_path = big_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table, calls = await open_big(pilot, app)
            first = trial_table.FIRST_SCREENS * SIZE[1]
            assert calls[0] == (False, first)  # the first paint: three screens of rows, not all
            added = [(f, b - a) for (_, a), (f, b) in zip(calls, calls[1:], strict=False)]
            assert all(n <= trial_table.CHUNK_ROWS for feeding, n in added if feeding)
            assert calls[-1][1] == N
            assert numbers(table) == list(range(1, N + 1))
            assert table.cursor_row == 0 and "trial #1 " in str(app.screen.query_one("#trial-detail").render())

    run(scenario())


def test_a_sort_asked_for_while_rows_stream_in_applies_to_every_row(tmp_path):
    db_path = big_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table, calls = await open_big(pilot, app, during=lambda s: s.action_reverse_sort())
            assert calls[0][1] < N  # the sort came while rows were missing
            await wait_for(pilot, lambda: table.row_count == N)
            assert numbers(table) == list(range(N, 0, -1))
            # The cursor kept its trial (#1), now the last row.
            assert table.cursor_row == N - 1 and "trial #1 " in str(app.screen.query_one("#trial-detail").render())

    run(scenario())


def test_a_filter_asked_for_while_rows_stream_in_applies_to_every_row(tmp_path):
    db_path = big_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            # all -> running -> completed
            table, calls = await open_big(pilot, app, during=lambda s: (s.action_cycle_filter(),
                                                                       s.action_cycle_filter()))
            assert calls[0][1] < N
            assert numbers(table) == list(range(3, N + 1, 3))
            await pilot.press("f")  # failed: none
            assert table.row_count == 0
            await pilot.press("f", "f")  # queued, then all again: every trial, in order
            await wait_for(pilot, lambda: table.row_count == N)
            assert numbers(table) == list(range(1, N + 1))

    run(scenario())
