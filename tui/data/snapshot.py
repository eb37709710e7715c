"""What the screens show, read from the store as plain frozen data (no Textual here).

This module runs in the poller thread: it owns its own connection, and hands
immutable snapshots to the UI thread, so widgets never touch SQLite. It reads
only what the View asks for: the studies always; one study's trials, analyses
and overlaid curves on the study screen; one trial in full on the trial screen.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from runner.judging import study_outcomes
from runner.playbook.outcome import Outcome, infeasible_causes
from runner.printed import progress_totals
from runner.text import baseline_line
from store import capture, connect, metrics, studies, trials
from store import wizards as wizard_store
from store.db import data_version
from tui.data.trial_data import Points, TrialDetail, read_points, read_trial_detail
from tui.data.view import View

TRAIN_METRIC = "train_loss"
VALIDATION_METRIC = "val_loss"  # drawn beside the training loss when reported, else the objective
MAX_OVERLAY = 6  # trials whose curves one plot overlays (more is unreadable in a terminal)


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
    notes: str = ""
    reproduce_command: str = ""
    stage_of: str | None = None  # a wizard's stage: the study the wizard works on
    infeasible_by: dict[str, int] = dataclasses.field(default_factory=dict)  # cause -> trials (outcome.py)
    baseline: str = ""  # the configuration `decide` adopted for this study, as one line (runner.text)
    version: int = 1  # a changed file under the name is its next version (store.studies)
    label: str = ""  # 'tiny v2'; 'tiny v1' beside later versions; the name alone when it has one version
    earlier: bool = False  # a later version of this name exists (listed under the latest)
    refines: str = ""  # the study this one refines, as its file names it
    address: str = ""  # NAME@N: how a command names this very version

    @property
    def shown(self) -> str:
        return self.label or self.name


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
    slot: str | None = None
    trial_dir: str = ""
    # How it ended, as every view shows it (runner.playbook.outcome), the analysis' verdict included.
    outcome: Outcome | None = None
    # Recent training loss and gradient norm of a running trial, for its row's sparklines.
    loss_spark: tuple[float | None, ...] = ()
    grad_spark: tuple[float | None, ...] = ()
    progress_total: int | None = None  # max_train_steps in steps, when the study counts it in epochs


@dataclass(frozen=True)
class TrialCurves:
    """The training and validation curves of one trial, for the study screen's overlay."""

    trial_id: int
    number: int
    curves: tuple[Points, ...]


@dataclass(frozen=True)
class StudyDetail:
    """One study as its screen shows it: trials, the playbook's analyses, overlaid curves."""

    study_id: int
    trials: tuple[TrialRow, ...]
    roles: dict[str, str]  # param name -> role, in column order
    best: frozenset[int] = frozenset()  # ids of the best trial of each scientific value
    axes: tuple = ()  # runner.playbook.isolation.AxisData, one per varied parameter
    isolation: tuple = ()  # (scientific name, tuple of IsolationRow), one per scientific parameter
    curves: tuple[TrialCurves, ...] = ()
    analysis_error: str | None = None


@dataclass(frozen=True)
class SlotUse:
    """A trial holding a slot ('cpu', or 'gpu:0,1'), for the GPU panel."""

    slot: str
    study: str
    number: int


@dataclass(frozen=True)
class Snapshot:
    runner: RunnerInfo | None
    runner_checked: bool  # False until the (slow to import) liveness probe has run once
    studies: tuple[StudyRow, ...]
    view: View
    study_detail: StudyDetail | None = None
    trial: TrialDetail | None = None
    slots: tuple[SlotUse, ...] = ()
    error: str | None = None

    def study(self, study_id: int | None) -> StudyRow | None:
        return next((s for s in self.studies if s.id == study_id), None)

    @property
    def trials(self) -> tuple[TrialRow, ...]:
        return self.study_detail.trials if self.study_detail else ()

    @property
    def roles(self) -> dict[str, str]:
        return self.study_detail.roles if self.study_detail else {}


