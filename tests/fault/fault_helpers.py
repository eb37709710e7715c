"""Helpers for the fault tests: study files that run tests/fault/scripts/faulty.py, the real CLI
in a subprocess, and waiting on the real database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import store
from store import metrics, studies, trials

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).resolve().parents[2]


def toml_value(value) -> str:
    """A TOML literal for a str, int or float (json's string escapes are valid TOML)."""
    return json.dumps(value)


def study_file(folder: Path, trial_params: list[dict], *, name: str = "f", steps: int = 20,
               concurrency: int = 4, extra: str = "", objective: str = "train_loss",
               command: str = "python faulty.py {mode} --steps {max_train_steps} --sleep {sleep}") -> Path:
    """A study of manual trials only, each a dict with `mode` and `sleep` (and any `tag`)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCRIPTS / "faulty.py", folder / "faulty.py")
    names = sorted({k for p in trial_params for k in p})
    lines = [
        "[study]", f"name = {toml_value(name)}", f"command = {toml_value(command)}",
        f"max_train_steps = {steps}", f"objective = {{ metric = {toml_value(objective)}, mode = \"min\" }}",
        "trials = 0", f"concurrency = {concurrency}", "timeout = 120", extra, "",
    ]
    for param in names:
        values = sorted({toml_value(p[param]) for p in trial_params})
        lines += [f"[params.{param}]", 'role = "nuisance"', f"values = [{', '.join(values)}]"]
        if "{" + param + "}" not in command:
            lines.append("in_command = false")  # a label for the test, read from params.json
        lines.append("")
    for p in trial_params:
        lines.append("[[trial]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in p.items()]
        lines.append("")
    path = folder / "study.toml"
    path.write_text("\n".join(lines))
    return path


def runner_argv(db_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "runner", "--db", str(db_path), *args]


def run_cli(db_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, from the repository root."""
    return subprocess.run(runner_argv(db_path, *args), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def start_runner(db_path: Path, study: Path, *extra: str, log: Path | None = None) -> subprocess.Popen:
    """`playbook-runner run STUDY` in the background (output to `log`, else discarded)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(runner_argv(db_path, "run", str(study), *extra), cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log:
            out.close()


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.1):
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def read_db(db_path: Path, fn: Callable):
    """Run `fn(db)` on a fresh connection (closed after), None while the file does not exist."""
    if not db_path.exists():
        return None
    db = store.connect(db_path)
    try:
        return fn(db)
    finally:
        db.conn.close()


def study_trials(db_path: Path, name: str = "f") -> list[trials.Trial]:
    def get(db):
        study = studies.by_name(db, name)
        return trials.list_for_study(db, study.id) if study else []
    return read_db(db_path, get) or []


def file_points(metrics_path: Path) -> set[tuple[str, int, float]]:
    """Every (name, step, value) a Reporter-written metrics.jsonl holds (complete lines only)."""
    points = set()
    if not metrics_path.exists():
        return points
    for line in metrics_path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        for name, value in record.get("m", {}).items():
            points.add((name, record["step"], value))
    return points


def stored_points(db_path: Path, trial_id: int) -> set[tuple[str, int, float]]:
    def get(db):
        return {(name, step, value) for _, name, step, value, _ in metrics.points(db, trial_id)}
    return read_db(db_path, get)


def pid_alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
