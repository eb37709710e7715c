"""Plain inputs of the analyses: a finished (or running) study as numbers and labels."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.playbook.outcome import Outcome, Verdict, outcome, reached_end


@dataclass(frozen=True)
class ParamInfo:
    """A search-space dimension as the study file declared it."""

    name: str
    role: str  # "scientific" | "nuisance" | "fixed"
    kind: str  # "float" | "int" | "choice" | "fixed"
    log: bool = False
    low: float | None = None
    high: float | None = None
    values: tuple = ()

    @property
    def numeric(self) -> bool:
        return self.kind in ("float", "int")

    def position(self, x: float) -> float | None:
        """Where x sits in [low, high], 0..1 in the parameter's own scale (log for log parameters).

        None when the range is unknown or empty, or x cannot be placed on it.
        """
        if self.low is None or self.high is None or not isinstance(x, (int, float)):
            return None
        if self.log:
            if x <= 0 or self.low <= 0 or self.high <= 0:
                return None
            lo, hi, v = math.log(self.low), math.log(self.high), math.log(x)
        else:
            lo, hi, v = float(self.low), float(self.high), float(x)
        return None if hi == lo else (v - lo) / (hi - lo)

    def from_position(self, u: float) -> float:
        """The value at position u of the range in its own scale (inverse of `position`; u may be outside 0..1)."""
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return math.exp(lo + u * (hi - lo))
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class TrialResult:
    """One trial: its parameters and what it reached (best objective over its training)."""

    number: int
    state: str  # queued | starting | running | completed | failed | stopped | lost
    params: dict[str, Any]
    reason: str | None = None  # oom | diverged | exit | signal | timeout | config
    feasible: bool | None = None
    best_value: float | None = None
    best_step: int | None = None
    last_step: int | None = None
    started_at: float | None = None  # Unix seconds the process started, when known
    ended_at: float | None = None  # Unix seconds it ended (or last reported, while running)
    max_steps: int | None = None  # the run's length in its own steps, when max_train_steps counts epochs
    # The stored analysis verdict ("failed to train"), for views; the analyses judge afresh.
    verdict: Verdict | None = None

    @property
    def duration_s(self) -> float | None:
        """Wall-clock seconds from start to end (or last report), when both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(self.ended_at - self.started_at, 0.0)

    @property
    def infeasible(self) -> bool:
        """Marked infeasible by the runner (the analysis' verdicts are in StudyData.outcome)."""
        return self.feasible is False


@dataclass(frozen=True)
class StudyData:
    name: str
    objective: str
    mode: str  # "min" | "max"
    max_train_steps: int
    params: tuple[ParamInfo, ...]
    trials: tuple[TrialResult, ...] = field(default_factory=tuple)

    def param(self, name: str) -> ParamInfo:
        return next(p for p in self.params if p.name == name)

    def by_role(self, role: str) -> list[ParamInfo]:
        return [p for p in self.params if p.role == role]

    def better(self, a: float, b: float) -> bool:
        """Whether objective value a beats b."""
        return a < b if self.mode == "min" else a > b

    def outcome(self, t: TrialResult) -> Outcome:
        """The trial's outcome as every view shows it (runner.playbook.outcome)."""
        return outcome(t.state, t.reason, t.feasible, t.last_step, self.max_train_steps, t.verdict)

    def ranked(self) -> list[TrialResult]:
        """Feasible trials with an objective that trained the whole budget, best first.

        A partial trial (stopped or lost before max_train_steps) or one still short of it
        is left out: its objective comes from a shorter run than the others'.
        """
        scored = [t for t in self.trials if t.best_value is not None and not t.infeasible
                  and reached_end(t.state, t.last_step, self.max_train_steps)]
        return sorted(scored, key=lambda t: t.best_value, reverse=self.mode == "max")

    def best_candidates(self) -> list[TrialResult]:
        """`ranked`, less the trials an analysis verdict made infeasible: who may be called best."""
        return [t for t in self.ranked() if self.outcome(t).can_be_best]


@dataclass(frozen=True)
class Curve:
    """One metric of one trial against training step, as the store hands it out (maybe downsampled).

    When the store downsampled the series, each point stands for a bucket of steps:
    `values` holds the last value of the bucket (what a curve draws) and `highs` the
    bucket's largest value, so a spike between two drawn points is never lost.
    None is a non-finite point (NaN or inf). `wall` is seconds since the trial
    started, per point, when the source recorded it (None otherwise).
    """

    trial: int  # trial number within its study
    metric: str
    steps: tuple[int, ...]
    values: tuple[float | None, ...]
    wall: tuple[float, ...] | None = None
    highs: tuple[float | None, ...] | None = None
    total_points: int | None = None  # points stored before downsampling

    def finite(self) -> tuple[list[int], list[float]]:
        """Steps and values of the finite points only, in step order."""
        pairs = [(s, v) for s, v in zip(self.steps, self.values, strict=True)
                 if v is not None and math.isfinite(v)]
        return [s for s, _ in pairs], [v for _, v in pairs]

    @property
    def has_nonfinite(self) -> bool:
        return any(v is None or not math.isfinite(v) for v in self.values)


@dataclass(frozen=True)
class CurveData:
    """The curves an analysis may read, by (trial number, metric name). Missing curves are just absent."""

    curves: Mapping[tuple[int, str], Curve] = field(default_factory=dict)

    @classmethod
    def of(cls, curves: Iterable[Curve]) -> CurveData:
        return cls({(c.trial, c.metric): c for c in curves})

    def get(self, trial: int, metric: str) -> Curve | None:
        return self.curves.get((trial, metric))

    def metrics(self, trial: int) -> list[str]:
        """Names of the metrics loaded for one trial, sorted."""
        return sorted(m for t, m in self.curves if t == trial)

    def __len__(self) -> int:
        return len(self.curves)