def read_studies(db: Database) -> tuple[StudyRow, ...]:
    wizards = {f"{w.name}.": w.base_study for w in wizard_store.list_all(db)}
    rows = []
    for study in studies.list_all(db):
        s = study_outcomes(db, study)
        rows.append(StudyRow(
            id=study.id, name=study.name, goal=study.goal, config_path=study.config_path,
            objective_metric=study.objective_metric, objective_mode=study.objective_mode,
            max_train_steps=study.max_train_steps, active=bool(study.active),
            counts=s.counts, best_value=s.best_value, best_trial=s.best_trial,
            notes=study.notes, reproduce_command=study.reproduce_command,
            stage_of=next((base for prefix, base in wizards.items() if study.name.startswith(prefix)), None),
            infeasible_by=infeasible_causes(s.outcomes.values()),
            baseline=_baseline(db, study.name),
            version=study.version, label=study.label, refines=study.refines, address=study.address,
        ))
    return group_stages(rows)


def _baseline(db: Database, study_name: str) -> str:
    b = wizard_store.current_baseline(db, study_name)
    return baseline_line(b.params, b.source, b.adopted_at, b.objective_mean) if b is not None else ""


def group_stages(rows: list[StudyRow]) -> tuple[StudyRow, ...]:
    """Studies in creation order (of a name's first version), each name's versions latest first,
    then its wizards' stage studies (a stage whose study is gone keeps its own place)."""
    by_name: dict[str, list[StudyRow]] = {}
    for r in rows:
        by_name.setdefault(r.name, []).append(r)
    stages: dict[str, list[str]] = {}
    for name, group in by_name.items():
        if group[0].stage_of in by_name:
            stages.setdefault(group[0].stage_of, []).append(name)
    out: list[StudyRow] = []
    for name, group in by_name.items():
        if group[0].stage_of not in by_name:
            out.extend(_latest_first(group))
            for stage in stages.get(name, ()):
                out.extend(_latest_first(by_name[stage]))
    return tuple(out)


def _latest_first(versions: list[StudyRow]) -> list[StudyRow]:
    """A name's versions, the latest first; beside later ones, each is labelled with its version."""
    if len(versions) == 1:
        return versions
    ordered = sorted(versions, key=lambda r: r.version, reverse=True)
    return [dataclasses.replace(r, earlier=i > 0, label=f"{r.name} v{r.version}") for i, r in enumerate(ordered)]


SPARK_POINTS = 16  # characters per sparkline: a width that fits the table
SPARK_WINDOW = 64  # recent points read per sparkline (one index seek), averaged 4 to a character
SPARK_METRICS = ("train_loss", "grad_norm")


def read_trials(db: Database, study_id: int, sparks: dict | None = None) -> tuple[TrialRow, ...]:
    """The study's trials with their outcomes and sparklines of loss and gradient norm: a running
    trial's recent window, an ended trial's whole curve (kept in `sparks`, the poller's, across polls)."""
    study = studies.get(db, study_id)
    totals = progress_totals(capture.for_study(db, study_id))
    rows = tuple(dataclasses.replace(r, progress_total=totals.get(r.id))
                 for r in rows_of(trials.list_for_study(db, study_id)))
    if study is not None:
        outcomes = study_outcomes(db, study)
        rows = tuple(dataclasses.replace(r, outcome=outcomes.of(r.number, r.state, r.reason, r.feasible,
                                                                r.last_step, r.detail)) for r in rows)
    ended = _EndedSparks(db, sparks if sparks is not None else {})
    return tuple(_with_sparklines(db, row) if row.state == "running" else ended.of(row) for row in rows)


def _with_sparklines(db: Database, row: TrialRow) -> TrialRow:
    loss, grad = (_averaged(metrics.recent(db, row.id, name, SPARK_WINDOW), SPARK_POINTS)
                  for name in SPARK_METRICS)
    return dataclasses.replace(row, loss_spark=loss, grad_spark=grad)


ENDED_STATES = ("completed", "stopped", "failed", "lost")
ENDED_SPARK_BUDGET_S = 0.05  # whole curves read per snapshot; the rest come with the next polls


class _EndedSparks:
    """Ended trials' whole curves, downsampled; read once per trial (an ended trial's curve does
    not change), at most ENDED_SPARK_BUDGET_S of reads per snapshot so a big study opens at once."""

    def __init__(self, db: Database, cache: dict):
        self.db, self.cache = db, cache
        self.deadline = time.monotonic() + ENDED_SPARK_BUDGET_S
        cache["pending"] = False

    def of(self, row: TrialRow) -> TrialRow:
        if row.state not in ENDED_STATES or row.last_step is None:
            return row
        key = (row.id, row.state, row.last_step)
        sparks = self.cache.get(key)
        if sparks is None:
            if time.monotonic() > self.deadline:
                self.cache["pending"] = True  # the poller reads again on its next tick
                return row
            sparks = self.cache[key] = tuple(
                tuple(metrics.read_series(self.db, row.id, name, max_points=SPARK_POINTS).values)
                for name in SPARK_METRICS)
        return dataclasses.replace(row, loss_spark=sparks[0], grad_spark=sparks[1])


