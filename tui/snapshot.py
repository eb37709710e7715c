"""What the screens show, read from the store as plain frozen data (no Textual here).

This module runs in the poller thread: it owns its own connection, and hands
immutable snapshots to the UI thread, so widgets never touch SQLite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from store import connect, metrics, studies, trials
from store.db import data_version

SPARK_METRICS = ("train_loss", "grad_norm")
SPARK_POINTS = 200  # about a wide terminal's width; the Sparkline buckets the rest


@dataclass(frozen=True)
class View:
    """What the UI is looking at, so the poller reads only that."""

    study_id: int | None = None
    trial_id: int | None = None


@dataclass(frozen=True)
class RunnerInfo:
    pid: int
    host: str


@dataclass(frozen=True)
class StudyRow:
    id: int
    name: str
    goal: str
    config_path: str
    objective_metric: str
    objective_mode: str
    max_train_steps: int
    active: bool
    counts: dict[str, int]
    best_value: float | None
    best_trial: int | None


@dataclass(frozen=True)
class TrialRow:
    id: int
    number: int
    state: str
    reason: str | None
    detail: str | None
    feasible: int | None
    params: dict[str, Any]
    best_value: float | None
    best_step: int | None
    last_step: int | None


@dataclass(frozen=True)
class Curve:
    """One downsampled metric of the highlighted trial (non-finite points dropped)."""

    name: str
    values: tuple[float, ...]
    last: float | None


@dataclass(frozen=True)
class Snapshot:
    runner: RunnerInfo | None
    runner_checked: bool  # False until the (slow to import) liveness probe has run once
    studies: tuple[StudyRow, ...]
    view: View
    trials: tuple[TrialRow, ...] = ()
    roles: dict[str, str] = field(default_factory=dict)  # param name -> role, in column order
    curves: tuple[Curve, ...] = ()
    error: str | None = None

    def study(self, study_id: int | None) -> StudyRow | None:
        return next((s for s in self.studies if s.id == study_id), None)


def read_studies(db: Database) -> tuple[StudyRow, ...]:
    rows = []
    for study in studies.list_all(db):
        s = studies.summarize(db, study)
        rows.append(StudyRow(
            id=study.id, name=study.name, goal=study.goal, config_path=study.config_path,
            objective_metric=study.objective_metric, objective_mode=study.objective_mode,
            max_train_steps=study.max_train_steps, active=bool(study.active),
            counts=s.counts, best_value=s.best_value, best_trial=s.best_trial,
        ))
    return tuple(rows)


def read_trials(db: Database, study_id: int) -> tuple[TrialRow, ...]:
    return tuple(
        TrialRow(
            id=t.id, number=t.number, state=t.state.value, reason=t.reason, detail=t.detail,
            feasible=t.feasible, params=_params(t.params_json), best_value=t.best_value,
            best_step=t.best_step, last_step=t.last_step,
        )
        for t in trials.list_for_study(db, study_id)
    )


def _params(params_json: str) -> dict[str, Any]:
    try:
        value = json.loads(params_json)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_roles(db: Database, study_id: int, rows: tuple[TrialRow, ...]) -> dict[str, str]:
    """Parameter roles, ordered as the trials list them (the study file's order)."""
    stored = dict(db.execute(
        "SELECT DISTINCT p.name, p.role FROM params p JOIN trials t ON t.id = p.trial_id "
        "WHERE t.study_id = ?", [study_id]).fetchall())
    order: dict[str, str] = {}
    for row in rows:
        for name in row.params:
            order.setdefault(name, stored.get(name, "fixed"))
    for name, role in stored.items():
        order.setdefault(name, role)
    return order


def read_curves(db: Database, trial_id: int) -> tuple[Curve, ...]:
    curves = []
    for name in SPARK_METRICS:
        series = metrics.read_series(db, trial_id, name, max_points=SPARK_POINTS)
        values = tuple(v for v in series.values if v is not None)
        curves.append(Curve(name, values, values[-1] if values else None))
    return tuple(curves)


def read_snapshot(db: Database, view: View, runner: RunnerInfo | None, checked: bool) -> Snapshot:
    study_rows = read_studies(db)
    snap = Snapshot(runner=runner, runner_checked=checked, studies=study_rows, view=view)
    if view.study_id is None:
        return snap
    rows = read_trials(db, view.study_id)
    curves = read_curves(db, view.trial_id) if view.trial_id is not None else ()
    return Snapshot(runner=runner, runner_checked=checked, studies=study_rows, view=view,
                    trials=rows, roles=read_roles(db, view.study_id, rows), curves=curves)


class StorePoller:
    """Reads a snapshot only when something changed: another connection committed
    (PRAGMA data_version), the view moved, or the runner came or went.

    Create, use and close it in one thread: its connection is that thread's own.
    """

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self.db: Database | None = None
        self._live_owner = None  # runner.owner.live_owner, imported on first probe
        self._last: tuple | None = None

    def poll(self, view: View) -> Snapshot | None:
        if self.db is None:
            self.db = connect(self.db_path)
        runner, checked = self._runner()
        key = (data_version(self.db), view, runner, checked)
        if key == self._last:
            return None
        snap = read_snapshot(self.db, view, runner, checked)
        self._last = key
        return snap

    def load_probe(self) -> bool:
        """Import the runner liveness check; True when it was not loaded before.

        Deferred to after the first snapshot is on screen, so the first frame
        never waits on it.
        """
        if self._live_owner is not None:
            return False
        from runner.owner import live_owner

        self._live_owner = live_owner
        return True

    def _runner(self) -> tuple[RunnerInfo | None, bool]:
        if self._live_owner is None:
            return None, False
        owner = self._live_owner(self.db)
        return (RunnerInfo(owner.pid, owner.host) if owner else None), True

    def forget(self) -> None:
        """Treat the next poll as changed (after an error was shown instead of data)."""
        self._last = None

    def close(self) -> None:
        if self.db is not None:
            self.db.conn.close()
            self.db = None
