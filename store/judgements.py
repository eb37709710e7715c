"""The analysis' stored judgements of finished trials, and the light rows every view's outcomes need."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlite_utils import Database

from store.db import transaction

_JUDGED_STATES = "('completed', 'failed')"


@dataclass(frozen=True)
class OutcomeRow:
    """What a trial's outcome and a best-trial pick read: a few columns, no params or paths."""

    id: int
    number: int
    state: str
    reason: str | None
    detail: str | None
    feasible: int | None
    last_step: int | None
    best_value: float | None
    verdict: str | None  # the stored judgement (None: fine, or not judged)
    why: str | None


def outcome_rows(db: Database, study_id: int) -> list[OutcomeRow]:
    """Every trial of the study with its stored judgement, by number."""
    rows = db.execute(
        "SELECT t.id, t.number, t.state, t.reason, t.detail, t.feasible, t.last_step, t.best_value, "
        f"CASE WHEN t.state IN {_JUDGED_STATES} THEN j.verdict END, "
        f"CASE WHEN t.state IN {_JUDGED_STATES} THEN j.why END "
        "FROM trials t LEFT JOIN judgements j ON j.trial_id = t.id "
        "WHERE t.study_id = ? ORDER BY t.number", [study_id]).fetchall()
    return [OutcomeRow(*r) for r in rows]


def stale(db: Database, study_id: int, rule: str) -> bool:
    """Whether the study's judgements no longer cover exactly its finished trials under `rule`.

    A trial that finished since (no row), a row by an older rule, or a row of a trial
    that went back to the queue: the judgement of every trial may change with any of them.
    """
    return bool(db.execute(
        "SELECT EXISTS (SELECT 1 FROM trials t LEFT JOIN judgements j ON j.trial_id = t.id "
        f"  WHERE t.study_id = ? AND t.state IN {_JUDGED_STATES} "
        "  AND (j.trial_id IS NULL OR j.rule IS NOT ?)) "
        "OR EXISTS (SELECT 1 FROM judgements j JOIN trials t ON t.id = j.trial_id "
        f"  WHERE t.study_id = ? AND t.state NOT IN {_JUDGED_STATES})",
        [study_id, rule, study_id]).fetchone()[0])


def replace_for_study(db: Database, study_id: int, judged: dict[int, tuple[str | None, str | None]],
                      rule: str) -> None:
    """Store the judgement of every finished trial (trial id -> (verdict or None, why)), old ones dropped."""
    now = time.time()
    with transaction(db):
        db.execute("DELETE FROM judgements WHERE trial_id IN (SELECT id FROM trials WHERE study_id = ?)",
                   [study_id])
        db.conn.executemany(
            "INSERT INTO judgements (trial_id, verdict, why, rule, judged_at) VALUES (?, ?, ?, ?, ?)",
            [(trial_id, verdict, why, rule, now) for trial_id, (verdict, why) in judged.items()])
