"""Loading a study from the store as the analyses' plain data (runner.playbook.data)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlite_utils import Database

from runner.playbook.checklist import ChecklistOptions, reads_metric
from runner.playbook.data import Curve, CurveData, ParamInfo, StudyData, TrialResult
from runner.playbook.gradients import exact_norm_trials
from runner.printed import progress_totals
from runner.spec import ParamSpec, SpecError, StudySpec, parse
from store import capture, trials
from store import metrics as metric_store
from store.studies import Study


def _param_info(p: ParamSpec) -> ParamInfo:
    return ParamInfo(p.name, p.role, p.kind, p.is_log, p.low, p.high, tuple(p.values))


def stored_spec(study: Study) -> StudySpec:
    """The study's config as stored with it (the file may have changed or moved since).

    Raises SpecError if it no longer validates (e.g. its workdir is gone).
    """
    return parse(tomllib.loads(study.config_text), path=Path(study.config_path), text=study.config_text)


def param_infos(study: Study) -> tuple[ParamInfo, ...]:
    """The search space from the config stored with the study."""
    try:
        spec = stored_spec(study)
    except (SpecError, tomllib.TOMLDecodeError):
        return ()
    return tuple(_param_info(p) for p in spec.params)


def make_study_data(study: Study, results: Iterable[TrialResult]) -> StudyData:
    """The analyses' view of a study, from trial results already at hand."""
    return StudyData(study.name, study.objective_metric, study.objective_mode, study.max_train_steps,
                     param_infos(study), tuple(results))


def load_study_data(db: Database, study: Study) -> StudyData:
    totals = progress_totals(capture.for_study(db, study.id))  # where max_train_steps counts epochs
    return make_study_data(study, (
        TrialResult(
            number=t.number, state=t.state.value, params=t.params, reason=t.reason,
            feasible=None if t.feasible is None else bool(t.feasible),
            best_value=t.best_value, best_step=t.best_step, last_step=t.last_step,
            started_at=t.started_at, ended_at=t.ended_at or t.last_report_at, max_steps=totals.get(t.id),
        )
        for t in trials.list_for_study(db, study.id)
    ))


# Points per curve read for the analyses. Noise comes from the bucket values (a sample of
# every step), spikes from the bucket highs: 500 keeps both sound while a 100-trial study
# still loads in about a second. The gradient-norm percentiles are read at full resolution.
CURVE_POINTS = 500


def load_curves(
    db: Database,
    study: Study,
    trial_numbers: Iterable[int] | None = None,
    metrics: Iterable[str] | Callable[[str], bool] | None = None,
    max_points: int | None = CURVE_POINTS,
) -> CurveData:
    """Curves of some trials (all by default) and metrics (a list, a predicate, or every reported one).

    Downsampled in the store to `max_points` buckets (see store.metrics.read_series); every
    point when max_points is None.
    Curve.wall is seconds since the trial started, where every point has a reported
    wall time (points captured from stdout get the ingest time; None otherwise).
    """
    wanted = set(trial_numbers) if trial_numbers is not None else None
    if metrics is None or callable(metrics):
        keep = metrics or (lambda _name: True)
    else:
        names = set(metrics)
        keep = names.__contains__
    out = []
    for t in trials.list_for_study(db, study.id):
        if wanted is not None and t.number not in wanted:
            continue
        for name in metric_store.metric_names(db, t.id):
            if not keep(name):
                continue
            s = (metric_store.read_all(db, t.id, name) if max_points is None
                 else metric_store.read_series(db, t.id, name, max_points))
            out.append(Curve(t.number, name, tuple(s.steps), tuple(s.values),
                             _since_start(s.walls, t.started_at), tuple(s.highs), s.total_points))
    return CurveData.of(out)


def _since_start(walls: list[float | None], started_at: float | None) -> tuple[float, ...] | None:
    if started_at is None or not walls or any(w is None for w in walls):
        return None
    return tuple(max(0.0, w - started_at) for w in walls)


def load_checklist_inputs(db: Database, study: Study,
                          options: ChecklistOptions | None = None) -> tuple[StudyData, CurveData]:
    """The study and the curves the checklist reads (objective, losses, grad norm, compute metrics)."""
    data = load_study_data(db, study)
    curves = load_curves(db, study, metrics=lambda name: reads_metric(name, study.objective_metric, options))
    # The clipping threshold is a percentile over every step: those trials' norms at full resolution.
    grad_metric = (options or ChecklistOptions()).grad_metric
    exact = load_curves(db, study, exact_norm_trials(data), [grad_metric], max_points=None)
    return data, CurveData({**curves.curves, **exact.curves})
