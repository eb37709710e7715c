"""The wizards in the TUI: start one from the dialog, confirm its stage, watch it run, read the verdict.

Real parts: a real study file and store, a stdlib training script whose throughput
saturates at a known batch size, and the real detached runner the screen starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.widgets import DataTable, Input

from runner.launch import register
from runner.spec import load
from runner.wizards.options import proposal
from store import connect, studies, trials
from store import wizards as wizard_store
from tests.tui.tui_helpers import run, screen_text, wait_for
from tui.app import make_app
from tui.screens.wizards import StartWizardScreen, WizardScreen, WizardsScreen

# Throughput grows with the batch size up to 32 and then stays flat: the knee is known.
PROBE_PY = """\
import argparse
from runner.report import Reporter

p = argparse.ArgumentParser()
p.add_argument("--batch-size", type=int)
p.add_argument("--lr", type=float)
p.add_argument("--steps", type=int)
a = p.parse_args()
report = Reporter()
for step in range(1, a.steps + 1):
    report.log(step, train_loss=1.0 / step, examples_per_s=1000.0 * min(a.batch_size, 32))
report.close()
"""

STUDY = """\
[study]
name = "probe-me"
command = "python train.py --batch-size {batch_size} --lr {lr} --steps {max_train_steps}"
max_train_steps = 20
objective = { metric = "train_loss", mode = "min" }

[params.lr]
role = "nuisance"
low = 0.01
high = 1.0
scale = "log"

[params.batch_size]
role = "fixed"
value = 8
"""


def _study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "train.py").write_text(PROBE_PY)
    (folder / "study.toml").write_text(STUDY)
    db_path = tmp_path / "pb" / "playbook.db"
    db = connect(db_path)
    register(db, db_path, load(folder / "study.toml"))
    db.conn.close()
    return db_path


async def start_from_dialog(pilot, app, key: str, options: str) -> None:
    """W opens the wizards list, `key` the start dialog; type the options and press enter."""
    await pilot.press("W")
    await wait_for(pilot, lambda: isinstance(app.screen, WizardsScreen))
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, StartWizardScreen))
    app.screen.query_one(Input).value = options
    await pilot.press("enter")


def test_probe_wizard_plans_waits_for_confirmation_then_runs_and_shows_the_verdict(tmp_path):
    db_path = _study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(120, 45)) as pilot:
            await start_from_dialog(pilot, app, "b", "probe-me --start 8 --cap 64 --steps 12 --skip 2 --set lr=0.1")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen), timeout=20)
            screen = app.screen
            await wait_for(pilot, lambda: screen.current is not None and screen.current.question is not None,
                           timeout=20)
            text = screen_text(app)
            assert "batch_size = 8, 16, 32, 64" in text  # what will run, before anything runs
            assert "enter runs it" in text
            db = connect(db_path)
            assert studies.by_name(db, "probe-me.probe-batch.probe") is None  # nothing registered yet

            await pilot.press("enter")  # confirm: the screen registers the stage and starts a runner
            await wait_for(pilot, lambda: screen.current.wizard.verdict is not None, timeout=90)
            text = screen_text(app)
            assert "batch size 32" in text  # the verdict in the title: the knee is at 32
            report = "\n".join(screen.current.report)
            assert "recommended batch size 32" in report
            assert "stopped (nearly) doubling throughput at 64" in report  # 32 -> 64 bought nothing
            assert screen.query_one("#wiz-plot").spec.has_data
            sub = studies.by_name(db, "probe-me.probe-batch.probe")
            assert [t.state.value for t in trials.list_for_study(db, sub.id)] == ["completed"] * 4
            table = screen.query_one("#wiz-trials", DataTable)
            assert table.row_count == 4

            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardsScreen))
            await wait_for(pilot, lambda: "batch size 32" in screen_text(app))  # the list shows the verdict
            assert app.screen.query_one(DataTable).row_count == 1
            stored = wizard_store.get_by_name(db, "probe-me.probe-batch")
            assert stored.result["recommended"] == 32

    run(scenario())


def test_a_bad_option_is_shown_in_the_dialog_and_nothing_is_stored(tmp_path):
    db_path = _study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await start_from_dialog(pilot, app, "w", "probe-me --points 5")
            error = app.screen.query_one("#add-error")
            await wait_for(pilot, lambda: str(error.render()).strip(), timeout=20)
            assert isinstance(app.screen, StartWizardScreen)  # still open, with the reason
            assert "has no parameter 'learning_rate' for the learning rate" in str(error.render())
            assert wizard_store.list_all(connect(db_path)) == []

    run(scenario())


def test_the_dialog_proposes_a_study_of_this_database():
    assert proposal("probe-batch", ["digits"]).startswith("digits ")
    assert proposal("warmup", ["digits", "tiny-transformer"]).startswith("tiny-transformer ")
    assert proposal("decide", ["digits"]).startswith("digits/1 digits/2")
    assert proposal("length", ["digits", "length-demo"]).startswith("length-demo ")


# The loss ends at |lr - 0.1| plus a little seed noise: lr 0.1 is clearly better than lr 0.5.
SEEDED_PY = """\
import argparse, json, os, random
from runner.report import Reporter

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--steps", type=int)
a = p.parse_args()
seed = json.loads(os.environ.get("PLAYBOOK_PARAMS", "{}")).get("seed", 0)
noise = random.Random(seed).random() * 0.01
report = Reporter()
for step in range(1, a.steps + 1):
    report.log(step, train_loss=1.0 / step + abs(a.lr - 0.1) + noise)
