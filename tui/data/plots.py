"""What each plot shows, as PlotSpecs built from snapshot data (pure: no Textual, no plotext).

The playbook's plots: training curves overlaid, objective against each varied
parameter (axis plots), the best objective per scientific value (isolation), and
the checklist's where-is-the-best-step histogram and compute axis; on the trial
screen, any metric's curve and the gradient norms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from runner.text import printable_line
from tui.data.plotspec import BARS, COLORS, LINE, POINTS, PlotSpec, Series
from tui.data.ticks import Kind, Ticks, nice_ticks, short, value_kind
from tui.data.trial_data import GradStats, Points

# Curves take these in turn; "error" is kept for infeasible points and thresholds.
CURVE_COLORS = tuple(c for c in COLORS if c != "error")


def _step_ticks(series: Sequence[Series], kind: Kind = "int") -> Ticks | None:
    """Steps are whole numbers: never a tick at step 2.5."""
    xs = [x for s in series for x in s.xs if math.isfinite(x)]
    return nice_ticks(min(xs), max(xs), kind=kind) if xs else None


def curves_spec(overlay: Sequence[Any], objective: str) -> PlotSpec:
    """Training and validation curves of some trials (tui.data.snapshot.TrialCurves), one color each line."""
    series = []
    for trial in overlay:
        for points in trial.curves:
            if points.steps:
                color = CURVE_COLORS[len(series) % len(CURVE_COLORS)]
                series.append(Series(f"#{trial.number} {points.name}", points.steps, points.values, color))
    names = sorted({p.name for t in overlay for p in t.curves if p.steps})
    title = " & ".join(names) + " vs step" if names else "training curves"
    return PlotSpec(title, tuple(series), xticks=_step_ticks(series),
                    empty=f"no curves yet for {_numbers(overlay)}" if overlay else "no trial highlighted")


def _numbers(overlay: Sequence[Any]) -> str:
    return ", ".join(f"#{t.number}" for t in overlay)


def axis_spec(axis: Any, objective: str, mode: str) -> PlotSpec:
    """Objective against one varied parameter (runner.playbook.isolation.AxisData).

    Infeasible trials are data: a red x, at their objective if they reported one,
    else on the worst edge of the plot.
    """
    feasible = [p for p in axis.points if p.feasible and p.y is not None]
    infeasible = [p for p in axis.points if not p.feasible]
    ys = [p.y for p in feasible]
    worst = (max(ys) if mode == "min" else min(ys)) if ys else 0.0
    position, ticks = _x_positions(axis)
    series = (
        Series("feasible", tuple(position(p.x) for p in feasible), tuple(ys), "primary", POINTS, "dot"),
        Series("infeasible", tuple(position(p.x) for p in infeasible),
               tuple(p.y if p.y is not None else worst for p in infeasible), "error", POINTS, "x"),
    )
    scale = " (log)" if axis.log and not axis.categorical else ""
    return PlotSpec(f"{objective} vs {axis.param}{scale} · {axis.role}", series,
                    xlog=axis.log and not axis.categorical, xticks=ticks,
                    empty=f"no finished trials to plot against {axis.param} yet")


def _x_positions(axis: Any):
    """Numbers as themselves, on round ticks of the parameter's kind; categories at 1..n, labelled."""
    if not axis.categorical:
        xs = [p.x for p in axis.points if isinstance(p.x, (int, float)) and math.isfinite(p.x)]
        kind = value_kind(xs, log=axis.log)
        return (lambda x: float(x)), nice_ticks(min(xs), max(xs), kind=kind) if xs else None
    values = {str(p.x): p.x for p in axis.points}
    labels = sorted(values, key=lambda label: _natural(values[label]))
    index = {label: i + 1 for i, label in enumerate(labels)}
    # Labels are parameter values as the study file wrote them: shown, never interpreted.
    shown = tuple(printable_line(label) for label in labels)
    return (lambda x: float(index[str(x)])), (tuple(float(i) for i in index.values()), shown)


