"""One answered question of the checklist: a verdict, a one-line reason, and the numbers behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["ok", "warning", "problem", "n/a"]

# Severity order for "the worst of these verdicts"; n/a never hides a finding.
_SEVERITY = {"n/a": 0, "ok": 1, "warning": 2, "problem": 3}


@dataclass(frozen=True)
class Check:
    """The answer to one checklist question.

    evidence holds every number the verdict rests on (JSON-able: numbers, strings,
    lists, dicts; non-finite floats become None). details are a few short lines
    for a human reader, drawn from the evidence; advice says what to do next.
    """

    key: str
    title: str
    verdict: Verdict
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str | None = None
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "verdict": self.verdict, "summary": self.summary,
            "advice": self.advice, "details": list(self.details), "evidence": jsonable(self.evidence),
        }


def worst(verdicts: list[str]) -> Verdict:
    """The most severe verdict of several ('n/a' when there are none)."""
    return max(verdicts, key=_SEVERITY.__getitem__, default="n/a")  # type: ignore[return-value]


def jsonable(value: Any) -> Any:
    """value with numpy scalars made plain, tuples made lists, NaN/inf made None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def fmt(x: float | None) -> str:
    """A number for a one-line summary: 4 significant digits, '-' for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.4g}"
