"""Read-only commands import only what they need: no scipy (the search and the playbook's checks),
no numpy (sqlite-utils would import it), no rich (status prints plain text), no runner.service
(the scheduler), no wizards. A user feels these as the command's start-up time. And the runner
itself loads scipy only when it uses it (a search, a check), not when it starts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.launch import register
from runner.spec import load
from store import connect

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("scipy", "numpy", "rich", "runner.service", "runner.launch", "runner.search", "runner.wizards")


def small_study(tmp_path: Path) -> Path:
    spec = tmp_path / "study.toml"
    spec.write_text(textwrap.dedent("""\
        [study]
        name = "imports"
        goal = "Which modules does a read-only command load?"
        command = "python train.py --lr {lr}"
        max_train_steps = 10
        objective = { metric = "val_loss", mode = "min" }
        trials = 3

        [params.lr]
        role = "nuisance"
        low = 1e-4
        high = 1.0
        scale = "log"
        """))
    db_path = tmp_path / "playbook.db"
    db = connect(db_path)
    register(db, db_path, load(spec))
    db.conn.close()
    return db_path


@pytest.mark.parametrize("argv", [["status"], ["status", "imports", "--json"],
                                  ["export", "imports", "--format", "csv"]])
def test_read_only_commands_do_not_import_the_scheduler_or_scipy(tmp_path, argv):
    db_path = small_study(tmp_path)
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from runner.cli import main
        code = main(["--db", {str(db_path)!r}, *{argv!r}])
        print(json.dumps({{"code": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}), file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}, done.stderr


def test_the_runner_and_the_search_import_scipy_only_when_they_use_it(tmp_path):
    """runner.service reaches runner.search and the playbook's boundary check; neither loads scipy
    on import (it costs about 0.3 s of every runner's and every `run`'s start)."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        import runner.service, runner.search, runner.bayes, runner.playbook.boundary, runner.launch
        print(json.dumps(sorted(m for m in ("scipy", "optuna") if m in sys.modules)))
        from runner.playbook.boundary import crowd_p
        assert 0 < crowd_p(3, 5) <= 1  # and scipy is there when it is used
        print(json.dumps("scipy" in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [[], True]