def _averaged(values: list[float | None], width: int) -> tuple[float | None, ...]:
    """At most `width` points, each the mean of a run of values (None if any is non-finite)."""
    size = max(1, -(-len(values) // width))  # ceil: a short series keeps one point per value
    chunks = [values[i:i + size] for i in range(0, len(values), size)]
    return tuple(None if any(v is None for v in c) else sum(c) / len(c) for c in chunks)


def rows_of(trial_list: list[trials.Trial]) -> tuple[TrialRow, ...]:
    return tuple(
        TrialRow(
            id=t.id, number=t.number, state=t.state.value, reason=t.reason, detail=t.detail,
            feasible=t.feasible, params=_params(t.params_json), best_value=t.best_value,
            best_step=t.best_step, last_step=t.last_step, slot=t.slot, trial_dir=t.trial_dir,
        )
        for t in trial_list
    )


def _params(params_json: str) -> dict[str, Any]:
    try:
        value = json.loads(params_json)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_roles(db: Database, study_id: int, rows: tuple[TrialRow, ...]) -> dict[str, str]:
    """Parameter roles, ordered as the trials list them (the study file's order)."""
    stored = trials.param_roles(db, study_id=study_id)
    order: dict[str, str] = {}
    for row in rows:
        for name in row.params:
            order.setdefault(name, stored.get(name, "fixed"))
    for name, role in stored.items():
        order.setdefault(name, role)
    return order


def read_slots(db: Database, study_rows: tuple[StudyRow, ...]) -> tuple[SlotUse, ...]:
    """Which trials hold a slot now (starting or running), in every study."""
    names = {s.id: s.shown for s in study_rows}  # "tiny v2" for a later version
    active = trials.in_states(db, {trials.TrialState.STARTING, trials.TrialState.RUNNING})
    return tuple(SlotUse(t.slot or "cpu", names.get(t.study_id, "?"), t.number) for t in active)


def study_data(study: studies.Study, rows: tuple[TrialRow, ...]):
    """What runner.study_data.load_study_data returns, from the rows already read.

    The same conversion, without reading every trial a second time (a quarter of
    the poller's time on a 1,000-trial study).
    """
    from runner.playbook.data import TrialResult
    from runner.study_data import make_study_data

    return make_study_data(study, (
        TrialResult(number=r.number, state=r.state, params=r.params, reason=r.reason,
                    feasible=None if r.feasible is None else bool(r.feasible),
                    best_value=r.best_value, best_step=r.best_step, last_step=r.last_step,
                    max_steps=r.progress_total, verdict=r.outcome.verdict if r.outcome else None)
        for r in rows
    ))


def analyze(db: Database, study_id: int, rows: tuple[TrialRow, ...]) -> dict[str, Any]:
    """Best trial per scientific value, axis-plot and isolation data (runner.playbook)."""
    # Imported here, in the poller thread: the spec parser is slow to import.
    from runner.playbook.isolation import axis_plot_data, best_per_scientific, isolation_data

    study = studies.get(db, study_id)
    if study is None:
        return {}
    try:
        data = study_data(study, rows)
        ids = {r.number: r.id for r in rows}
        best = frozenset(ids[t.number] for t in best_per_scientific(data).values() if t.number in ids)
        isolation = tuple((p.name, tuple(isolation_data(data, p.name))) for p in data.by_role("scientific"))
        return {"best": best, "axes": tuple(axis_plot_data(data)), "isolation": isolation}
    except Exception as exc:  # an analysis bug must not stop the monitoring; the plot panel says it
        return {"analysis_error": f"{type(exc).__name__}: {exc}"}


def read_overlay(db: Database, view: View, rows: tuple[TrialRow, ...], objective: str) -> tuple[TrialCurves, ...]:
    """Training and validation curves of the highlighted trial and the marked ones."""
    numbers = {r.id: r.number for r in rows}
    # Before the table has a cursor, the first row will be highlighted: read it now.
    first = view.trial_id if view.trial_id is not None or not rows else rows[0].id
    wanted = [t for t in dict.fromkeys((first, *view.overlay)) if t in numbers][:MAX_OVERLAY]
    out = []
    for trial_id in wanted:
        train = read_points(db, trial_id, TRAIN_METRIC)
        validation = read_points(db, trial_id, VALIDATION_METRIC)
        if not validation.steps and objective not in (TRAIN_METRIC, VALIDATION_METRIC):
            validation = read_points(db, trial_id, objective)
        out.append(TrialCurves(trial_id, numbers[trial_id], (train, validation)))
    return tuple(out)


def with_outcome(db: Database, detail: TrialDetail | None) -> TrialDetail | None:
    """The trial with its outcome as every view shows it (the study's stored verdicts included)."""
    study = studies.get(db, detail.study_id) if detail is not None else None
    if study is None:
        return detail
    o = study_outcomes(db, study).of(detail.number, detail.state, detail.reason, detail.feasible,
                                      detail.last_step, detail.detail)
    return dataclasses.replace(detail, outcome=o)


def read_study_detail(db: Database, view: View, study: StudyRow | None,
                      cache: dict | None = None) -> StudyDetail:
    """The study's trials and analyses, then the overlay's curves.

    `cache` (the poller's) keeps the trials and analyses while the store has not
    changed: moving the cursor then reads only the curves of the new trial.
    """
    key = (data_version(db), view.study_id)
    sparks = cache.setdefault("sparks", {}) if cache is not None else None
    if cache is None or cache.get("key") != key:
        rows = read_trials(db, view.study_id, sparks)
        base = StudyDetail(view.study_id, rows, read_roles(db, view.study_id, rows),
                           **analyze(db, view.study_id, rows))
        if cache is not None:
            cache.update(key=key, base=base)
    elif sparks.get("pending"):  # the same trials: only the ended ones' curves left to read
        ended = _EndedSparks(db, sparks)
        base = cache["base"] = dataclasses.replace(cache["base"], trials=tuple(
            ended.of(row) if not row.loss_spark else row for row in cache["base"].trials))
    else:
        base = cache["base"]
    objective = study.objective_metric if study else ""
    return dataclasses.replace(base, curves=read_overlay(db, view, base.trials, objective))


def read_snapshot(db: Database, view: View, runner: RunnerInfo | None, checked: bool,
                  cache: dict | None = None) -> Snapshot:
    study_rows = read_studies(db)
    snap = Snapshot(runner=runner, runner_checked=checked, studies=study_rows, view=view,
                    slots=read_slots(db, study_rows))
    study = snap.study(view.study_id)
    if view.detail and view.trial_id is not None:
        metric, mode = (study.objective_metric, study.objective_mode) if study else ("", "min")
        detail = read_trial_detail(db, view.trial_id, view.metric, metric, mode)
        return dataclasses.replace(snap, trial=with_outcome(db, detail))
    if view.study_id is None:
        return snap
    return dataclasses.replace(snap, study_detail=read_study_detail(db, view, study, cache))


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
        self._cache: dict = {}  # see read_study_detail
        self._warm = False  # see warm_up

    def poll(self, view: View) -> Snapshot | None:
        if self.db is None:
            self.db = connect(self.db_path)
        runner, checked = self._runner()
        key = (data_version(self.db), view, runner, checked)
        if key == self._last and not self._cache.get("sparks", {}).get("pending"):
            return None
        snap = read_snapshot(self.db, view, runner, checked, self._cache)
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

    def warm_up(self) -> bool:
        """Import what the study screen needs (about 0.4 s), so opening one does not wait on it;
        True the first time (startup is over: the app then freezes what it made, see tui.app).

        Call it on an idle tick: an import holds the GIL for long stretches, and
        the UI thread would stutter if it ran while a snapshot is being shown.
        """
        if not self._warm:
            import numpy  # noqa: F401
            import plotext  # noqa: F401

            import runner.playbook.isolation  # noqa: F401
            import runner.study_data  # noqa: F401

            self._warm = True
            return True
        return False

    def _runner(self) -> tuple[RunnerInfo | None, bool]:
        if self._live_owner is None:
            return None, False
        owner = self._live_owner(self.db)
        return (RunnerInfo(owner.pid, owner.host) if owner else None), True

    def forget(self) -> None:
        """Treat the next poll as changed (after an error was shown instead of data)."""
        self._last = None
        self._cache.clear()

    def close(self) -> None:
        if self.db is not None:
            self.db.conn.close()
            self.db = None
