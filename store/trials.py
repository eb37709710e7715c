"""Trials: their lifecycle as conditional updates, and reads as frozen rows."""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, fields
from typing import Any

from sqlite_utils import Database

from store.db import transaction


class TrialState(enum.StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"

    def is_finished(self) -> bool:
        return self in FINISHED_STATES

    def is_active(self) -> bool:
        return self in (TrialState.STARTING, TrialState.RUNNING)


FINISHED_STATES = frozenset(
    {TrialState.COMPLETED, TrialState.FAILED, TrialState.STOPPED, TrialState.LOST}
)


@dataclass(frozen=True)
class Trial:
    """One row of `trials`, as readers see it (a copy: edits go through functions here)."""

    id: int
    study_id: int
    number: int
    source: str
    state: TrialState
    reason: str | None
    detail: str | None
    feasible: int | None
    params_json: str
    argv_json: str
    trial_dir: str
    slot: str | None
    host: str | None
    pid: int | None
    proc_start: str | None
    exit_code: int | None
    stop_requested_at: float | None
    attempt: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    metrics_offset: int
    stdout_offset: int
    last_step: int | None
    best_value: float | None
    best_step: int | None
    last_report_at: float | None
    diverged: int
    bad_lines: int
    bad_line_sample: str | None = None  # the first dropped metric line, with why
    out_of_order: int = 0  # reported points at or below a step their series had (merged, last wins)
    out_of_order_sample: str | None = None  # the first of them, described

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)

    @property
    def argv(self) -> list[str]:
        return json.loads(self.argv_json)

    @classmethod
    def from_row(cls, row: dict) -> Trial:
        values = {name: row[name] for name in _TRIAL_FIELDS if name in row}  # older schemas lack new columns
        values["state"] = TrialState(values["state"])
        return cls(**values)


_TRIAL_FIELDS = tuple(f.name for f in fields(Trial))  # read once: fields() per row costs a 1,000-trial list


@dataclass(frozen=True)
class NewTrial:
    """A trial to queue: its parameters (with their roles) and the argv it will run."""

    number: int
    source: str  # "search" or "manual"
    params: dict[str, Any]
    roles: dict[str, str]
    argv: list[str]
    trial_dir: str


def _one(db: Database, where: str, args: list) -> Trial | None:
    rows = list(db["trials"].rows_where(where, args, limit=1))
    return Trial.from_row(rows[0]) if rows else None


def get(db: Database, trial_id: int) -> Trial | None:
    return _one(db, "id = ?", [trial_id])


def get_by_number(db: Database, study_id: int, number: int) -> Trial | None:
    return _one(db, "study_id = ? AND number = ?", [study_id, number])


def list_for_study(db: Database, study_id: int) -> list[Trial]:
    return [
        Trial.from_row(r)
        for r in db["trials"].rows_where("study_id = ?", [study_id], order_by="number")
    ]


def in_states(db: Database, states: set[TrialState], study_id: int | None = None) -> list[Trial]:
    """Trials in any of `states` (optionally of one study), oldest first."""
    marks = ",".join("?" for _ in states)
    where = f"state IN ({marks})"
    args: list = [s.value for s in states]
    if study_id is not None:
        where += " AND study_id = ?"
        args.append(study_id)
    return [Trial.from_row(r) for r in db["trials"].rows_where(where, args, order_by="id")]


def insert_new(db: Database, study_id: int, new: list[NewTrial]) -> int:
    """Queue trials whose number the study does not have yet; returns how many were added."""
    now = time.time()
    with transaction(db):
        existing = {
            r[0] for r in db.execute("SELECT number FROM trials WHERE study_id = ?", [study_id])
        }
        added = 0
        for t in new:
            if t.number in existing:
                continue
            cur = db.execute(
                """INSERT INTO trials (study_id, number, source, state, params_json, argv_json,
                   trial_dir, created_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)""",
                [study_id, t.number, t.source, json.dumps(t.params), json.dumps(t.argv),
                 t.trial_dir, now],
            )
            db.conn.executemany(
                "INSERT INTO params (trial_id, name, role, value) VALUES (?, ?, ?, ?)",
                [(cur.lastrowid, k, t.roles.get(k, "fixed"), json.dumps(v))
                 for k, v in t.params.items()],
            )
            added += 1
    return added


