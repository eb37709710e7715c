"""Study files from the TUI: check one, register it (a new study or a name's next version), refine
a study into a new file. No Textual here: the screens call these from worker threads, each with
its own short-lived connection, and show what they return."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from runner.text import printable
from store import connect, studies


@contextlib.contextmanager
def _open(db_path: Path) -> Iterator[Database]:
    db = connect(db_path)
    try:
        yield db
    finally:
        db.conn.close()


def check_study_file(path: Path) -> str | None:
    """Why the file cannot be registered (one problem a line), or None when it validates."""
    from runner.plan import new_trials
    from runner.spec import SpecError, load

    if path.is_dir():
        return f"{path}: a folder; choose a study file (*.toml) in it"
    if not path.is_file():
        return f"{path}: no such file"
    try:
        spec = load(path)
        new_trials(spec, path.parent / "runs-check")  # planning errors too (nothing is written)
    except SpecError as exc:
        return printable(str(exc))
    return None


@dataclass(frozen=True)
class Registered:
    """What registering said, as a notification's text and severity, and the study's id."""

    text: str
    severity: str = "information"  # Textual's notify severities: information | warning | error
    study_id: int | None = None


def register_file(db_path: Path, path: Path) -> Registered:
    """Register the study file: a new study, the same one again (resumed), or its name's next version."""
    from runner.launch import register
    from runner.spec import SpecError, load
    from store.studies import StudyConflict

    try:
        spec = load(path)
    except SpecError as exc:
        return Registered(printable(str(exc)), "error")
    with _open(db_path) as db:
        before = studies.by_name(db, spec.name)
        try:
            study, added = register(db, db_path, spec)
        except (SpecError, StudyConflict) as exc:
            return Registered(printable(str(exc)), "error")
    if before is not None and study.version > before.version:
        what = (f"registered {printable(study.label)}, a new version of {printable(study.name)} "
                f"({printable(before.label)} keeps its trials)")
    elif before is not None and study.id == before.id or added == 0:
        what = f"{printable(study.label)} is already registered"
    else:
        what = f"registered study {printable(study.label)}"
    return Registered(f"{what}: {added} new trial(s) queued", study_id=study.id)


@dataclass(frozen=True)
class RefineOutcome:
    """What refining did, for the refine dialog."""

    study: str  # the refined study's label
    findings: tuple[str, ...] = ()
    refused: str | None = None
    warnings: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    output: Path | None = None
    registered: Registered | None = None
    new_study_id: int | None = None
    error: str | None = None  # it could not even try (the study is gone, the folder is read-only)


def refined_path(config_path: Path, name: str) -> Path:
    """Beside the old study file: NAME.toml, or NAME-2.toml... when that is taken (never overwritten)."""
    candidate = config_path.with_name(f"{name}.toml")
    n = 2
    while candidate.exists():
        candidate = config_path.with_name(f"{name}-{n}.toml")
        n += 1
    return candidate


def refine_and_register(db_path: Path, study_id: int, force: bool = False) -> RefineOutcome:
    """`playbook-runner refine` for the TUI: check, write the new file beside the old one, register it."""
    from runner.refine_cli import refine

    with _open(db_path) as db:
        study = studies.get(db, study_id)
        if study is None:
            return RefineOutcome(str(study_id), error=f"study {study_id} is gone from the database")
        label = studies.distinct_label(db, study)
        output = refined_path(Path(study.config_path), f"{study.name}-refined")
        try:
            done = refine(db, study, output, force=force)
        except OSError as exc:
            return RefineOutcome(label, error=f"cannot write {output}: {exc.strerror or exc}")
        except Exception as exc:  # an analysis that cannot run on this study says why; the TUI goes on
            return RefineOutcome(label, error=f"{type(exc).__name__}: {exc}")
    outcome = RefineOutcome(label, findings=done.findings, refused=done.refused, warnings=done.warnings,
                            ranges=tuple(done.ranges()))
    if done.refused:
        return outcome
    registered = register_file(db_path, output)
    return RefineOutcome(**{**outcome.__dict__, "output": output, "registered": registered,
                            "new_study_id": registered.study_id})
