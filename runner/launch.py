"""Putting a study into the store: register it and queue the trials its file asks for."""

from __future__ import annotations

import shlex
from pathlib import Path

from sqlite_utils import Database

from runner.plan import new_trials
from runner.spec import StudySpec
from store import studies, trials
from store.studies import Study


def run_dir(db_path: str | Path, study_name: str) -> Path:
    """Trial folders live beside the database: <db dir>/runs/<study>/trial-NNNN."""
    return Path(db_path).resolve().parent / "runs" / study_name


def reproduce_command(spec: StudySpec) -> str:
    return f"playbook-runner run {shlex.quote(str(spec.path))}"


def register(db: Database, db_path: str | Path, spec: StudySpec) -> tuple[Study, int]:
    """Store the study (or find it unchanged) and queue its missing trials.

    Returns the study and how many trials were added. Re-registering the same
    file adds nothing: trial numbers are deterministic. Raises
    store.studies.StudyConflict if the name is taken by a different config.
    """
    folder = run_dir(db_path, spec.name)
    study = studies.upsert(
        db,
        {
            "name": spec.name,
            "goal": spec.goal,
            "notes": spec.notes,
            "config_path": str(spec.path),
            "config_text": spec.config_text,
            "config_hash": spec.config_hash,
            "command_template": spec.command,
            "objective_metric": spec.objective_metric,
            "objective_mode": spec.objective_mode,
            "max_train_steps": spec.max_train_steps,
            "run_dir": str(folder),
            "reproduce_command": reproduce_command(spec),
        },
    )
    added = trials.insert_new(db, study.id, new_trials(spec, folder))
    return study, added
