"""Versions of a study through the real CLI: a changed file is the next version, the unchanged one resumes."""

from __future__ import annotations

import json
import sqlite3

import store
from store import studies, trials
from store.schema import MIGRATIONS
from tests.e2e.test_runner_e2e import runner_cli, study_text


def _status(db_path, *study: str) -> dict:
    done = runner_cli(db_path, "status", *study, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_changed_file_runs_as_the_next_version_and_the_first_keeps_its_trials(make_study, db_path):
    path = make_study(study_text(trials=1, steps=5))
    first = runner_cli(db_path, "run", str(path))
    assert first.returncode == 0 and "[s] 1/1 finished: 1 completed" in first.stdout, first.stdout + first.stderr

    path.write_text(study_text(trials=2, steps=6))  # a changed budget: not the same study any more
    second = runner_cli(db_path, "run", str(path))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "changed since s was registered: it is s v2, a new version (s keeps its trials; address it as s@1)" \
        in second.stdout
    assert "[s v2] 2/2 finished: 2 completed" in second.stdout

    listed = _status(db_path)["studies"]
    assert [(s["label"], s["version"], s["previous"], s["counts"]["completed"]) for s in listed] == \
        [("s", 1, None, 1), ("s v2", 2, "s@1", 2)]
    v1_dir, v2_dir = (s["trials"][0]["trial_dir"] for s in listed)
    assert v1_dir != v2_dir and "/runs/s/v2/" in v2_dir  # each version's trials in their own folders

    assert _status(db_path, "s")["studies"][0]["label"] == "s v2"  # NAME: the latest version
    text = runner_cli(db_path, "status").stdout.splitlines()
    assert any(line.startswith("s v2 (after s@1)  [") for line in text), text  # its header, and the link back
    assert _status(db_path, "s@1")["studies"][0]["max_train_steps"] == 5  # NAME@N: that version
    exported = runner_cli(db_path, "export", "s@1", "--format", "json")
    assert [r["study"] for r in json.loads(exported.stdout)] == ["s"]
    analyzed = runner_cli(db_path, "analyze", "s@2", "--json")
    assert json.loads(analyzed.stdout)["study"] == "s v2" and json.loads(analyzed.stdout)["n_trials"] == 2

    missing = runner_cli(db_path, "status", "s@3")
    assert missing.returncode == 2
    assert "study 's' has no version '3': NAME@N names version N, NAME the latest (versions: s@1, s@2)" \
        in missing.stderr

    again = runner_cli(db_path, "run", str(path))  # unchanged: resumes v2, adds nothing
    assert "study s v2: 2 trials (0 new)" in again.stdout and "new version" not in again.stdout
    db = store.connect(db_path)
    assert [s.version for s in studies.list_all(db)] == [1, 2]


def test_a_database_from_before_versions_runs_its_study_on(make_study, db_path, tmp_path):
    """An old database (migrations up to 0007) keeps its study and trials, and a changed file adds v2."""
    path = make_study(study_text(trials=1, steps=5))
    assert runner_cli(db_path, "run", str(path)).returncode == 0
    # Rebuild that database as the previous release left it: the same rows, the old studies table.
    old_path = tmp_path / "old" / "playbook.db"
    old_path.parent.mkdir()
    new = sqlite3.connect(db_path)
    old = store.connect(old_path, migrate=False)
    MIGRATIONS.apply(old, stop_before="0009_study_versions")
    for table, columns in (("studies", "id, name, goal, notes, config_path, config_text, config_hash, "
                                       "command_template, objective_metric, objective_mode, max_train_steps, "
                                       "run_dir, reproduce_command, active, created_at"),
                           ("trials", "*"), ("params", "*"), ("metric_blocks", "*")):
        rows = new.execute(f"SELECT {columns} FROM {table}").fetchall()
        marks = ", ".join("?" * len(rows[0]))
        old.conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    old.conn.close()
    new.close()

    listed = _status(old_path)["studies"]
    assert [(s["name"], s["version"], s["counts"]["completed"]) for s in listed] == [("s", 1, 1)]
    path.write_text(study_text(trials=2, steps=5))
    second = runner_cli(old_path, "run", str(path))
    assert "[s v2] 2/2 finished: 2 completed" in second.stdout, second.stdout + second.stderr
    db = store.connect(old_path)
    assert [(s.version, len(trials.list_for_study(db, s.id))) for s in studies.list_all(db)] == [(1, 1), (2, 2)]
