"""The playbook's checklist for the study screen, as plain frozen data (no Textual here).

A ChecklistReader runs in its own thread worker beside the store poller: the
checklist reads the curves of every trial (up to runner.study_data.CURVE_POINTS
points each), which takes from milliseconds to seconds, and the poller must keep
following the cursor meanwhile. It computes only while the study screen shows the
checklist or one of its plots (View.checklist), only when the store changed, and
then at most every MIN_INTERVAL_S, or DUTY times as long as the last computation
took, whichever is longer: a big running study never keeps a core busy with it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from store import StoreError, connect, studies
from store.db import data_version
from tui.data.snapshot import View

MIN_INTERVAL_S = 5.0
DUTY = 10


@dataclass(frozen=True)
class CheckItem:
    """One answered question (runner.playbook.check.Check without its evidence dict,
    which holds every curve: the screen shows the detail lines drawn from it)."""

    key: str
    title: str
    verdict: str  # ok | warning | problem | n/a
    summary: str
    details: tuple[str, ...] = ()
    advice: str | None = None


@dataclass(frozen=True)
class BestSteps:
    """The training-length check's histogram of best_step / max_train_steps."""

    counts: tuple[int, ...] = ()
    edges: tuple[float, ...] = ()
    early: float = 0.10  # the playbook's marks: best steps all before this -> train less
    late: float = 0.75  # all after this -> train longer
    trials: int = 0
    note: str = ""  # the check's summary; says why when there is no histogram


@dataclass(frozen=True)
class ComputeCurve:
    """The objective of the best trial of one scientific value, on the compute axis."""

    trial: int
    group: str
    compute: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class ComputeView:
    """The compute check's plot: an axis kind, one curve per scientific value, the Pareto frontier."""

    axis: str = "steps"  # flops | seconds | examples | steps
    unit: str = "steps"
    curves: tuple[ComputeCurve, ...] = ()
    frontier: tuple[tuple[float, float], ...] = ()  # (compute, best objective reached by then)
    note: str = ""


@dataclass(frozen=True)
class ChecklistResult:
    study_id: int
    checks: tuple[CheckItem, ...] = ()
    best_steps: BestSteps = BestSteps()
    compute: ComputeView = ComputeView()
    trials: int = 0
    computed_at: float = 0.0  # Unix seconds
    seconds: float = 0.0  # how long it took
    error: str | None = None

    def counts(self) -> dict[str, int]:
        """How many checks of each verdict, most severe first, zeros left out."""
        order = ("problem", "warning", "ok", "n/a")
        found = {v: sum(1 for c in self.checks if c.verdict == v) for v in order}
        return {v: n for v, n in found.items() if n}


def result_of(study_id: int, checks: list[Any], trials: int) -> ChecklistResult:
    """The checks (runner.playbook.check.Check) as the screen needs them.

    The two plots read the evidence their checks computed (the compute axis and
    frontier are runner.playbook.compute's), so a plot always agrees with its verdict.
    """
    by_key = {c.key: c for c in checks}
    return ChecklistResult(
        study_id,
        tuple(CheckItem(c.key, c.title, c.verdict, c.summary, tuple(c.details), c.advice) for c in checks),
        best_steps_of(by_key.get("training_length")),
        compute_of(by_key.get("compute")),
        trials,
        computed_at=time.time(),
    )


def best_steps_of(check: Any) -> BestSteps:
    if check is None:
        return BestSteps(note="no training-length check")
    ev = check.evidence
    hist = ev.get("histogram")
    n = len(ev.get("best_steps", ()))
    if not hist:  # too few completed trials for the check to read a distribution
        return BestSteps(trials=n, note=check.summary)
    return BestSteps(tuple(int(c) for c in hist["counts"]), tuple(float(e) for e in hist["edges"]),
                     float(ev["early_fraction"]), float(ev["late_fraction"]), n, check.summary)


def compute_of(check: Any) -> ComputeView:
    if check is None:
        return ComputeView(note="no compute check")
    ev = check.evidence
    curves = tuple(ComputeCurve(int(c["trial"]), str(c["group"]), tuple(float(x) for x in c["compute"]),
                                tuple(float(y) for y in c["value"]))
                   for c in ev.get("curves", ()))
    frontier = tuple((float(f["compute"]), float(f["value"])) for f in ev.get("frontier", ()))
    return ComputeView(ev.get("axis", "steps"), ev.get("unit", "steps"), curves, frontier, check.summary)


def read_checklist(db: Database, study_id: int) -> ChecklistResult:
    """Load the study and the curves the checklist reads, and run it (runner.playbook.checklist)."""
    # Imported here, in the checklist's thread: numpy and the spec parser are slow to import.
    from runner.playbook.checklist import run_checklist
    from runner.study_data import load_checklist_inputs

    study = studies.get(db, study_id)
    if study is None:
        return ChecklistResult(study_id, error=f"study {study_id} is not in this database")
    data, curves = load_checklist_inputs(db, study)
    return result_of(study_id, run_checklist(data, curves), len(data.trials))


class ChecklistReader:
    """Computes the checklist when the view wants it and the store changed, throttled (see above).

    Create, use and close it in one thread: its connection is that thread's own.
    """

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self.db: Database | None = None
        self._key: tuple | None = None  # (study id, data_version) of the last good result
        self._study: int | None = None  # the study last computed, and when it may be again
        self._next_at = 0.0

    def poll(self, view: View) -> ChecklistResult | None:
        """A fresh result, or None when there is nothing to do yet."""
        if not view.checklist or view.study_id is None:
            return None
        started = time.monotonic()
        if view.study_id == self._study and started < self._next_at:
            return None
        try:
            if self.db is None:
                self.db = connect(self.db_path)
            key = (view.study_id, data_version(self.db))
            if key == self._key:
                return None
            result = read_checklist(self.db, view.study_id)
        except (StoreError, sqlite3.Error) as exc:
            self.close()  # reconnect next time: the file may have been replaced
            key, result = None, ChecklistResult(view.study_id, error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # an analysis bug must not stop the monitoring; the panel says it
            key, result = None, ChecklistResult(view.study_id, error=f"{type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        self._key = key if result.error is None else None  # a failure is retried after the interval
        self._study, self._next_at = view.study_id, time.monotonic() + max(MIN_INTERVAL_S, DUTY * elapsed)
        return dataclasses.replace(result, seconds=elapsed)

    def close(self) -> None:
        if self.db is not None:
            self.db.conn.close()
            self.db = None
