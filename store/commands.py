"""The command queue: how a TUI or CLI asks the runner that owns the database to act."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlite_utils import Database

from store.db import transaction

KINDS = frozenset({"launch_study", "stop_study", "stop_trial", "requeue_trial"})


@dataclass(frozen=True)
class Command:
    id: int
    kind: str
    study_id: int | None
    trial_id: int | None


def enqueue(db: Database, kind: str, *, study_id: int | None = None, trial_id: int | None = None) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown command kind {kind!r}; expected one of {sorted(KINDS)}")
    with transaction(db):
        cur = db.execute(
            "INSERT INTO commands (kind, study_id, trial_id, created_at) VALUES (?, ?, ?, ?)",
            [kind, study_id, trial_id, time.time()],
        )
    return cur.lastrowid


def take_pending(db: Database) -> list[Command]:
    """Mark every untaken command taken and return them, oldest first (one taker wins)."""
    with transaction(db):
        rows = db.execute(
            "SELECT id, kind, study_id, trial_id FROM commands WHERE taken_at IS NULL ORDER BY id"
        ).fetchall()
        if rows:
            db.execute(
                f"UPDATE commands SET taken_at = ? WHERE id IN ({','.join('?' * len(rows))})",
                [time.time(), *[r[0] for r in rows]],
            )
    return [Command(*r) for r in rows]


def record_result(db: Database, command_id: int, result: str) -> None:
    with transaction(db):
        db.execute("UPDATE commands SET result = ? WHERE id = ?", [result, command_id])
