"""From exploration to exploitation: the refined search space, proposed from where the good trials lie.

The playbook ends exploration with a Bayesian-optimization study over a refined space. The
proposal here narrows each nuisance range to the span of the best quarter of the trials (at least
MIN_GOOD of them), in the parameter's own scale, widened by WIDEN of that span on each side (at
least MIN_PAD of the old range) and never past the old bounds: exploitation searches where
exploration found the good region, and the boundary check must already have said that region
is not against an edge. A categorical nuisance parameter keeps the values the good trials used.
Scientific and fixed parameters are left as they were. Pure: StudyData in, proposal out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from runner.playbook.data import ParamInfo, StudyData, TrialResult

TOP_SHARE = 0.25
MIN_GOOD = 3
WIDEN = 0.1
MIN_PAD = 0.05


@dataclass(frozen=True)
class RangeProposal:
    param: str
    old: dict[str, Any]  # {"low", "high"} or {"values"}
    new: dict[str, Any]
    n_good: int  # good trials that set this parameter


def good_trials(study: StudyData) -> list[TrialResult]:
    """The best quarter of the trials that may be called best (at least MIN_GOOD, when there are)."""
    ranked = study.best_candidates()
    return ranked[:max(MIN_GOOD, math.ceil(TOP_SHARE * len(ranked)))]


def propose_space(study: StudyData) -> list[RangeProposal]:
    """A proposal for every nuisance parameter the good trials set (the others stay as they are)."""
    good = good_trials(study)
    out = []
    for p in study.by_role("nuisance"):
        seen = [t.params[p.name] for t in good if p.name in t.params]
        if not seen:
            continue
        if p.kind == "choice":
            out.append(RangeProposal(p.name, {"values": list(p.values)},
                                     {"values": [v for v in p.values if v in seen]}, len(seen)))
        elif p.numeric and p.low is not None and p.high is not None:
            out.append(RangeProposal(p.name, {"low": p.low, "high": p.high}, _narrowed(p, seen), len(seen)))
    return out


def _narrowed(p: ParamInfo, seen: list[float]) -> dict[str, Any]:
    positions = [u for u in (p.position(v) for v in seen) if u is not None]
    if not positions:
        return {"low": p.low, "high": p.high}
    lo, hi = min(positions), max(positions)
    pad = max(WIDEN * (hi - lo), MIN_PAD)
    low, high = p.from_position(max(0.0, lo - pad)), p.from_position(min(1.0, hi + pad))
    if p.kind == "int":
        low, high = max(math.floor(low), int(p.low)), min(math.ceil(high), int(p.high))
        return {"low": int(low), "high": int(high)}
    return {"low": max(_six(low), p.low), "high": min(_six(high), p.high)}


def _six(x: float) -> float:
    """Six significant digits, as the searches write values."""
    return float(f"{x:.6g}")
