"""The trial screen: what ran and how it ended, curves of any metric, gradients, and the logs."""

from __future__ import annotations

import math
from pathlib import Path

from textual.widgets import Select, Static, TabbedContent
from tui_helpers import EVIL, SIZE, manual_study, open_study, open_trial, run, wait_for, write_command

from tui.app import make_app
from tui.screens import StudyScreen
from tui.widgets.logs import TailLog
from tui.widgets.plot import PlotWidget


def overview(app) -> str:
    return str(app.screen.query_one("#overview-text", Static).render())


def test_trial_shows_params_command_failure_and_checkpoints(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)
    write_command(t[0].trial_dir, ["python", "train.py", "--lr", "0.01", "--note", "two words"])

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await open_trial(pilot, app, table, t[0].id)
            await wait_for(pilot, lambda: "checkpoints" in overview(app))
            text = overview(app)
            assert "lr = 0.01" in text and "width* = 4" in text and "scientific" in text
            assert "command (in /work/study)" in text
            assert "python train.py --lr 0.01 --note 'two words'" in text  # as run, shell-quoted
            assert "★ step      4  val_loss 0.3  ckpt-4.pt" in text  # the best of two checkpoints
            assert "  step      2  val_loss 0.4  ckpt-2.pt" in text
            assert "best val_loss 0.3 at step 4" in text

            await pilot.press("escape")
            assert isinstance(app.screen, StudyScreen)
            await open_trial(pilot, app, table, t[3].id)  # the diverged one: no command.json
            await wait_for(pilot, lambda: "why it ended" in overview(app))
            text = overview(app)
            assert "why it ended (diverged)" in text and "train_loss is nan at step 2" in text
            assert "command (planned)" in text and "--lr 0.3 --width 8" in text
            title = str(app.screen.query_one("#trial-title", Static).render())
            assert "trial #4 · failed (diverged, infeasible)" in title

    run(scenario())


