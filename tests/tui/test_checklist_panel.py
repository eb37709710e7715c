"""The study screen's checklist (c), the plots that go with it (p), and adding trials (a), on real stores."""

from __future__ import annotations

from textual.widgets import Input
from tui_helpers import EVIL, SIZE, Notes, open_study, registered, run, screen_text, start, wait_for

from runner.analyze_view import analyze_report
from store import trials
from store.metrics import TrialUpdate, write_updates
from store.trials import TrialState
from tui.app import make_app
from tui.data.checklist import CheckItem, ChecklistReader
from tui.data.plots import staircase
from tui.data.snapshot import View
from tui.screens.add_trials import AddTrialsScreen, parse_samples
from tui.widgets.checklist import CheckLine, body_content, head_content
from tui.widgets.plot import BARS, PlotWidget

T0 = 1_700_000_000.0
# (lr, width): the larger the lr the better, so the best trials crowd the top of lr's log range.
BOUNDARY_TRIALS = ((0.01, 4), (0.05, 4), (0.45, 4), (0.02, 8), (0.1, 8), (0.5, 8))


def boundary_study(tmp_path):
    """Six finished trials (and the file's two search trials, queued) whose best sit at lr's high edge."""
    extra = "".join(f"\n[[trial]]\nlr = {lr}\nwidth = {width}\n" for lr, width in BOUNDARY_TRIALS)
    db, db_path, study = registered(tmp_path, extra=extra, expect=8)
    for t in trials.list_for_study(db, study.id):
        if t.source != "search":
            complete(db, t.id, best=1.0 - t.params["lr"])
    # Wall times relative to a fixed start: the compute view reads seconds from them.
    db.execute("UPDATE trials SET started_at = ? WHERE study_id = ? AND ended_at IS NOT NULL", [T0, study.id])
    return db, db_path, study


def complete(db, trial_id: int, best: float) -> None:
    """A trial that reports val_loss each step, improving to `best` at its last step (4 of 5)."""
    start(db, trial_id)
    rows = [(trial_id, name, s, best + (4 - s) * scale, T0 + 1.0 + s * (1 + best))
            for s in range(5) for name, scale in (("val_loss", 0.1), ("train_loss", 0.2))]
    write_updates(db, [TrialUpdate(trial_id, rows=rows, last_step=4, best=(best, 4))], {trial_id: "min"})
    assert trials.finish(db, trial_id, TrialState.COMPLETED, feasible=1)


def lines_of(app) -> list[CheckLine]:
    return list(app.screen.query(CheckLine))


def test_checklist_shows_each_verdict_and_expands_to_the_evidence(tmp_path):
    db, db_path, study = boundary_study(tmp_path)
    report = analyze_report(db, study)  # what the CLI says: the panel must say the same
    boundary = report["checks"][0]
    assert boundary["key"] == "search_space_boundary" and boundary["verdict"] == "warning"

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=8)
            await pilot.press("c")
            await wait_for(pilot, lambda: len(lines_of(app)) == len(report["checks"]))
            await wait_for(pilot, lambda: isinstance(app.focused, CheckLine))
            await pilot.pause(0.1)
            text = screen_text(app)
            for check in report["checks"]:
                line = next(ln for ln in text.splitlines() if check["title"] in ln)
                assert f" {check['verdict']:<7} {check['title']}" in line, line
            line = next(ln for ln in text.splitlines() if boundary["title"] in ln)
            assert "▲ warning" in line and "lr crowds its high edge" in line
            assert "checklist: 4 warning · 4 ok · 1 n/a (8 trials" in text  # the pane's title counts the verdicts

            await pilot.press("enter")  # expands the focused (first) check; opens no trial
            await pilot.pause(0.1)
            text = screen_text(app)
            assert app.screen.checklist_shown and lines_of(app)[0].expanded
            assert boundary["details"][0] in text  # "lr: best 3 at 1.00, 0.97, ... of its range (log)..."
            assert "→ widen lr high bound 0.5" in text
            await pilot.press("escape")  # leaves the checklist, not the screen
            assert not app.screen.checklist_shown and app.screen.query_one(PlotWidget).display

    run(scenario())


