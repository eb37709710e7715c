"""The shim that wraps every trial starts from the standard library alone: nothing in the study
folder (where trials run) can shadow a module it imports, and it skips site's start-up cost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TRIAL = """\
import os
with open(os.environ["PLAYBOOK_METRICS_FILE"], "a") as f:  # no imports that the folder could shadow
    f.write('{"step": 0, "m": {"loss": 0.5}}\\n')
"""


@pytest.mark.timeout(180)
def test_a_study_folder_with_a_module_named_like_the_stdlib_still_runs_its_trials(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "train.py").write_text(TRIAL)
    for shadowed in ("resource.py", "json.py"):  # a user's own helpers, named like stdlib modules
        (folder / shadowed).write_text("raise ImportError('the study folder shadowed the stdlib')\n")
    (folder / "study.toml").write_text(textwrap.dedent("""\
        [study]
        name = "shadow"
        goal = "Does a json.py next to the script break the trial's wrapper?"
        command = "python train.py --lr {lr}"
        max_train_steps = 1
        objective = { metric = "loss", mode = "min" }
        trials = 1

        [params.lr]
        role = "nuisance"
        low = 1e-4
        high = 1.0
        scale = "log"
        """))
    db = tmp_path / "playbook.db"
    done = subprocess.run([sys.executable, "-m", "runner", "--db", str(db), "run", str(folder / "study.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=150)
    conn = sqlite3.connect(db)
    (state, trial_dir), = conn.execute("SELECT state, trial_dir FROM trials").fetchall()
    conn.close()
    stderr = (Path(trial_dir) / "stderr.log").read_text()
    assert (done.returncode, state) == (0, "completed"), done.stdout + done.stderr + stderr
    assert "shadowed" not in stderr
