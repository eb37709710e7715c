"""Plain inputs of the analyses: a finished (or running) study as numbers and labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    @property
    def infeasible(self) -> bool:
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

    def ranked(self) -> list[TrialResult]:
        """Feasible trials with an objective, best first."""
        scored = [t for t in self.trials if t.best_value is not None and not t.infeasible]
        return sorted(scored, key=lambda t: t.best_value, reverse=self.mode == "max")