def test_curves_of_any_metric_and_gradients(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            screen = await open_trial(pilot, app, table, t[0].id)
            await pilot.press("2")
            assert screen.query_one(TabbedContent).active == "curves"
            plot = screen.query_one("#metric-plot", PlotWidget)
            await wait_for(pilot, lambda: plot.spec.title == "val_loss vs step")  # the objective first
            assert screen.query_one("#metric", Select).value == "val_loss"
            await wait_for(pilot, lambda: plot.drawn)
            await pilot.press("m")  # the next metric, alphabetically after val_loss: back to the first
            await wait_for(pilot, lambda: plot.spec.title == "grad_norm vs step")
            assert plot.spec.series[0].ys == tuple(2.0 * 0.8 ** s for s in range(5))
            assert screen.query_one("#metric", Select).value == "grad_norm"

            await pilot.press("3")
            hist = screen.query_one("#grad-hist", PlotWidget)
            stats = screen._detail.grad_stats
            assert stats is not None and stats.sampled == 5
            # p90 of 0.8192, 1.024, 1.28, 1.6, 2 (linear interpolation): 1.6 + 0.6 * 0.4
            assert abs(stats.p90 - 1.84) < 1e-9
            assert hist.spec.vlines[0][0] == math.log10(stats.p90)  # drawn over log10(norm): log bins
            curve = screen.query_one("#grad-curve", PlotWidget)
            assert curve.spec.series[1].label == "p90 1.84"
            await wait_for(pilot, lambda: hist.drawn and curve.drawn)

    run(scenario())


def test_log_tail_is_literal_follows_and_scrolls_back(tmp_path):
    _, db_path, _, t = manual_study(tmp_path)
    folder = Path(t[4].trial_dir)  # the running trial
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout.log").write_text("".join(f"step {i}\n" for i in range(200)) + f"evil {EVIL}\n")
    (folder / "stderr.log").write_text("warning: something\n")

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            screen = await open_trial(pilot, app, table, t[4].id)
            await pilot.press("4")
            stdout = screen.query_one("#stdout", TailLog)
            stderr = screen.query_one("#stderr", TailLog)
            await wait_for(pilot, lambda: stdout.line_count == 201 and stderr.line_count == 1)
            last = stdout.lines[-1]
            assert last == "evil [bold red]x[/] \\x1b]52;c;aGk=\\x07"  # markup and escapes literal
            await wait_for(pilot, lambda: stdout.is_vertical_scroll_end)  # following

            with open(folder / "stdout.log", "a") as f:
                f.write("step 200\n")
            await wait_for(pilot, lambda: stdout.lines[-1] == "step 200")
            await wait_for(pilot, lambda: stdout.is_vertical_scroll_end)

            stdout.focus()
            await pilot.press("pageup")  # scrolling back stops following
            assert not screen.follow and "paused" in stdout.border_title
            with open(folder / "stdout.log", "a") as f:
                f.write("step 201\n")
            await wait_for(pilot, lambda: stdout.lines[-1] == "step 201")
            assert not stdout.is_vertical_scroll_end
            await pilot.press("F")
            assert screen.follow and "following" in stdout.border_title
            await wait_for(pilot, lambda: stdout.is_vertical_scroll_end)

    run(scenario())


def test_overview_shows_what_the_printed_line_capture_did_not_keep(tmp_path):
    import store
    from runner.printed import CaptureState
    from store import metrics

    _, db_path, _, t = manual_study(tmp_path)  # trial #1 completed: a pattern that never matched is news
    state = CaptureState(patterns=["it (?P<step>\\d+) loss (?P<train_loss>\\S+)", "acc (?P<step>\\d+) (?P<acc>\\S+)"],
                         matches=[9, 0], out_of_order=3, samples={"out_of_order": "it 10 loss 0.5"})
    db = store.connect(db_path)
    metrics.write_updates(db, [metrics.TrialUpdate(t[0].id, capture_json=state.to_json())], {})

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await open_trial(pilot, app, table, t[0].id)
            await wait_for(pilot, lambda: "printed-line capture" in overview(app))
            text = overview(app)
            assert "3 printed point(s) repeated or went back in step" in text and "it 10 loss 0.5" in text
            assert "pattern matched no line: 'acc (?P<step>\\d+) (?P<acc>\\S+)'" in text

    run(scenario())


def test_overview_shows_reported_points_that_repeated_a_step(tmp_path):
    """metrics.jsonl points at a step their series already had are merged, and the overview says so."""
    import store
    from store import metrics

    _, db_path, _, t = manual_study(tmp_path)
    db = store.connect(db_path)
    last = metrics.latest(db, t[0].id, "val_loss")[0]
    again = metrics.TrialUpdate(t[0].id, rows=[(t[0].id, "val_loss", last, 0.25, None),
                                               (t[0].id, "val_loss", last - 1, 0.26, None)])
    metrics.write_updates(db, [again], {})

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = await open_study(pilot, app, rows=6)
            await open_trial(pilot, app, table, t[0].id)
            await wait_for(pilot, lambda: "repeated or went back" in overview(app))
            text = overview(app)
            assert "2 reported point(s) repeated or went back in step" in text
            assert f"val_loss at step {last} after step {last} (value 0.25" in text

    run(scenario())


def test_progress_is_out_of_the_run_in_steps_when_max_train_steps_counts_epochs(tmp_path):
    """A study with step_unit = "epoch" and 3 epochs of 167 batches: 334/501, not 334/3."""
    import store
    from runner.printed import CaptureState
    from store import metrics
    from tui.data.snapshot import read_trials
    from tui.widgets.tables import trial_columns

    _, db_path, _, t = manual_study(tmp_path)
    db = store.connect(db_path)
    state = CaptureState(patterns=["p"], matches=[16], batches=167, progress_total=501)
    metrics.write_updates(db, [metrics.TrialUpdate(t[0].id, capture_json=state.to_json(), last_step=334)], {})
    rows = {r.id: r for r in read_trials(db, t[0].study_id)}
    progress = next(c for c in trial_columns(None, {}) if c.key == "progress")
    assert str(progress.render(rows[t[0].id])).endswith("/501")
    assert rows[t[1].id].progress_total is None  # no capture: max_train_steps as the study says
