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
    version: int = 1  # the name's versions count from 1: a changed file under the name is the next one
    previous_id: int | None = None  # the version before this one
    refines: str = ""  # the study this one refines, as its file names it (`playbook-runner refine` writes it)

    @classmethod
    def from_row(cls, row: dict) -> Study:
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})

    @property
    def label(self) -> str:
        """How every view names it: 'tiny' for a first version, 'tiny v2' for a later one."""
        return version_label(self.name, self.version)

    @property
    def address(self) -> str:
        """How a command addresses this very version, whatever versions come later: 'tiny@2'."""
        return f"{self.name}{VERSION_SEP}{self.version}"


VERSION_SEP = "@"  # NAME@N addresses version N (a study name cannot hold '@': runner.spec)


def version_label(name: str, version: int) -> str:
    return name if version == 1 else f"{name} v{version}"


@dataclass(frozen=True)
class StudySummary:
    """A study with its trials counted by state.

    No best trial here: which trial is best takes judgement SQL does not have (a partial
    trial never is; runner.judging.study_outcomes, which every view uses, says which is).
    """

    study: Study
    counts: dict[str, int]


def upsert(db: Database, fields_: dict) -> Study:
    """Register a study, or return the stored version whose config is the same.

    A changed config under a stored name becomes the name's next version (its own row, linked
    to the latest by previous_id): the stored trials were produced by the old config and are
    never mixed with trials of a new one, and nothing stored is lost. The latest version with
    no trials at all (a registration left half done) has nothing to mix: it takes the new config.
    `fields_["version"]`, when given, is the version the caller planned for (launch.register
    names the trial folders after it): another registration in between raises StudyConflict.
    """
    with transaction(db):
        stored = versions(db, fields_["name"])
        version, reuse = _decide(db, stored, fields_["config_hash"])
        planned = fields_.get("version", version)
        if planned != version:
            raise StudyConflict(f"study '{fields_['name']}' got a version {version} while this one was being "
                                f"registered as version {planned}; run it again")
        row = {**fields_, "version": version}
        if reuse is not None and reuse.config_hash == fields_["config_hash"]:
            return reuse
        if reuse is not None:  # the latest version, without trials: it takes the new config
            db["studies"].update(reuse.id, {k: v for k, v in row.items() if k != "previous_id"})
            return get(db, reuse.id)
        previous = stored[-1].id if stored else None
        study_id = db["studies"].insert({**row, "previous_id": previous, "created_at": time.time(),
                                         "active": 0}).last_pk
        return get(db, study_id)


def next_version(db: Database, name: str, config_hash: str) -> int:
    """The version a file of this name and config hash is registered as (see upsert)."""
    return _decide(db, versions(db, name), config_hash)[0]


def _decide(db: Database, stored: list[Study], config_hash: str) -> tuple[int, Study | None]:
    """(version, the stored row it is) for a config: the version with that config; else the latest
    one if it has no trials; else a new version after the latest (None: a new row)."""
    same = [s for s in stored if s.config_hash == config_hash]
    if same:
        return same[-1].version, same[-1]
    if stored and _count(db, stored[-1].id) == 0:
        return stored[-1].version, stored[-1]
    return (stored[-1].version + 1 if stored else 1), None


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
    """The latest version of the study of that name."""
    rows = list(db["studies"].rows_where("name = ?", [name], order_by="version DESC", limit=1))
    return Study.from_row(rows[0]) if rows else None


def versions(db: Database, name: str) -> list[Study]:
    """Every version of the study of that name, oldest first."""
    return [Study.from_row(r) for r in db["studies"].rows_where("name = ?", [name], order_by="version")]


def distinct_label(db: Database, study: Study) -> str:
    """Its label, 'tiny v1' rather than 'tiny' when later versions exist (two versions side by side)."""
    latest = by_name(db, study.name)
    several = latest is not None and latest.version > 1
    return f"{study.name} v{study.version}" if several else study.label


class UnknownStudy(LookupError):
    """No study of that name; the message names the ones there are."""


def require(db: Database, text: str) -> Study:
    """The study `text` names, or UnknownStudy saying which studies there are.

    NAME is its latest version, NAME@N its version N (what Study.address writes)."""
    name, sep, number = text.rpartition(VERSION_SEP)
    if not sep:
        study = by_name(db, text)
        if study is None:
            raise UnknownStudy(f"no study named {text!r} in this database (studies: {known_names(db)})")
        return study
    stored = versions(db, name)
    if not stored:
        raise UnknownStudy(f"no study named {name!r} in this database (studies: {known_names(db)})")
    if not number.isdigit() or not (study := next((s for s in stored if s.version == int(number)), None)):
        have = ", ".join(s.address for s in stored)
        raise UnknownStudy(f"study {name!r} has no version {number!r}: NAME@N names version N, "
                           f"NAME the latest (versions: {have})")
    return study


def known_names(db: Database) -> str:
    """The studies' names for an error message: 'a, b@1, b' or 'none yet' (a name with versions lists
    its earlier ones as NAME@N, the latest as NAME)."""
    rows = list_all(db)
    latest = {s.name: s.version for s in rows}
    return ", ".join(s.name if s.version == latest[s.name] else s.address for s in rows) or "none yet"


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