report.close()
"""

SEEDED_STUDY = """\
[study]
name = "seeded"
command = "python train.py --lr {lr} --steps {max_train_steps}"
max_train_steps = 10
objective = { metric = "train_loss", mode = "min" }
trials = 0

[params.lr]
role = "nuisance"
low = 0.01
high = 1.0
scale = "log"

[[trial]]
lr = 0.1

[[trial]]
lr = 0.5
"""


def test_decide_asks_how_complex_the_change_is_and_records_the_adopted_baseline(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "train.py").write_text(SEEDED_PY)
    (folder / "study.toml").write_text(SEEDED_STUDY)
    db_path = tmp_path / "pb" / "playbook.db"
    done = subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), "run",
                           str(folder / "study.toml")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(120, 45)) as pilot:
            await start_from_dialog(pilot, app, "d", "seeded/2 seeded/1 --seeds 3")  # baseline lr 0.5, candidate 0.1
            await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen), timeout=20)
            screen = app.screen
            await wait_for(pilot, lambda: screen.current is not None and screen.current.question is not None,
                           timeout=20)
            await pilot.press("enter")  # run the seeds
            await wait_for(pilot, lambda: screen.current.question is not None
                           and screen.current.question.key == "complexity", timeout=90)
            assert "1: none · 2: some · 3: a lot" in screen_text(app)
            await pilot.press("1")
            await wait_for(pilot, lambda: screen.current.wizard.verdict is not None, timeout=30)
            assert screen.current.wizard.verdict.startswith("adopt: seeded/1 vs seeded/2")
            assert "recorded as the new baseline of seeded" in "\n".join(screen.current.report)

    run(scenario())
    db = connect(db_path)
    baseline = wizard_store.current_baseline(db, "seeded")
    assert baseline is not None and baseline.params["lr"] == 0.1


# The training loss is 1.0 until step 2 / lr, then 0.001: with the wizard's trailing mean over 5
# points, lr 0.2 reaches a target of 0.1 at step 14 (10 + 4), lr 0.1 at 24, lr 0.05 never in 30.
LENGTH_PY = """\
import argparse
from runner.report import Reporter

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--schedule")
p.add_argument("--decay-steps", type=int)
p.add_argument("--steps", type=int)
a = p.parse_args()
report = Reporter()
drop = round(2 / a.lr)
for step in range(1, a.steps + 1):
    report.log(step, train_loss=1.0 if step < drop else 0.001, val_loss=1.0 / step + a.lr)
report.close()
"""

LENGTH_STUDY = """\
[study]
name = "fit-me"
command = "python train.py --lr {learning_rate} --schedule {schedule} --decay-steps {decay_steps} --steps {max_train_steps}"
max_train_steps = 30
objective = { metric = "val_loss", mode = "min" }

[params.learning_rate]
role = "nuisance"
low = 0.05
high = 0.2
scale = "log"

[params.schedule]
role = "fixed"
value = "linear"

