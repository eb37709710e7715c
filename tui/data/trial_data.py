"""One trial in full, read from the store and its folder as frozen data (no Textual here).

Runs in the poller thread, like tui.data.snapshot: curves come downsampled from the
store, and the gradient-norm percentiles are computed here, never in a widget.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from runner.printed import capture_record
from runner.process import TrialPaths
from store import capture, metrics, trials

CURVE_POINTS = 400  # buckets per curve: a wide terminal's plot width, twice over
GRAD_METRIC = "grad_norm"


@dataclass(frozen=True)
class Points:
    """A downsampled metric (see store.metrics.read_series), non-finite points dropped."""

    name: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    total: int  # points stored, before downsampling

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    @property
    def downsampled(self) -> bool:
        return self.total > len(self.steps)


def read_points(db: Database, trial_id: int, name: str, max_points: int = CURVE_POINTS) -> Points:
    series = metrics.read_series(db, trial_id, name, max_points=max_points)
    keep = [i for i, v in enumerate(series.values) if v is not None and math.isfinite(v)]

    def pick(values: list) -> tuple:
        return tuple(values[i] if values[i] is not None else series.values[i] for i in keep)

    return Points(name, tuple(series.steps[i] for i in keep), pick(series.values),
                  pick(series.lows), pick(series.highs), series.total_points)


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: str
    objective: float | None


@dataclass(frozen=True)
class GradStats:
    """Gradient norms over every logged step: the 90th percentile (the clipping threshold) and a
    histogram, both from runner.playbook.gradients, so `analyze` gives the same numbers."""

    p90: float
    edges: tuple[float, ...]  # log-spaced bin edges from the smallest to the largest positive norm
    counts: tuple[int, ...]
    sampled: int  # finite norms the statistics used: every one logged


@dataclass(frozen=True)
class TrialDetail:
    id: int
    study_id: int
    number: int
    state: str
    reason: str | None
    detail: str | None
    feasible: int | None
    params: dict[str, Any]
    roles: dict[str, str]
    argv: tuple[str, ...]
    cwd: str | None
    slot: str | None
    host: str | None
    pid: int | None
    exit_code: int | None
    started_at: float | None
    ended_at: float | None
    last_step: int | None
    best_value: float | None
    best_step: int | None
    trial_dir: str
    metric_names: tuple[str, ...] = ()
    metric: Points | None = None  # the chosen metric's curve
    grad: Points | None = None
    grad_stats: GradStats | None = None
    checkpoints: tuple[Checkpoint, ...] = ()
    best_checkpoint: int | None = None  # step of the checkpoint with the best objective
    bad_lines: int = 0  # metric lines ingest dropped (malformed, or more than the store holds)
    bad_line_sample: str | None = None  # the first of them, with why
    out_of_order: int = 0  # reported points merged at a step their series already had
    out_of_order_sample: str | None = None  # the first of them, described
    capture_notes: tuple[str, ...] = ()  # printed lines repeated, dropped or never matched (runner.printed)
    outcome: Any = None  # runner.playbook.outcome.Outcome with the analysis' verdict (set by tui.data.snapshot)


def read_trial_detail(db: Database, trial_id: int, metric: str | None, objective: str,
                      mode: str) -> TrialDetail | None:
    """The trial, its command, its chosen metric (default: the objective), gradients, checkpoints."""
    t = trials.get(db, trial_id)
    if t is None:
        return None
    names = tuple(metrics.metric_names(db, trial_id))
    chosen = metric if metric in names else (objective if objective in names else next(iter(names), None))
    argv, cwd = _command(t.trial_dir, t.argv)
    checkpoints = tuple(Checkpoint(c["step"], c["path"], c["objective"])
                        for c in metrics.checkpoints(db, trial_id))
    grad = read_points(db, trial_id, GRAD_METRIC) if GRAD_METRIC in names else None
    return TrialDetail(
        id=t.id, study_id=t.study_id, number=t.number, state=t.state.value, reason=t.reason,
        detail=t.detail, feasible=t.feasible, params=_params(t.params_json), roles=_roles(db, trial_id),
        argv=argv, cwd=cwd, slot=t.slot, host=t.host, pid=t.pid, exit_code=t.exit_code,
        started_at=t.started_at, ended_at=t.ended_at, last_step=t.last_step, best_value=t.best_value,
        best_step=t.best_step, trial_dir=t.trial_dir, metric_names=names,
        metric=read_points(db, trial_id, chosen) if chosen else None,
        grad=grad, grad_stats=_grad_stats(db, trial_id) if grad else None,
        checkpoints=checkpoints, best_checkpoint=best_checkpoint(checkpoints, mode),
        bad_lines=t.bad_lines, bad_line_sample=t.bad_line_sample,
        out_of_order=t.out_of_order, out_of_order_sample=t.out_of_order_sample,
        capture_notes=tuple((capture_record(capture.load(db, trial_id), finished=t.state.is_finished())
                             or {}).get("notes", ())),
    )


def _params(params_json: str) -> dict[str, Any]:
    try:
        value = json.loads(params_json)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _roles(db: Database, trial_id: int) -> dict[str, str]:
    return trials.param_roles(db, trial_id=trial_id)


def _command(trial_dir: str, argv: list[str]) -> tuple[tuple[str, ...], str | None]:
    """The command as run (command.json, written at spawn), else as planned (the stored argv)."""
    try:
        ran = json.loads(TrialPaths(Path(trial_dir)).command.read_text())
        return tuple(str(a) for a in ran["argv"]), ran.get("cwd")
    except (OSError, ValueError, KeyError, TypeError):
        return tuple(str(a) for a in argv), None


def best_checkpoint(checkpoints: tuple[Checkpoint, ...], mode: str) -> int | None:
    """The retrospectively best checkpoint: best objective, the earlier one on ties."""
    scored = [c for c in checkpoints if c.objective is not None and math.isfinite(c.objective)]
    if not scored:
        return None
    sign = 1 if mode == "min" else -1
    return min(scored, key=lambda c: (sign * c.objective, c.step)).step


def _grad_stats(db: Database, trial_id: int) -> GradStats | None:
    # Imported here, in the poller thread: the app's first frame never waits on numpy.
    from runner.playbook.gradients import clip_threshold, histogram

    norms = [v for v in metrics.read_all(db, trial_id, GRAD_METRIC).values
             if v is not None and math.isfinite(v)]
    p90 = clip_threshold(norms)
    if p90 is None:
        return None
    hist = histogram(norms)
    return GradStats(p90, tuple(hist["edges"]), tuple(hist["counts"]), len(norms))