def _natural(value: Any) -> tuple:
    """Numbers in numeric order, before anything else in text order (32 < 128 < 512 < 'wide')."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def isolation_spec(scientific: str, rows: Sequence[Any], objective: str) -> PlotSpec:
    """Best objective per scientific value, over the nuisance parameters (IsolationRow)."""
    scored = [(i + 1, r) for i, r in enumerate(rows) if r.best_value is not None]
    xs = tuple(float(i) for i, _ in scored)
    ys = tuple(r.best_value for _, r in scored)
    ticks = (tuple(float(i + 1) for i in range(len(rows))), tuple(_value_label(r) for r in rows))
    series = (Series("", xs, ys, "success", LINE),
              Series(f"best {objective}", xs, ys, "success", POINTS, "dot"))
    return PlotSpec(f"isolation: best {objective} per {scientific}", series, xticks=ticks if rows else None,
                    empty=f"no feasible trial with a {objective} yet")


def _value_label(row: Any) -> str:
    """A scientific value as a tick label: numbers short (1k, 2.5e-4), a bucket as its two ends."""
    value = row.value
    if isinstance(value, tuple) and len(value) == 2 and all(_is_number(v) for v in value):
        return f"{short(value[0])}..{short(value[1])}"
    return short(value) if _is_number(value) and not isinstance(value, int) else printable_line(row.label)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_spec(points: Points | None) -> PlotSpec:
    """One metric's curve; when downsampled, each bucket's min and max too (spikes stay visible)."""
    if points is None:
        return PlotSpec("metrics", empty="this trial has reported no metric yet")
    series = [Series(points.name, points.steps, points.values, "primary")]
    if points.downsampled:
        series += [Series("bucket max", points.steps, points.highs, "secondary"),
                   Series("bucket min", points.steps, points.lows, "accent")]
    title = f"{points.name} vs step ({len(points.steps)} of {points.total} points shown)" \
        if points.downsampled else f"{points.name} vs step"
    return PlotSpec(title, tuple(series[::-1]), xticks=_step_ticks(series))


def grad_curve_spec(points: Points | None, stats: GradStats | None) -> PlotSpec:
    """The gradient norm over training, with its 90th percentile as a horizontal line."""
    if points is None or not points.steps:
        return PlotSpec("gradient norm", empty="this trial reports no grad_norm")
    series = [Series(points.name, points.steps, points.values, "primary")]
    if stats is not None:
        series.append(Series(f"p90 {stats.p90:.4g}", (points.steps[0], points.steps[-1]),
                             (stats.p90, stats.p90), "error"))
    return PlotSpec(f"{points.name} vs step", tuple(series), xticks=_step_ticks(series))


def grad_hist_spec(stats: GradStats | None) -> PlotSpec:
    """Histogram of gradient norms on log-spaced bins, drawn over log10(norm) with the norms as tick
    labels, the p90 marked (the playbook's clipping threshold); the same bins `analyze` reports."""
    if stats is None or not stats.counts:
        return PlotSpec("gradient norm histogram", empty="no finite gradient norms")
    logs = [math.log10(e) for e in stats.edges]
    centers = tuple((a + b) / 2 for a, b in zip(logs, logs[1:], strict=False))
    decades = tuple(float(d) for d in range(math.ceil(logs[0]), math.floor(logs[-1]) + 1))
    positions = decades if len(decades) >= 2 else nice_ticks(logs[0], logs[-1])[0]  # log10(norm) units
    return PlotSpec(f"grad_norm histogram ({stats.sampled} steps, log bins)",
                    (Series("", centers, tuple(float(c) for c in stats.counts), "primary", BARS),),
                    xticks=(positions, tuple(f"{10 ** t:.3g}" for t in positions)),
                    vlines=((math.log10(stats.p90), f"p90 {stats.p90:.4g}", "error"),))


def best_steps_spec(best: Any) -> PlotSpec:
    """Histogram of best_step / max_train_steps (tui.data.checklist.BestSteps), the playbook's marks drawn:
    best steps all in the first 10% -> train less; all in the last 25% -> train longer."""
    title = "best step / max_train_steps"
    if not best.counts:
        return PlotSpec(title, empty=best.note or "no completed trials yet")
    centers = tuple((a + b) / 2 for a, b in zip(best.edges, best.edges[1:], strict=False))
    ticks = tuple(best.edges[::2])
    return PlotSpec(f"{title} ({best.trials} completed trials)",
                    (Series("", centers, tuple(float(c) for c in best.counts), "primary", BARS),),
                    xticks=(ticks, tuple(f"{t:.0%}" for t in ticks)),
                    vlines=((best.early, f"first {best.early:.0%}", "warning"),
                            (best.late, f"last {1 - best.late:.0%}", "warning")))


def compute_spec(view: Any, objective: str) -> PlotSpec:
    """The objective of the best trial of each scientific value on the compute axis
    (tui.data.checklist.ComputeView), and the frontier: the best objective any trial reached by compute c."""
    series = [Series(f"#{c.trial} {c.group}", c.compute, c.values, CURVE_COLORS[i % len(CURVE_COLORS)])
              for i, c in enumerate(view.curves)]
    xs = [x for c in view.curves for x in c.compute]
    if view.frontier:  # first, so the trials' curves are drawn over it where they touch
        fx, fy = staircase(view.frontier, max(xs, default=view.frontier[-1][0]))
        series.insert(0, Series("best by compute", fx, fy, "foreground"))
    unit = "no compute measure reported" if view.axis == "steps" else view.unit
    return PlotSpec(f"{objective} vs {view.axis} ({unit})", tuple(series),
                    xticks=_step_ticks(series, "int" if view.axis == "steps" else "linear"),
                    empty=view.note or f"no {objective} curves yet")


def staircase(points: Sequence[tuple[float, float]], end: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A frontier of (compute, best so far) drawn as steps: flat until the next improvement, on to `end`."""
    xs: list[float] = []
    ys: list[float] = []
    for x, y in points:
        if ys:
            xs.append(x)
            ys.append(ys[-1])
        xs.append(x)
        ys.append(y)
    if xs and end > xs[-1]:
        xs.append(end)
        ys.append(ys[-1])
    return tuple(xs), tuple(ys)