[params.decay_steps]
role = "fixed"
value = 10
"""


def test_length_wizard_is_listed_starts_and_shows_the_steps_to_the_target(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "train.py").write_text(LENGTH_PY)
    (folder / "study.toml").write_text(LENGTH_STUDY)
    db_path = tmp_path / "pb" / "playbook.db"
    db = connect(db_path)
    register(db, db_path, load(folder / "study.toml"))

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.press("W")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardsScreen))
            assert "l training length" in screen_text(app)
            await start_from_dialog(pilot, app, "l", "fit-me --points 3 --target 0.1")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen), timeout=20)
            screen = app.screen
            await wait_for(pilot, lambda: screen.current is not None and screen.current.question is not None,
                           timeout=20)
            assert "learning_rate = 0.05, 0.1, 0.2" in screen_text(app)
            await pilot.press("enter")  # run the sweep
            await wait_for(pilot, lambda: screen.current.question is not None
                           and screen.current.question.key == "confirm:round-1", timeout=90)
            await pilot.press("s")  # not compute-bound: no rounds (round 2 is skipped with round 1)
            await wait_for(pilot, lambda: screen.current.wizard.verdict is not None, timeout=30)
            assert screen.current.wizard.verdict == "max_train_steps 14"
            report = "\n".join(screen.current.report)
            assert "lr 0.2 reaches training loss 0.1 first, at step 14" in report
            assert "the fastest lr is the highest of the sweep" in report
            plot = screen.query_one("#wiz-plot").spec
            by_label = {s.label: s for s in plot.series}
            assert by_label["target 0.1"].ys == (0.1, 0.1)
            assert sorted(by_label["steps to target"].xs) == [14.0, 24.0]
            assert plot.vlines[0][0] == 14.0
            assert "steps to the training-loss target" in screen_text(app)

    run(scenario())


def test_the_rank_plot_puts_each_configuration_at_its_round_1_and_round_2_objective():
    from tui.data.wizard_data import length_rank_plot

    r2 = {"round1_objective": {"learning_rate=0.1": 0.7, "learning_rate=0.01": 0.9, "learning_rate=1": None},
          "rows": [{"config": "learning_rate=0.1", "objective": 0.6}, {"config": "learning_rate=0.01", "objective": 0.5},
                   {"config": "learning_rate=1", "objective": 0.4}],
          "transfer": {"verdict": "too few", "spearman": None}}
    plot = length_rank_plot(r2)
    (points,) = plot.series
    assert list(zip(points.xs, points.ys, strict=True)) == [(0.7, 0.6), (0.9, 0.5)]  # lr 1 ran in one round only
    assert "too few" in plot.title


def test_length_wizard_rounds_from_the_tui_show_the_rank_plot(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "train.py").write_text(LENGTH_PY)
    (folder / "study.toml").write_text(LENGTH_STUDY)
    db_path = tmp_path / "pb" / "playbook.db"
    register(connect(db_path), db_path, load(folder / "study.toml"))

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(120, 50)) as pilot:
            # val_loss is best at the last step, 1 / steps + lr: the short runs rank the lrs as the long ones
            await start_from_dialog(pilot, app, "l", "fit-me --round1-steps 8 --round2-steps 30 --round1-points 3")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen), timeout=20)
            screen = app.screen

            def asks(stage: str):
                return lambda: screen.current is not None and screen.current.question is not None \
                    and screen.current.question.key == f"confirm:{stage}"

            await wait_for(pilot, asks("sweep"), timeout=20)
            await pilot.press("s")  # compute-bound: no sweep
            await wait_for(pilot, asks("round-1"), timeout=20)
            await pilot.press("enter")
            await wait_for(pilot, asks("round-2"), timeout=90)
            assert "constant phase at the peak lr grows from 4 to 26 steps" in "\n".join(screen.current.plan)
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.current.wizard.verdict is not None, timeout=90)
            assert screen.current.wizard.verdict.startswith("rounds: transferred (rho 1)")
            plot = screen.query_one("#wiz-plot").spec
            assert "Spearman rho 1" in plot.title and len(plot.series[0].xs) == 3
            assert "what transferred from short to long runs: transferred" in "\n".join(screen.current.report)

    run(scenario())
