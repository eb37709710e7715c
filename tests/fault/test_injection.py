"""Hostile parameter values and metric names: literal argv, literal text in the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fault_helpers import SCRIPTS, run_cli, study_trials

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
