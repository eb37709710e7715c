"""Read-only commands import only what they need: no scipy (the search and the playbook's checks),
no runner.service (the scheduler), no wizards. A user feels these as the command's start-up time."""

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
HEAVY = ("scipy", "runner.service", "runner.launch", "runner.search", "runner.wizards")


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
