"""The study screen on a store with trials in every state: filter, best marks, plots, overlay."""

from __future__ import annotations

from types import SimpleNamespace

from rich.text import Text
from textual.widgets import DataTable
from tui_helpers import SIZE, cell, column_labels, manual_study, open_study, report, run, start, wait_for

from store import trials
from store.trials import TrialState
from tui.app import make_app
from tui.data import snapshot
from tui.screens.trial import TrialScreen
from tui.widgets.plot import POINTS, PlotWidget
from tui.widgets.tables import current_key


def shown_numbers(table: DataTable) -> list[str]:
    return [cell(table, r.key.value, "#").lstrip("●★") for r in table.ordered_rows]


def test_filter_cycles_through_states(tmp_path):
    _, db_path, _, _ = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            seen = {}
            for _ in range(5):
                await pilot.press("f")
                seen[table.state_filter] = shown_numbers(table)
            assert seen == {"running": ["5"], "completed": ["1", "2", "3"], "failed": ["4"],
                            "queued": ["6"], "all": ["1", "2", "3", "4", "5", "6"]}
            await pilot.press("f", "f", "f")  # failed: the info line says how many are shown
            info = str(app.screen.query_one("#study-info").render())
            assert "filter: failed (1 of 6)" in info

    run(scenario())


def test_best_trial_of_each_scientific_value_is_marked(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await wait_for(pilot, lambda: any("★" in cell(table, k.value, "#") for k in table.rows))
            starred = [cell(table, k.value, "#") for k in table.rows if "★" in cell(table, k.value, "#")]
            # width 4: #2 (0.20) beats #1 (0.30); width 8: #3 (0.25); #4 diverged and is not a candidate.
            assert starred == ["★2", "★3"]
            best_row: list[Text] = table.get_row(str(t[1].id))
            other_row: list[Text] = table.get_row(str(t[0].id))
            assert all("bold" in str(span.style) for c in best_row for span in c.spans)
            assert not any("bold" in str(span.style) for c in other_row for span in c.spans)

    run(scenario())


def test_plot_pages_curves_axes_isolation(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=6)
            screen = app.screen
            plot = screen.query_one("#study-plot", PlotWidget)
            await wait_for(pilot, lambda: plot.spec.has_data)
            assert [s.label for s in plot.spec.series] == ["#1 train_loss", "#1 val_loss"]
            await wait_for(pilot, lambda: plot.drawn)
            assert "┤" in str(plot.render())  # plotext drew an axis

            assert screen.plot_pages() == ["curves", "axis:lr", "axis:width", "isolation:width",
                                           "best-steps", "compute"]
            await pilot.press("p")
            lr = plot.spec
            assert lr.xlog and lr.title.startswith("val_loss vs lr (log)")
            feasible, infeasible = lr.series
            assert infeasible.kind == POINTS and infeasible.marker == "x" and infeasible.color == "error"
            assert sorted(feasible.xs) == [0.01, 0.03, 0.1]
            assert infeasible.xs == (0.3,) and infeasible.ys == (0.30,)  # diverged: drawn on the worst edge
            await pilot.press("p", "p")
            iso = plot.spec
            assert iso.title == "isolation: best val_loss per width"
            assert iso.series[1].ys == (0.20, 0.25)
            assert iso.xticks[1] == ("4", "8")
            await wait_for(pilot, lambda: plot.drawn)
            await pilot.press("p", "p", "p")  # the checklist's plots (tests/tui/test_checklist.py), then around
            assert screen.plot_page == "curves"

    run(scenario())


def test_space_overlays_curves_and_enter_opens_the_trial(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            plot = app.screen.query_one("#study-plot", PlotWidget)
            await pilot.press("space", "down")  # #1 marked, #2 highlighted
            await wait_for(pilot, lambda: {s.label for s in plot.spec.series} == {
                "#1 train_loss", "#1 val_loss", "#2 train_loss", "#2 val_loss"})
            assert cell(table, str(t[0].id), "#") == "●1"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, TrialScreen))
            assert app.screen.trial_id == t[1].id
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.view.study_id is not None and not app.view.detail)
            assert app.view.overlay == (t[0].id,)  # the study screen's view is back, marks kept

    run(scenario())


def test_running_and_finished_trials_show_loss_and_grad_norm_sparklines(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await wait_for(pilot, lambda: cell(table, str(t[4].id), "loss ‖g‖").strip() != "")
            # train_loss 1.0, 0.8, 0.64 and grad_norm 2.0, 1.6, 1.28: both fall steeply, then less.
            assert cell(table, str(t[4].id), "loss ‖g‖") == "█▄▁ █▄▁"
            # A finished trial shows its whole curve (five steps: 1.0 down to 0.41).
            await wait_for(pilot, lambda: cell(table, str(t[0].id), "loss ‖g‖") != "")
            assert cell(table, str(t[0].id), "loss ‖g‖") == "█▆▄▂▁ █▆▄▂▁"
            assert cell(table, str(t[5].id), "loss ‖g‖") == ""  # queued: nothing yet

    run(scenario())


def test_a_snapshot_that_changes_nothing_shown_does_not_relayout_the_screen(tmp_path):
    """A live study is polled every 0.75 s; a whole-screen layout pass each time cost CPU for nothing."""
    _, db_path, _, _ = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=6)
            await pilot.pause(0.3)
            screen = app.screen
            passes = []
            real = screen._refresh_layout
            screen._refresh_layout = lambda *a, **k: (passes.append(1), real(*a, **k))[1]
            for _ in range(5):
                screen.show(app.snapshot)
                await pilot.pause()
            assert passes == []
            await pilot.press("down")  # a new one-line detail: repainted in place, no layout pass
            assert "trial #2" in str(screen.query_one("#trial-detail").render())
            assert passes == []
            await pilot.press("f")  # a change that is shown: the info line says the filter
            assert "filter: running" in str(screen.query_one("#study-info").render())
            assert passes

    run(scenario())


