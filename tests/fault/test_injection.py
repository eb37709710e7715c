"""Hostile parameter values and metric names: literal argv, literal text in the CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from fault_helpers import SCRIPTS, run_cli, study_trials
from textual.widgets import Select, Static

import store
from runner.launch import register
from runner.spec import load
from runner.text import printable, printable_line
from store import trials
from store.metrics import TrialUpdate, write_updates
from store.trials import TrialState
from tui.app import make_app
from tui.widgets.plot import PlotWidget

NASTY_VALUES = ["$(touch pwned1)", "`touch pwned2`", "a\nb; touch pwned3", "it's \"quoted\"",
                "; touch pwned4 #", "--steps=0", "*", "$HOME"]
EVIL_NAME = "loss\x1b[31m[bold red]EVIL[/bold red]\x1b]0;title\x07"


@pytest.mark.timeout(60)
def test_shell_metacharacters_arrive_as_literal_argv(tmp_path, db_path):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(SCRIPTS / "faulty.py", folder / "faulty.py")
    trials = "".join(f"\n[[trial]]\nv = {json.dumps(v)}\n" for v in NASTY_VALUES)
    (folder / "study.toml").write_text(
        '[study]\nname = "inj"\ncommand = "python faulty.py argv --tag {v} --tag={v}"\n'
        'max_train_steps = 1\nobjective = { metric = "x", mode = "min" }\ntrials = 0\n'
        f'[params.v]\nrole = "nuisance"\nvalues = {json.dumps(NASTY_VALUES)}\n{trials}')
    done = run_cli(db_path, "run", str(folder / "study.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    for t in study_trials(db_path, "inj"):
        argv = json.loads((Path(t.trial_dir) / "argv.json").read_text())
        assert argv == ["argv", "--tag", t.params["v"], f"--tag={t.params['v']}"]
    assert not list(tmp_path.rglob("pwned*")) and not list(Path.cwd().glob("pwned*"))


@pytest.mark.timeout(60)
def test_hostile_metric_names_are_printed_literally(tmp_path, db_path):
    folder = tmp_path / "study"
    folder.mkdir()
    script = folder / "report.py"
    script.write_text(
        "import json, os\n"
        "with open(os.environ['PLAYBOOK_METRICS_FILE'], 'a') as f:\n"
        f"    for s in range(3): f.write(json.dumps({{'step': s, 'm': {{{EVIL_NAME!r}: 1.0 / (s + 1)}}}}) + '\\n')\n")
    (folder / "study.toml").write_text(
        '[study]\nname = "evil"\ncommand = "python report.py"\nmax_train_steps = 3\n'
        f"objective = {{ metric = {json.dumps(EVIL_NAME)}, mode = \"min\" }}\ntrials = 1\n")
    done = run_cli(db_path, "run", str(folder / "study.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(db_path, "evil")
    assert trial.best_value == pytest.approx(1 / 3)  # the name reached the store intact
    for args in (["status"], ["status", "evil"], ["analyze", "evil"]):
        out = run_cli(db_path, *args)
        assert out.returncode == 0, out.stderr
        shown = out.stdout + out.stderr
        assert "\x1b" not in shown and "\x07" not in shown, (args, shown)
        assert "[bold red]EVIL" in shown, (args, shown)  # markup shown, not applied (80 columns may wrap its tail)


OSC52_NAME = "loss\x1b]52;c;aGk=\x07\u202eevil\nsecond line\x9b31m"  # clipboard write, RLO, newline, C1 CSI


def _unsafe_in(text: str) -> list[str]:
    return [c for c in ("\x1b", "\x07", "\u202e", "\x9b") if c in text]


@pytest.mark.timeout(60)
def test_run_and_watch_progress_lines_escape_the_objective_name(tmp_path, db_path):
    """`run` and `watch` print the objective's name in every progress line: as one escaped line."""
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "report.py").write_text(
        "import json, os\n"
        "with open(os.environ['PLAYBOOK_METRICS_FILE'], 'a') as f:\n"
        f"    for s in range(3): f.write(json.dumps({{'step': s, 'm': {{{OSC52_NAME!r}: 1.0 / (s + 1)}}}}) + '\\n')\n")
    (folder / "study.toml").write_text(
        '[study]\nname = "osc"\ncommand = "python report.py"\nmax_train_steps = 3\n'
        f"objective = {{ metric = {json.dumps(OSC52_NAME)}, mode = \"min\" }}\ntrials = 1\n")
    done = run_cli(db_path, "run", str(folder / "study.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    watched = run_cli(db_path, "watch", "osc")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    for what, out in (("run", done.stdout + done.stderr), ("watch", watched.stdout + watched.stderr)):
        assert not _unsafe_in(out), (what, out)
        (final,) = [line for line in out.splitlines() if line.startswith("[osc] 1/1 finished")]
        assert final.endswith(f"| best {printable_line(OSC52_NAME)} 0.333333 (trial 1)"), (what, final)


# The TUI side: tests/tui/test_app.py covers hostile parameter values and failure details; these
# are hostile metric NAMES, which reach column titles, plot titles and legends, and the metric list.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))
from tui_helpers import EVIL, open_study, open_trial, run, screen_text, start, wait_for  # noqa: E402

TUI_EVIL_NAME = "loss\x1b[31m[bold red]EVIL[/bold red]\x1b]52;c;aGk=\x07"  # markup, SGR, OSC 52 clipboard
OTHER_NAME = "m" + EVIL
TUI_SIZE = (160, 45)  # wide enough that the long escaped names are not cut off


def evil_metric_study(tmp_path: Path, evil_name: str = TUI_EVIL_NAME,
                      bad: TrialUpdate | None = None) -> tuple[Path, int]:
    """One completed trial that reported train_loss and two hostile metric names (one the objective);
    `bad`: dropped lines to record for it too."""
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.toml").write_text(
        '[study]\nname = "evil"\ncommand = "python report.py"\nmax_train_steps = 3\n'
        f"objective = {{ metric = {json.dumps(evil_name)}, mode = \"min\" }}\ntrials = 1\n")
    db_path = tmp_path / "db" / "playbook.db"
    db = store.connect(db_path)
    study, added = register(db, db_path, load(folder / "study.toml"))
    (trial,) = trials.list_for_study(db, study.id)
    start(db, trial.id)
    rows = [(trial.id, name, s, v / (s + 1), 1_700_000_000.0 + s)
            for s in range(3) for name, v in (("train_loss", 1.0), (evil_name, 0.5), (OTHER_NAME, 2.0))]
    write_updates(db, [TrialUpdate(trial.id, rows=rows, last_step=2, best=(0.5 / 3, 2))], {trial.id: "min"})
    if bad is not None:
        write_updates(db, [TrialUpdate(trial.id, bad_lines=bad.bad_lines, bad_sample=bad.bad_sample)], {})
    assert trials.finish(db, trial.id, TrialState.COMPLETED, feasible=1)
    db.conn.close()
    return db_path, trial.id


def assert_literal(text: str, where: str, *names: str) -> None:
    """Each name shown with its markup as text and its control characters as visible escapes."""
    assert "\x1b" not in text and "\x07" not in text, (where, text)
    for name in names:
        assert printable(name) in text, (where, name, text)


@pytest.mark.timeout(60)
def test_hostile_metric_names_are_shown_literally_in_the_tui(tmp_path):
    db_path, trial_id = evil_metric_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=TUI_SIZE) as pilot:
            table = await open_study(pilot, app, rows=1)
            titles = [c.label.plain for c in table.columns.values()]
            assert f"best {printable(TUI_EVIL_NAME)}" in titles, titles
            plot = app.screen.query_one("#study-plot", PlotWidget)
            await wait_for(pilot, lambda: plot.drawn and "vs step" in plot.render().plain)
            header = plot.render().plain.splitlines()[0]  # title and legend
            assert_literal(header, "study plot header", TUI_EVIL_NAME)
            assert f"#1 {printable(TUI_EVIL_NAME)}" in header, header  # the legend entry
            assert_literal(screen_text(app), "study screen")

            screen = await open_trial(pilot, app, table, trial_id)
            select = screen.query_one("#metric", Select)
            shown = [str(prompt) for prompt, _ in select._options if str(prompt)]  # less the blank one
            assert sorted(shown) == sorted(printable(n) for n in (TUI_EVIL_NAME, OTHER_NAME, "train_loss"))
            assert_literal(str(screen.query_one("#overview-text", Static).render()), "overview", TUI_EVIL_NAME)
            await pilot.press("2")  # the curves tab
            curve = screen.query_one("#metric-plot", PlotWidget)
            await wait_for(pilot, lambda: curve.drawn and "vs step" in curve.render().plain)
            assert_literal(curve.render().plain.splitlines()[0], "curves header", TUI_EVIL_NAME)
            shown = screen_text(app)
            assert_literal(shown, "trial screen")
            assert "[bold red]EVIL[/bold red]" in shown  # the chosen metric, in the metric list's box

    run(scenario())


