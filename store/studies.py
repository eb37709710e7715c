"""Studies: the playbook's spreadsheet rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

from sqlite_utils import Database

from store import trials
from store.db import transaction


class StudyConflict(Exception):
    """A study of that name exists with a different configuration."""


@dataclass(frozen=True)
class Study:
    id: int
    name: str
    goal: str
    notes: str
    config_path: str
    config_text: str
    config_hash: str
    command_template: str
    objective_metric: str
    objective_mode: str
    max_train_steps: int
    run_dir: str
    reproduce_command: str
    active: int
    created_at: float

    @classmethod
    def from_row(cls, row: dict) -> Study:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class StudySummary:
    """A study with its trials counted by state.

    No best trial here: which trial is best takes judgement SQL does not have (a partial
    trial never is; runner.judging.study_outcomes, which every view uses, says which is).
    """

    study: Study
    counts: dict[str, int]


def upsert(db: Database, fields_: dict) -> Study:
    """Register a study, or return the stored one when its config is unchanged.

    Raises StudyConflict when the name exists with another config hash: the
    stored trials were produced by the old config and must not be mixed with
    trials of a new one. A stored study with no trials at all (a registration an
    older version left half done) has nothing to mix: it takes the new config.
    """
    with transaction(db):
        rows = list(db["studies"].rows_where("name = ?", [fields_["name"]]))
        if rows:
            stored = Study.from_row(rows[0])
            if stored.config_hash != fields_["config_hash"] and _count(db, stored.id) == 0:
                db["studies"].update(stored.id, fields_)
                return Study.from_row(db["studies"].get(stored.id))
            if stored.config_hash != fields_["config_hash"]:
                raise StudyConflict(
                    f"study '{stored.name}' already exists in this database with a different "
                    f"config (stored from {stored.config_path}); rename the study in "
                    f"[study].name to start a new one, its {_count(db, stored.id)} stored "
                    f"trials are kept"
                )
            return stored
        db["studies"].insert({**fields_, "created_at": time.time(), "active": 0})
        return Study.from_row(next(db["studies"].rows_where("name = ?", [fields_["name"]])))


def register(db: Database, fields_: dict, planned: list[trials.NewTrial]) -> tuple[Study, int]:
    """`upsert` the study and queue the planned trials it does not have yet, in one transaction:
    if storing the trials fails, the study is not left registered without them.

    Returns the study and how many trials were added.
    """
    with transaction(db):
        study = upsert(db, fields_)
        return study, trials.insert_new(db, study.id, planned)


def _count(db: Database, study_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM trials WHERE study_id = ?", [study_id]).fetchone()[0]


def get(db: Database, study_id: int) -> Study | None:
    rows = list(db["studies"].rows_where("id = ?", [study_id]))
    return Study.from_row(rows[0]) if rows else None


def by_name(db: Database, name: str) -> Study | None:
    rows = list(db["studies"].rows_where("name = ?", [name]))
    return Study.from_row(rows[0]) if rows else None


class UnknownStudy(LookupError):
    """No study of that name; the message names the ones there are."""


def require(db: Database, name: str) -> Study:
    """The study of that name, or UnknownStudy saying which studies there are."""
    study = by_name(db, name)
    if study is None:
        raise UnknownStudy(f"no study named {name!r} in this database (studies: {known_names(db)})")
    return study


def known_names(db: Database) -> str:
    """The studies' names for an error message: 'a, b' or 'none yet'."""
    return ", ".join(s.name for s in list_all(db)) or "none yet"


def list_all(db: Database) -> list[Study]:
    return [Study.from_row(r) for r in db["studies"].rows_where(order_by="id")]


def set_active(db: Database, study_id: int, active: bool) -> None:
    """An active study has its queued trials scheduled by the runner."""
    with transaction(db):
        db.execute("UPDATE studies SET active = ? WHERE id = ?", [int(active), study_id])


def active_without_work(db: Database) -> list[int]:
    """Launched studies with nothing left queued, starting or running."""
    return [r[0] for r in db.execute(
        "SELECT id FROM studies s WHERE active = 1 AND NOT EXISTS (SELECT 1 FROM trials t "
        "WHERE t.study_id = s.id AND t.state IN ('queued', 'starting', 'running'))"
    )]


def set_notes(db: Database, study_id: int, notes: str) -> None:
    with transaction(db):
        db.execute("UPDATE studies SET notes = ? WHERE id = ?", [notes, study_id])


def summarize(db: Database, study: Study) -> StudySummary:
    return StudySummary(study=study, counts=trials.state_counts(db, study.id))
