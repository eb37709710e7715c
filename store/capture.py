"""Per-trial state of the printed-line capture (runner.printed), stored as JSON text.

Ingest writes it (store.metrics.write_updates, with the stdout offset it covers);
these are the reads.
"""

from __future__ import annotations

from sqlite_utils import Database


def load(db: Database, trial_id: int) -> str | None:
    """The saved capture state of one trial (None: nothing captured from its stdout yet)."""
    row = db.execute("SELECT state_json FROM trial_capture WHERE trial_id = ?", [trial_id]).fetchone()
    return row[0] if row else None


def for_study(db: Database, study_id: int) -> dict[int, str]:
    """Trial id -> saved capture state, for every trial of a study that has one."""
    return dict(db.execute(
        "SELECT c.trial_id, c.state_json FROM trial_capture c JOIN trials t ON t.id = c.trial_id "
        "WHERE t.study_id = ?", [study_id]).fetchall())