BIDI_NAME = "loss\u202eevil\nsecond"  # a right-to-left override and a newline


@pytest.mark.timeout(60)
def test_a_right_to_left_override_and_a_newline_in_a_name_are_escaped_in_the_tui(tmp_path):
    """Both reorder or break the line they sit in (a column title, a legend, the trial's overview);
    the overview also says how many metric lines were dropped, with the first one, escaped too."""
    sample = 'step is not a whole number from 0 to 2**63-1: {"step": 9223372036854775808, "m": {"a\u202eb": 1}}'
    db_path, trial_id = evil_metric_study(tmp_path, BIDI_NAME, TrialUpdate(0, bad_lines=3, bad_sample=sample))

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=TUI_SIZE) as pilot:
            table = await open_study(pilot, app, rows=1)
            titles = [c.label.plain for c in table.columns.values()]
            assert f"best {printable_line(BIDI_NAME)}" in titles, titles
            plot = app.screen.query_one("#study-plot", PlotWidget)
            await wait_for(pilot, lambda: plot.drawn and "vs step" in plot.render().plain)
            header = plot.render().plain.splitlines()[0]
            assert f"#1 {printable_line(BIDI_NAME)}" in header, header
            screen = await open_trial(pilot, app, table, trial_id)
            overview = str(screen.query_one("#overview-text", Static).render())
            assert "3 metric line(s) dropped; the first: " + printable_line(sample) in overview, overview
            shown = [str(prompt) for prompt, _ in screen.query_one("#metric", Select)._options if str(prompt)]
            assert printable_line(BIDI_NAME) in shown, shown
            for where, text in (("overview", overview), ("trial screen", screen_text(app))):
                assert "\u202e" not in text and "evil\nsecond" not in text, (where, text)

    run(scenario())
