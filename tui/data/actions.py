"""What the keys do to the store and the runner (no Textual here).

Each action opens its own short-lived connection (it runs in a worker thread,
and a write may wait on the runner's lock), and returns a Note for the user
instead of raising: a bad study file or a conflict is a message, not a crash.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from runner.owner import live_owner, start_detached
from runner.text import printable
from store import commands, connect, studies, trials


@dataclass(frozen=True)
class Note:
    text: str
    severity: str = "information"  # Textual's notify severities: information | warning | error


@contextlib.contextmanager
def _open(db_path: Path) -> Iterator[Database]:
    db = connect(db_path)
    try:
        yield db
    finally:
        db.conn.close()


class Actions:
    """The TUI's verbs, serialized by one lock so two quick presses cannot race."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self._lock = threading.Lock()
        self._spawned: int | None = None  # pid of the runner we started, until it owns the db

    def register(self, study_file: Path) -> Note:
        if not study_file.is_file():
            return Note(f"the sample study file is missing: {study_file} "
                        "(it ships with the repository under sample_studies/)", "error")
        from runner.launch import register
        from runner.spec import SpecError, load
        from store.studies import StudyConflict

        with self._lock, _open(self.db_path) as db:
            try:
                study, added = register(db, self.db_path, load(study_file))
            except (SpecError, StudyConflict) as exc:
                return Note(printable(str(exc)), "error")
        return Note(f"registered study {printable(study.label)}: {added} new trial(s) queued; "
                    "enter opens it, l launches it")

    def register_file(self, path: Path, launch: bool = False) -> Note:
        """A study file the user chose: registered (a new study, or its name's next version), then
        launched if asked (tui.data.study_files says what registering did)."""
        from tui.data.study_files import register_file

        done = register_file(self.db_path, path)
        if not launch or done.study_id is None:
            return Note(done.text, done.severity)
        launched = self.launch(done.study_id)
        return Note(f"{done.text}; {launched.text}", launched.severity)

    def launch(self, study_id: int) -> Note:
        with self._lock, _open(self.db_path) as db:
            study = studies.get(db, study_id)
            if study is None:
                return Note(f"study {study_id} is gone from the database", "error")
            name = printable(study.name)
            studies.set_active(db, study_id, True)
            commands.enqueue(db, "launch_study", study_id=study_id)
            owner = live_owner(db)
            if owner is not None:
                return Note(f"asked runner pid {owner.pid} on {printable(owner.host)} to launch {name}")
            if self._spawned is not None and _alive(self._spawned):
                # It has not taken the lease yet (startup takes a second); it will see the command.
                return Note(f"runner pid {self._spawned} is starting; it will launch {name}")
            self._spawned = start_detached(self.db_path).pid
        return Note(f"started runner pid {self._spawned} for {name} "
                    f"(log: {self.db_path.parent / 'runner.log'})")

    def stop_trial(self, trial_id: int) -> Note:
        with self._lock, _open(self.db_path) as db:
            trial = trials.get(db, trial_id)
            if trial is None:
                return Note(f"trial {trial_id} is gone from the database", "error")
            if trial.state.is_finished():
                return Note(f"trial #{trial.number} already ended ({trial.state.value})", "warning")
            owner = live_owner(db)
            if owner is None:
                return Note(f"no runner is alive for this database: trial #{trial.number} is not "
                            "being run (press l to launch the study)", "warning")
            commands.enqueue(db, "stop_trial", trial_id=trial_id)
        return Note(f"asked runner pid {owner.pid} to stop trial #{trial.number}")

    def requeue_trial(self, trial_id: int) -> Note:
        """A live runner re-queues it through the command queue (it owns the trials); with none,
        the store does it here (nothing else touches an ended trial) and the next launch runs it."""
        with self._lock, _open(self.db_path) as db:
            trial = trials.get(db, trial_id)
            if trial is None:
                return Note(f"trial {trial_id} is gone from the database", "error")
            if trial.state.value not in ("stopped", "failed", "lost"):
                return Note(f"trial #{trial.number} is {trial.state.value}: not re-queued", "warning")
            study = studies.get(db, trial.study_id)
            owner = live_owner(db)
            if owner is not None:
                commands.enqueue(db, "requeue_trial", trial_id=trial_id)
                then = "it runs again" if study and study.active else "press l to launch it"
                return Note(f"asked runner pid {owner.pid} to re-queue trial #{trial.number}; {then}")
            if not trials.requeue_ended(db, trial_id):
                return Note(f"trial #{trial.number} changed state meanwhile: not re-queued", "warning")
        return Note(f"re-queued trial #{trial.number}; press l to launch it")

    def set_notes(self, study_id: int, notes: str) -> Note:
        with self._lock, _open(self.db_path) as db:
            study = studies.get(db, study_id)
            if study is None:
                return Note(f"study {study_id} is gone from the database", "error")
            studies.set_notes(db, study_id, notes)
        return Note(f"saved the notes of {printable(study.name)}")

    def add_trials(self, study_id: int, samples: int) -> Note:
        """Queue `samples` more quasi-random nuisance points, each crossed with every scientific value."""
        from runner.launch import add_trials
        from runner.spec import SpecError

        with self._lock, _open(self.db_path) as db:
            study = studies.get(db, study_id)
            if study is None:
                return Note(f"study {study_id} is gone from the database", "error")
            try:
                added = add_trials(db, study, samples)
            except (SpecError, ValueError) as exc:  # the stored config no longer validates, or samples < 1
                return Note(f"cannot add trials to {printable(study.name)}: {printable(str(exc))}", "error")
            # A launched study with a live runner picks new queued trials up by itself.
            owner = live_owner(db) if study.active else None
        then = f"runner pid {owner.pid} will run them" if owner else "press l to launch"
        return Note(f"queued {added} new trial(s) in {printable(study.name)}; {then}")

    def stop_study(self, study_id: int) -> Note:
        with self._lock, _open(self.db_path) as db:
            study = studies.get(db, study_id)
            if study is None:
                return Note(f"study {study_id} is gone from the database", "error")
            name = printable(study.name)
            owner = live_owner(db)
            if owner is None:
                studies.set_active(db, study_id, False)
                return Note(f"no runner is alive for this database; {name} set inactive "
                            "(its queued trials wait for the next launch)", "warning")
            commands.enqueue(db, "stop_study", study_id=study_id)
        return Note(f"asked runner pid {owner.pid} to stop study {name}")


def _alive(pid: int) -> bool:
    from runner.process import is_alive

    return is_alive(pid, None)