def test_best_step_histogram_and_compute_plots(tmp_path):
    _, db_path, _ = boundary_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=8)
            screen = app.screen
            assert screen.plot_pages()[-2:] == ["best-steps", "compute"]
            assert not app.view.checklist  # nothing computed until a page needs it
            screen.plot_page = screen.plot_pages()[-3]
            await pilot.press("p")
            assert screen.plot_page == "best-steps" and app.view.checklist
            plot = screen.query_one("#study-plot", PlotWidget)
            await wait_for(pilot, lambda: plot.spec.has_data)
            bars = plot.spec.series[0]
            assert bars.kind == BARS and sum(bars.ys) == 6 and bars.ys[8] == 6  # every best step at 80%
            assert [(x, label) for x, label, _ in plot.spec.vlines] == [(0.1, "first 10%"), (0.75, "last 25%")]
            await wait_for(pilot, lambda: plot.drawn)

            await pilot.press("p")
            spec = plot.spec
            assert spec.title == "val_loss vs seconds (s)"
            labels = [s.label for s in spec.series]
            assert labels[0] == "best by compute" and sorted(labels[1:]) == ["#5 width=4", "#8 width=8"]
            curve = next(s for s in spec.series if s.label == "#8 width=8")
            assert curve.xs == (1.0, 2.5, 4.0, 5.5, 7.0) and curve.ys[-1] == 0.5  # lr 0.5: seconds 1 + 1.5 s
            await wait_for(pilot, lambda: plot.drawn)
            assert "┤" in str(plot.render())

    run(scenario())


def test_add_trials_queues_samples_for_every_scientific_value(tmp_path):
    db, db_path, study = boundary_study(tmp_path)
    notes = Notes()

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            await open_study(pilot, app, rows=8)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, AddTrialsScreen))
            assert app.screen.query_one(Input).value == "4"  # the default, selected: typing replaces it
            await pilot.press("2", "enter")
            await wait_for(pilot, lambda: notes.has("queued 4 new trial(s)"))
            assert notes.has("press l to launch")
            await wait_for(pilot, lambda: app.screen.query_one("#trials").row_count == 12)

    run(scenario())
    added = trials.list_for_study(db, study.id)[8:]
    assert len(added) == 4  # 2 samples x 2 widths
    assert sorted(t.params["width"] for t in added) == [4, 4, 8, 8]
    assert all(t.state == TrialState.QUEUED and t.source == "search" for t in added)


def test_add_trials_rejects_an_invalid_count(tmp_path):
    db, db_path, study = boundary_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_study(pilot, app, rows=8)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, AddTrialsScreen))
            await pilot.press("x", "enter")
            await pilot.pause(0.1)
            assert isinstance(app.screen, AddTrialsScreen)  # still asking
            assert "'x' is not a whole number" in screen_text(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, AddTrialsScreen))

    run(scenario())
    assert len(trials.list_for_study(db, study.id)) == 8


def test_parse_samples():
    assert parse_samples(" 12 ") == (12, None)
    assert parse_samples("0") == (None, "enter 1 or more samples")
    assert parse_samples("-3")[1] == "enter 1 or more samples"
    assert "not a whole number" in parse_samples("2.5")[1]
    assert "at most 1000" in parse_samples("5000")[1]


def test_check_text_from_study_files_is_literal():
    item = CheckItem("k", f"title {EVIL}", "warning", f"summary {EVIL}", (f"detail {EVIL}",), f"advice {EVIL}")
    shown = head_content(item, expanded=False).plain + "\n" + body_content(item).plain
    assert "[bold red]x[/]" in shown and "\x1b" not in shown and "\x07" not in shown
    assert shown.count("[bold red]x[/]") == 5  # the title, and the summary on the line and under it
    assert head_content(item, expanded=False).plain.startswith("▸ ▲ warning title ")


def test_staircase_holds_the_best_until_the_next_improvement():
    assert staircase(((1.0, 0.9), (2.0, 0.5), (4.0, 0.2)), end=6.0) == (
        (1.0, 2.0, 2.0, 4.0, 4.0, 6.0), (0.9, 0.9, 0.5, 0.5, 0.2, 0.2))


def test_checklist_reader_computes_when_wanted_and_changed_and_throttles(tmp_path):
    db, db_path, study = boundary_study(tmp_path)
    reader = ChecklistReader(db_path)
    try:
        assert reader.poll(View(study.id)) is None  # the screen does not show it: nothing read
        result = reader.poll(View(study.id, checklist=True))
        assert result is not None and result.error is None and result.trials == 8
        assert result.checks[0].verdict == "warning" and result.counts() == {"warning": 4, "ok": 4, "n/a": 1}
        reader._next_at = 0.0  # as if the interval had passed
        assert reader.poll(View(study.id, checklist=True)) is None  # the store did not change
        db.execute("UPDATE trials SET detail = 'x' WHERE study_id = ?", [study.id])
        assert reader.poll(View(study.id, checklist=True)) is not None
        db.execute("UPDATE trials SET detail = 'y' WHERE study_id = ?", [study.id])
        assert reader.poll(View(study.id, checklist=True)) is None  # changed, but computed < 5 s ago
        assert reader.poll(View(404, checklist=True)).error == "study 404 is not in this database"
    finally:
        reader.close()
