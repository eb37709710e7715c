"""The compare screen's data: two studies' best trial per scientific value, and their isolation and
axis plots overlaid (two series, a colour and a marker each). No Textual: read in a worker thread."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.text import printable_line
from store import connect, studies
from tui.data.plots import _natural, _value_label
from tui.data.plotspec import LINE, POINTS, PlotSpec, Series
from tui.data.ticks import nice_ticks, value_kind

# Each study's colour and marker, the same in every plot (the legend names them).
STYLES = (("primary", "dot"), ("warning", "+"))


@dataclass(frozen=True)
class Comparison:
    labels: tuple[str, str] = ("", "")
    objective: str = ""
    note: str = ""  # e.g. the objectives differ
    rows: tuple[tuple[str, str, str, str], ...] = ()  # value, A's best, B's best, which is better
    plots: tuple[PlotSpec, ...] = ()
    error: str | None = None


def read_comparison(db_path: Path, a_id: int, b_id: int) -> Comparison:
    """Both studies from the store, compared (runner.compare_cli), with the overlaid plots' specs."""
    from runner.compare_cli import ALL_TRIALS, better_text, cell_text, compare_report

    db = connect(db_path)
    try:
        pair = [studies.get(db, i) for i in (a_id, b_id)]
        if None in pair:
            return Comparison(error="one of the two studies is gone from the database")
        report = compare_report(db, *pair, with_plots=True)
    finally:
        db.conn.close()
    a, b = report["a"], report["b"]
    labels = (a["label"], b["label"])
    note = "" if report["same_objective"] else (
        f"objectives differ ({a['objective']['metric']} vs {b['objective']['metric']}): not ranked")
    rows = tuple((ALL_TRIALS if r["param"] == ALL_TRIALS else f"{r['param']}={r['value']}",
                  cell_text(r["a"]), cell_text(r["b"]), better_text(report, r)) for r in report["rows"])
    objective, mode = a["objective"]["metric"], a["objective"]["mode"]
    plots_a, plots_b = report["plots"]
    specs = [isolation_overlay(name, (plots_a["isolation"].get(name, ()), plots_b["isolation"].get(name, ())),
                               labels, objective)
             for name in dict.fromkeys((*plots_a["isolation"], *plots_b["isolation"]))]
    specs += [axis_overlay(name, (plots_a["axes"].get(name), plots_b["axes"].get(name)), labels, objective, mode)
              for name in dict.fromkeys((*plots_a["axes"], *plots_b["axes"]))]
    return Comparison(labels, objective, note, rows, tuple(specs))


def isolation_overlay(scientific: str, tables: Sequence[Sequence[Any]], labels: Sequence[str],
                      objective: str) -> PlotSpec:
    """Best objective per scientific value (runner.playbook.isolation.IsolationRow) of both studies,
    on one axis of every value either study has."""
    by_label = {r.label: r for rows in tables for r in rows}
    order = sorted(by_label, key=lambda label: _natural(_first(by_label[label].value)))
    x = {label: float(i + 1) for i, label in enumerate(order)}
    series = []
    for rows, label, (color, marker) in zip(tables, labels, STYLES, strict=True):
        scored = [r for r in rows if r.best_value is not None]
        xs, ys = tuple(x[r.label] for r in scored), tuple(r.best_value for r in scored)
        series += [Series("", xs, ys, color, LINE), Series(label, xs, ys, color, POINTS, marker)]
    ticks = (tuple(x.values()), tuple(_value_label(by_label[label]) for label in order)) if order else None
    return PlotSpec(f"isolation: best {objective} per {scientific}", tuple(series), xticks=ticks,
                    empty=f"no feasible trial with a {objective} yet in either study")


def _first(value: Any) -> Any:
    """A bucket (low, high) sorts by its low end."""
    return value[0] if isinstance(value, tuple) and value else value


def axis_overlay(param: str, axes: Sequence[Any], labels: Sequence[str], objective: str, mode: str) -> PlotSpec:
    """Objective against one parameter (runner.playbook.isolation.AxisData) for both studies; the
    infeasible trials of both as red x's (at their objective, else on the worst edge)."""
    present = [a for a in axes if a is not None]
    categorical = any(a.categorical for a in present)
    log = not categorical and all(a.log for a in present)
    points = [p for a in present for p in a.points]
    position, ticks = _positions(points, categorical, log)
    ys = [p.y for p in points if p.feasible and p.y is not None]
    worst = (max(ys) if mode == "min" else min(ys)) if ys else 0.0
    series = []
    for axis, label, (color, marker) in zip(axes, labels, STYLES, strict=True):
        feasible = [p for p in axis.points if p.feasible and p.y is not None] if axis is not None else []
        series.append(Series(label, tuple(position(p.x) for p in feasible), tuple(p.y for p in feasible),
                             color, POINTS, marker))
    infeasible = [p for p in points if not p.feasible]
    series.append(Series("infeasible", tuple(position(p.x) for p in infeasible),
                         tuple(p.y if p.y is not None else worst for p in infeasible), "error", POINTS, "x"))
    return PlotSpec(f"{objective} vs {param}{' (log)' if log else ''}", tuple(series), xlog=log, xticks=ticks,
                    empty=f"no finished trials to plot against {param} yet")


def _positions(points: Sequence[Any], categorical: bool, log: bool):
    """Numbers as themselves on round ticks; categories (of either study) at 1..n, labelled."""
    if not categorical:
        xs = [float(p.x) for p in points if isinstance(p.x, (int, float)) and math.isfinite(p.x)]
        return (lambda v: float(v)), nice_ticks(min(xs), max(xs), kind=value_kind(xs, log=log)) if xs else None
    values = {str(p.x): p.x for p in points}
    order = sorted(values, key=lambda label: _natural(values[label]))
    index = {label: float(i + 1) for i, label in enumerate(order)}
    return (lambda v: index[str(v)]), (tuple(index.values()), tuple(printable_line(label) for label in order))