def queued_in_active_studies(db: Database) -> list[tuple[int, int]]:
    """(trial id, study id) of every queued trial of a launched study, oldest first."""
    return db.execute(
        "SELECT t.id, t.study_id FROM trials t JOIN studies s ON s.id = t.study_id "
        "WHERE s.active = 1 AND t.state = 'queued' ORDER BY t.id"
    ).fetchall()


def diverged_running(db: Database) -> set[int]:
    """Ids of running trials that have reported a NaN/inf loss."""
    return {r[0] for r in db.execute("SELECT id FROM trials WHERE diverged = 1 AND state = 'running'")}


def param_roles(db: Database, *, study_id: int | None = None, trial_id: int | None = None) -> dict[str, str]:
    """Parameter name -> role, for one trial or across a study's trials."""
    if trial_id is not None:
        rows = db.execute("SELECT name, role FROM params WHERE trial_id = ?", [trial_id])
    else:
        rows = db.execute(
            "SELECT DISTINCT p.name, p.role FROM params p JOIN trials t ON t.id = p.trial_id "
            "WHERE t.study_id = ?", [study_id])
    return dict(rows.fetchall())


def roles_by_trial(db: Database, study_id: int) -> dict[int, dict[str, str]]:
    """Trial id -> its parameters' roles (name -> role), for every trial of a study, in one query."""
    out: dict[int, dict[str, str]] = {}
    for trial_id, name, role in db.execute(
            "SELECT p.trial_id, p.name, p.role FROM params p JOIN trials t ON t.id = p.trial_id "
            "WHERE t.study_id = ?", [study_id]):
        out.setdefault(trial_id, {})[name] = role
    return out


def next_number(db: Database, study_id: int) -> int:
    row = db.execute("SELECT MAX(number) FROM trials WHERE study_id = ?", [study_id]).fetchone()
    return (row[0] or 0) + 1


def claim(db: Database, trial_id: int, slot: str, host: str) -> bool:
    """queued -> starting, only if still queued (another actor may have stopped it)."""
    with transaction(db):
        cur = db.execute(
            "UPDATE trials SET state = 'starting', slot = ?, host = ?, attempt = attempt + 1, "
            "reason = NULL, detail = NULL WHERE id = ? AND state = 'queued'",
            [slot, host, trial_id],
        )
    return cur.rowcount == 1


def unclaim(db: Database, trial_id: int) -> bool:
    """starting -> queued, for a claimed trial whose process never started (its runner died
    between the claim and the spawn): nothing ran, so nothing is lost by running it later, and
    the claim's attempt is taken back (`attempt` counts launches)."""
    with transaction(db):
        cur = db.execute(
            "UPDATE trials SET state = 'queued', slot = NULL, host = NULL, attempt = attempt - 1 "
            "WHERE id = ? AND state = 'starting' AND pid IS NULL",
            [trial_id],
        )
    return cur.rowcount == 1


def mark_running(db: Database, trial_id: int, pid: int, proc_start: str | None,
                 started_at: float | None = None) -> None:
    """starting -> running, with the pid recorded right after the spawn (or, after a restart,
    the identity and start time the trial's shim recorded)."""
    with transaction(db):
        db.execute(
            "UPDATE trials SET state = 'running', pid = ?, proc_start = ?, started_at = ?, detail = NULL "
            "WHERE id = ? AND state = 'starting'",
            [pid, proc_start, started_at or time.time(), trial_id],
        )


def finish(
    db: Database,
    trial_id: int,
    state: TrialState,
    *,
    reason: str | None = None,
    detail: str | None = None,
    feasible: int | None = None,
    exit_code: int | None = None,
) -> bool:
    """Move an unfinished trial to a finished state; finished trials refuse edits."""
    assert state.is_finished()
    with transaction(db):
        cur = db.execute(
            "UPDATE trials SET state = ?, reason = ?, detail = ?, feasible = ?, exit_code = ?, "
            "ended_at = ? WHERE id = ? AND state IN ('queued', 'starting', 'running')",
            [state.value, reason, detail, feasible, exit_code, time.time(), trial_id],
        )
    return cur.rowcount == 1


