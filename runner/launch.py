"""Putting a study into the store: register it and queue the trials its file asks for."""

from __future__ import annotations

import shlex
from pathlib import Path

from sqlite_utils import Database

from runner.plan import make_trial, new_trials
from runner.search import nuisance_samples, resolve, scientific_grid
from runner.spec import SpecError, StudySpec
from runner.study_data import stored_spec
from store import studies, trials
from store.studies import Study


def run_dir(db_path: str | Path, study_name: str, version: int = 1) -> Path:
    """Trial folders live beside the database: <db dir>/runs/<study>/trial-NNNN, and a later
    version's in <db dir>/runs/<study>/v<N>/trial-NNNN."""
    folder = Path(db_path).resolve().parent / "runs" / study_name
    return folder if version == 1 else folder / f"v{version}"


def reproduce_command(spec: StudySpec) -> str:
    return f"playbook-runner run {shlex.quote(str(spec.path))}"


def register(db: Database, db_path: str | Path, spec: StudySpec) -> tuple[Study, int]:
    """Store the study (or find it unchanged) and queue its missing trials.

    Returns the study and how many trials were added. Re-registering the same
    file adds nothing: trial numbers are deterministic. A changed file under a
    stored name is registered as that name's next version (store.studies.upsert).
    """
    version = studies.next_version(db, spec.name, spec.config_hash)
    folder = run_dir(db_path, spec.name, version)
    planned = new_trials(spec, folder)  # before anything is stored: a planning error stores nothing
    return studies.register(
        db,
        {
            "name": spec.name,
            "version": version,
            "refines": spec.refines,
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
        planned,
    )


def add_trials(db: Database, study: Study, samples: int) -> int:
    """Extend a study by `samples` more quasi-random nuisance points (each crossed with every
    scientific value); returns how many trials were queued.

    The Halton sequence continues where the study stopped: the points already run
    are a prefix of the longer sequence, so the space keeps its even coverage.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    spec = stored_spec(study)
    if spec.search.is_bayes:  # its model asks for points up to study.trials; Halton points would eat that budget
        raise SpecError(spec.path, ['study.search: a "bayes" study asks for its own points up to study.trials; '
                                    "add-trials extends quasi-random studies (raise trials in a new study file)"])
    grid = scientific_grid(spec)
    searched = sum(1 for t in trials.list_for_study(db, study.id) if t.source == "search")
    done_samples = searched // max(len(grid), 1)
    fresh = nuisance_samples(spec, done_samples + samples)[done_samples:]
    first = trials.next_number(db, study.id)
    new = [
        make_trial(spec, study.run_dir, first + i, "search", values)
        for i, values in enumerate(resolve(spec, {**sample, **sci}) for sample in fresh for sci in grid)
    ]
    return trials.insert_new(db, study.id, new)
