"""Axis-plot and isolation-plot data: the playbook's fair comparison of scientific values."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from runner.playbook.check import Check
from runner.playbook.data import StudyData, TrialResult


@dataclass(frozen=True)
class AxisPoint:
    trial: int
    x: Any  # the parameter's value (a number, or a category)
    y: float | None  # best objective reached; None when it never reported one (e.g. diverged at once)
    feasible: bool  # infeasible points are drawn, distinctly: they are data
    reason: str | None  # why it is infeasible (runner reason or analysis verdict)
    partial: bool = False  # stopped or lost before max_train_steps: not comparable with the others


@dataclass(frozen=True)
class AxisData:
    """Objective against one varied parameter, every finished trial included."""

    param: str
    role: str
    log: bool
    categorical: bool
    points: tuple[AxisPoint, ...]


def varied_params(study: StudyData) -> list[str]:
    """Parameters that take more than one value across the study's trials."""
    names = []
    for p in study.params:
        if p.role == "fixed":
            continue
        seen = {repr(t.params[p.name]) for t in study.trials if p.name in t.params}
        if len(seen) > 1:
            names.append(p.name)
    return names


def _finished(study: StudyData) -> list[TrialResult]:
    return [t for t in study.trials if t.state in ("completed", "failed", "stopped", "running")]


def axis_plot_data(study: StudyData) -> list[AxisData]:
    """One AxisData per varied parameter (log axis where the parameter is log-scaled)."""
    out = []
    for name in varied_params(study):
        p = study.param(name)
        points = []
        for t in _finished(study):
            o = study.outcome(t)
            if name in t.params and (t.best_value is not None or o.infeasible):
                points.append(AxisPoint(t.number, t.params[name], t.best_value, not o.infeasible,
                                        o.verdict.label if o.verdict else t.reason, o.partial))
        points = tuple(points)
        out.append(AxisData(name, p.role, p.log, not p.numeric, points))
    return out


@dataclass(frozen=True)
class IsolationRow:
    """The best trial over the nuisance parameters for one scientific value (or bucket)."""

    value: Any  # the scientific value, or a (low, high) bucket of a continuous one
    label: str
    best_trial: int | None
    best_value: float | None
    n_trials: int
    n_feasible: int


def scientific_key(study: StudyData, trial: TrialResult) -> tuple:
    """The trial's scientific values, in declaration order (its group in the isolation plot)."""
    return tuple(trial.params.get(p.name) for p in study.by_role("scientific"))


def best_per_scientific(study: StudyData) -> dict[tuple, TrialResult]:
    """For each combination of scientific values, its best feasible trial that trained the whole budget."""
    best: dict[tuple, TrialResult] = {}
    for t in study.best_candidates():
        best.setdefault(scientific_key(study, t), t)
    return best


def _bucketer(study: StudyData, name: str, buckets: int):
    """(edges, index_of): equal-width buckets in the parameter's own scale (log or linear)."""
    p = study.param(name)
    xs = [t.params[name] for t in study.trials if name in t.params]
    lo, hi = (p.low, p.high) if p.low is not None else (min(xs), max(xs))
    scale = math.log if p.log else float
    s_lo, s_hi = scale(lo), scale(hi)
    width = (s_hi - s_lo) / buckets or 1.0
    edges = [lo + (hi - lo) * i / buckets for i in range(buckets + 1)]
    if p.log:
        edges = [math.exp(s_lo + width * i) for i in range(buckets + 1)]

    def index_of(x: float) -> int:
        return min(max(int((scale(x) - s_lo) / width), 0), buckets - 1)

    return edges, index_of


def isolation_data(study: StudyData, scientific: str | None = None, buckets: int = 5) -> list[IsolationRow]:
    """Best objective per value of one scientific parameter, over everything else.

    A numeric scientific parameter with more distinct values than `buckets` is
    bucketed (in its own scale). Rows are in the parameter's order.
    """
    sci = [p.name for p in study.by_role("scientific")]
    if scientific is None:
        if not sci:
            return []
        scientific = sci[0]
    p = study.param(scientific)
    trials = [t for t in study.trials if scientific in t.params]
    distinct = sorted({t.params[scientific] for t in trials}, key=_order_key)
    if p.numeric and len(distinct) > buckets:
        edges, index_of = _bucketer(study, scientific, buckets)
        groups = [((edges[i], edges[i + 1]), f"{edges[i]:.3g}..{edges[i + 1]:.3g}",
                   [t for t in trials if index_of(t.params[scientific]) == i])
                  for i in range(buckets)]
    else:
        groups = [(v, str(v), [t for t in trials if t.params[scientific] == v]) for v in distinct]
    rows = []
    for value, label, members in groups:
        ranked = dataclasses.replace(study, trials=tuple(members)).best_candidates()
        rows.append(IsolationRow(
            value=value, label=label,
            best_trial=ranked[0].number if ranked else None,
            best_value=ranked[0].best_value if ranked else None,
            n_trials=len(members), n_feasible=sum(1 for t in members if study.outcome(t).feasible),
        ))
    return rows


def _order_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def scientific_label(study: StudyData, trial: TrialResult) -> str:
    """The trial's scientific values as 'name=value, ...' ('all trials' when the study has none)."""
    names = [p.name for p in study.by_role("scientific")]
    if not names:
        return "all trials"
    return ", ".join(f"{n}={trial.params.get(n)}" for n in names)


ISOLATION_TITLE = "Isolation: the best trial of each scientific value (axis plots included)"


def isolation_check(study: StudyData) -> Check:
    """Isolation rows for every scientific parameter, and axis-plot data for every varied one.

    Warning when some scientific value has no feasible trial: that comparison cannot be made.
    """
    axes = axis_plot_data(study)
    tables = {p.name: isolation_data(study, p.name) for p in study.by_role("scientific")}
    evidence = {
        "isolation": {name: [dataclasses.asdict(r) for r in rows] for name, rows in tables.items()},
        "axis_plots": [dataclasses.asdict(a) for a in axes],
    }
    details = tuple(
        f"{name} = {r.label}: " + (f"best {r.best_value:.4g} (trial {r.best_trial})" if r.best_trial is not None
                                   else "no feasible trial") + f", {r.n_feasible}/{r.n_trials} feasible"
        for name, rows in tables.items() for r in rows)
    if not tables:
        return Check("isolation", ISOLATION_TITLE, "n/a",
                     f"no scientific parameter; axis plots for {len(axes)} varied parameter(s)", evidence,
                     details=details)
    empty = [f"{name}={r.label}" for name, rows in tables.items() for r in rows if r.best_trial is None]
    if empty:
        return Check("isolation", ISOLATION_TITLE, "warning",
                     f"no feasible trial for {', '.join(empty)}: that comparison cannot be made", evidence,
                     "run trials for the missing values (or reshape their nuisance ranges)", details)
    name, rows = next(iter(tables.items()))
    best = min(rows, key=lambda r: r.best_value) if study.mode == "min" else max(rows, key=lambda r: r.best_value)
    return Check("isolation", ISOLATION_TITLE, "ok",
                 f"every scientific value has a tuned best trial; best {name} = {best.label} "
                 f"({study.objective} {best.best_value:.4g}, trial {best.best_trial})", evidence, details=details)