def test_a_live_update_under_a_filter_keeps_the_scroll_and_the_cursors_trial(tmp_path):
    """filter=running, scrolled right to read the detail: a trial that ends leaves the table,
    and neither the horizontal scroll nor the highlighted trial may jump."""
    db, db_path, _, t = manual_study(tmp_path)
    start(db, t[5].id)  # #6 runs too: running = #5, #6
    report(db, t[5].id, steps=2)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await pilot.press("f")  # running
            await wait_for(pilot, lambda: shown_numbers(table) == ["5", "6"])
            await pilot.press("down")
            assert current_key(table) == str(t[5].id)
            await wait_for(pilot, lambda: table.max_scroll_x >= 5)
            table.scroll_to(x=5, animate=False)
            await pilot.pause()
            assert table.scroll_x == 5
            assert trials.finish(db, t[4].id, TrialState.COMPLETED, feasible=1)  # #5 ends
            await wait_for(pilot, lambda: shown_numbers(table) == ["6"])
            await pilot.pause(0.2)
            assert table.scroll_x == 5
            assert current_key(table) == str(t[5].id)
            assert "trial #6 " in str(app.screen.query_one("#trial-detail").render())
            await pilot.press("s")  # a new order: same trial, same scroll
            assert table.scroll_x == 5 and current_key(table) == str(t[5].id)

    run(scenario())


def test_the_cursor_follows_its_trial_when_rows_move(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await pilot.press("down", "down")  # #3
            await pilot.press("S")  # reversed: 6 5 4 3 2 1
            assert shown_numbers(table) == ["6", "5", "4", "3", "2", "1"]
            assert current_key(table) == str(t[2].id) and table.cursor_row == 3
            await pilot.press("f", "f")  # completed: 3 2 1
            assert shown_numbers(table) == ["3", "2", "1"]
            assert current_key(table) == str(t[2].id) and table.cursor_row == 0
            await wait_for(pilot, lambda: app.view.trial_id == t[2].id)  # the poller reads #3's curves

    run(scenario())


def test_a_new_step_repaints_its_cells_not_the_row_or_the_table(tmp_path):
    """Over SSH every byte written to the terminal crosses the network: a running trial's new
    step sends its changed cells, and its newest sparklines still show (a little later)."""
    db, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        written: list[str] = []
        display = app._display

        def recorded(screen, renderable):
            if renderable is not None and hasattr(renderable, "render_segments"):
                written.append(renderable.render_segments(app.console))
            return display(screen, renderable)

        app._display = recorded
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await wait_for(pilot, lambda: app.screen.query_one(PlotWidget).drawn)
            await pilot.pause(0.5)
            written.clear()
            report(db, t[4].id, steps=4)  # #5: one more step (train_loss 0.512 at step 3)
            await wait_for(pilot, lambda: cell(table, str(t[4].id), "steps") == "3/5")
            await pilot.pause(0.2)
            out = "".join(written)
            assert "3/5" in out
            assert "running" not in out and "completed" not in out  # the unchanged cells are not resent
            assert len(out) < 1000, out
            await wait_for(pilot, lambda: cell(table, str(t[4].id), "loss ‖g‖") == "█▅▃▁ █▅▃▁")

    run(scenario())


def test_finished_trials_sparklines_are_read_within_a_budget_and_completed_by_the_next_polls(tmp_path, monkeypatch):
    """Opening a big study must not wait on every finished trial's curve: a poll reads what its
    time budget allows, and the next polls read the rest even though the store did not change."""
    _, db_path, study, t = manual_study(tmp_path)
    ended = {t[i].id for i in range(4)}  # three completed, one failed
    poller = snapshot.StorePoller(db_path)
    clock = iter(range(0, 1000))  # each read of the clock 1 s later: one curve per poll fits
    monkeypatch.setattr(snapshot, "time", SimpleNamespace(monotonic=lambda: next(clock) * 1.0))
    monkeypatch.setattr(snapshot, "ENDED_SPARK_BUDGET_S", 1.5)
    view = snapshot.View(study.id)
    with_sparks: list[int] = []
    for _ in range(len(ended)):  # one curve per poll
        snap = poller.poll(view)
        assert snap is not None  # the store did not change, but curves were left to read
        with_sparks.append(sum(1 for r in snap.trials if r.id in ended and r.loss_spark))
    assert with_sparks == [1, 2, 3, 4]
    assert poller.poll(view) is None  # all read: an unchanged store costs nothing again
    poller.close()


def test_a_narrow_terminal_folds_the_parameters_and_keeps_the_cursors_trial(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(140, 30)) as pilot:
            table = await open_study(pilot, app, rows=6)
            assert column_labels(table) == ["#", "state", "steps", "lr", "width*", "best val_loss", "@step",
                                            "loss ‖g‖", "detail"]
            await pilot.press("down", "down", "down")  # #4
            await pilot.resize_terminal(80, 24)
            await wait_for(pilot, lambda: column_labels(table) == ["#", "state", "steps", "best", "loss ‖g‖",
                                                                   "lr, width*"])
            assert cell(table, str(t[3].id), "lr, width*") == "0.3 8"
            assert current_key(table) == str(t[3].id)
            assert sum(c.get_render_width(table) for c in table.ordered_columns[:5]) <= 80

    run(scenario())
