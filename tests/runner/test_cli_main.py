"""playbook-runner's entry point as a shell user meets it, through real subprocesses: which database it
uses and why, a missing one left uncreated, and a pipe closed early by `head` ending quietly."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from runner.launch import register
from runner.spec import load
from store import connect

RUNNER = [sys.executable, "-c", "import sys, runner.cli; sys.exit(runner.cli.main())"]
REPO = Path(__file__).resolve().parents[2]

STUDY = """\
[study]
name = "big"
goal = "many queued trials, so that the output overflows a pipe's buffer"
command = "python -c pass --lr {lr} --width {width}"
max_train_steps = 5
objective = { metric = "val_loss", mode = "min" }
trials = 200
concurrency = 2
timeout = 60

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"

[params.width]
role = "scientific"
values = [4, 8]
"""


def big_store(folder: Path) -> Path:
    """400 queued trials: `status --json` prints about 300 KB."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.toml").write_text(STUDY)
    db_path = folder / ".playbook" / "playbook.db"
    db = connect(db_path)
    register(db, db_path, load(folder / "study.toml"))
    db.conn.close()
    return db_path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PLAYBOOK_DB"}
    env["PYTHONPATH"] = str(REPO)
    return {**env, **extra}


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNNER, *args], capture_output=True, text=True, cwd=cwd,
                          env=env or clean_env(), timeout=120)


def test_head_closing_the_pipe_ends_quietly(tmp_path):
    db_path = big_store(tmp_path / "proj")
    for command in ("status --json", "analyze big --json"):
        line = f"{shlex.join(RUNNER)} --db {shlex.quote(str(db_path))} {command} | head -1"
        result = subprocess.run(["bash", "-c", f"{line}; echo \"status=${{PIPESTATUS[0]}}\" >&2"],
                                capture_output=True, text=True, env=clean_env(), timeout=120)
        assert result.stdout == "{\n", command
        errors = [ln for ln in result.stderr.splitlines() if not ln.startswith("database: ")]
        assert errors in (["status=0"], ["status=141"]), (command, result.stderr)


def test_a_reader_gone_before_any_output_is_exit_141_without_traceback(tmp_path):
    db_path = big_store(tmp_path / "proj")
    proc = subprocess.Popen([*RUNNER, "--db", str(db_path), "analyze", "big", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    proc.stdout.close()  # the reader is gone before the first write
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_read_only_commands_on_a_missing_database_create_nothing(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    for command in (["status"], ["status", "--json"], ["analyze", "big"], ["export", "big"], ["watch", "big"]):
        result = cli("--db", str(missing), *command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stdout == ""
        assert f"error: no database at {missing} (--db)" in result.stderr
        assert not (tmp_path / "no").exists(), command


def test_the_database_is_found_like_git_finds_its_repository(tmp_path):
    db_path = big_store(tmp_path / "proj")
    deep = tmp_path / "proj" / "src" / "models"
    deep.mkdir(parents=True)
    result = cli("status", cwd=deep)
    assert result.returncode == 0, result.stderr
    assert "big" in result.stdout
    assert f"database: {db_path} (found in {tmp_path / 'proj'})" in result.stderr

    # $PLAYBOOK_DB is an explicit choice: it wins over what the walk would find.
    other = tmp_path / "elsewhere.db"
    result = cli("status", cwd=deep, env=clean_env(PLAYBOOK_DB=str(other)))
    assert result.returncode == 2 and f"no database at {other} ($PLAYBOOK_DB)" in result.stderr
    assert not other.exists()

    # Nothing found anywhere above: the local default, said so, and still not created by a read.
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    result = cli("status", cwd=lonely)
    assert result.returncode == 2
    assert f"database: {lonely / '.playbook' / 'playbook.db'} (default: none found here or above)" in result.stderr
    assert not (lonely / ".playbook").exists()


def test_an_error_naming_a_hostile_file_shows_its_escapes_and_never_obeys_them(tmp_path):
    # A study file whose name carries a terminal escape (ESC ] 0; sets the window title, ESC [2J
    # clears the screen): the error line names the file with the escape shown as \x1b, one line each.
    bad = tmp_path / "study\x1b[2J\x1b]0;owned\x07.toml"
    bad.write_text('[study]\nname = "x"\n')
    done = cli("--db", str(tmp_path / "p.db"), "run", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "study\\x1b[2J\\x1b]0;owned\\x07.toml" in done.stderr