def request_stop(db: Database, trial_id: int) -> None:
    with transaction(db):
        db.execute(
            "UPDATE trials SET stop_requested_at = COALESCE(stop_requested_at, ?) WHERE id = ?",
            [time.time(), trial_id],
        )


# What a trial goes back to the queue with: nothing of its earlier attempt.
_REQUEUE = ("UPDATE trials SET state = 'queued', pid = NULL, proc_start = NULL, slot = NULL, "
            "stop_requested_at = NULL, started_at = NULL, ended_at = NULL, reason = NULL, "
            "detail = NULL, feasible = NULL, exit_code = NULL, metrics_offset = 0, "
            "stdout_offset = 0, last_step = NULL, best_value = NULL, best_step = NULL, "
            "last_report_at = NULL, diverged = 0, bad_lines = 0, bad_line_sample = NULL, "
            "out_of_order = 0, out_of_order_sample = NULL ")


def _forget_attempt(db: Database, trial_id: int) -> None:
    db.execute("DELETE FROM metric_blocks WHERE trial_id = ?", [trial_id])
    db.execute("DELETE FROM checkpoints WHERE trial_id = ?", [trial_id])
    db.execute("DELETE FROM trial_capture WHERE trial_id = ?", [trial_id])


def requeue(db: Database, trial_id: int) -> bool:
    """A lost trial goes back to the queue to run again from scratch.

    Its stored metrics and checkpoints are dropped so two attempts never mix in
    one curve; the files of the earlier attempt stay on disk (see runner.process).
    """
    with transaction(db):
        cur = db.execute(_REQUEUE + "WHERE id = ? AND state IN ('starting', 'running', 'lost')", [trial_id])
        if cur.rowcount == 1:
            _forget_attempt(db, trial_id)
    return cur.rowcount == 1


def requeue_ended(db: Database, trial_id: int) -> bool:
    """A stopped, failed or lost trial goes back to the queue (a user's re-run), from scratch as
    requeue does; False when it is not in one of those states (it ran or finished meanwhile)."""
    with transaction(db):
        cur = db.execute(_REQUEUE + "WHERE id = ? AND state IN ('stopped', 'failed', 'lost')", [trial_id])
        if cur.rowcount == 1:
            _forget_attempt(db, trial_id)
    return cur.rowcount == 1


def requeue_stopped(db: Database, study_id: int) -> list[int]:
    """A study's trials that were stopped while they ran go back to the queue, from scratch
    (as requeue does). Trials stopped before they started (a halted study) stay stopped."""
    with transaction(db):
        ids = [r[0] for r in db.execute(
            "SELECT id FROM trials WHERE study_id = ? AND state = 'stopped' AND started_at IS NOT NULL",
            [study_id])]
        for trial_id in ids:
            db.execute(_REQUEUE + "WHERE id = ?", [trial_id])
            _forget_attempt(db, trial_id)
    return ids


def state_counts(db: Database, study_id: int) -> dict[str, int]:
    """Trials per state, plus 'infeasible' (finished trials marked not feasible)."""
    counts = {
        row[0]: row[1]
        for row in db.execute(
            "SELECT state, COUNT(*) FROM trials WHERE study_id = ? GROUP BY state", [study_id]
        )
    }
    counts["infeasible"] = db.execute(
        "SELECT COUNT(*) FROM trials WHERE study_id = ? AND feasible = 0", [study_id]
    ).fetchone()[0]
    return counts


def set_waiting(db: Database, reasons: dict[int, str | None]) -> None:
    """Why queued trials wait (None: clear it), as their `detail`, and started ones a cluster has
    not placed yet; a trial that moved on meanwhile is not touched (claim and mark_running clear
    the detail)."""
    if reasons:
        with transaction(db):
            db.conn.executemany("UPDATE trials SET detail = ? WHERE id = ? AND state IN ('queued', 'starting')",
                                [(why, trial_id) for trial_id, why in reasons.items()])


def clear_waiting(db: Database) -> None:
    """Forget every waiting reason (no runner schedules them, or a new one starts)."""
    with transaction(db):
        db.execute("UPDATE trials SET detail = NULL WHERE state IN ('queued', 'starting') AND detail IS NOT NULL")
