"""Is the search space big enough? Best trials crowding a boundary of a numeric dimension."""

from __future__ import annotations

import math

from runner.playbook.check import Check, fmt
from runner.playbook.data import ParamInfo, StudyData, TrialResult
from runner.playbook.isolation import varied_params

TITLE = "Is the search space big enough?"
# "Outer part" of a range: the outer 10% at each end, measured in the parameter's own
# scale (log for log parameters), the band an axis plot shows as "at the edge".
EDGE_FRACTION = 0.10
# The "best trials": the top 10% of feasible trials by objective, and at least 3, so
# that one lucky trial alone cannot move a boundary.
TOP_FRACTION = 0.10
MIN_TOP = 3
# An edge is crowded when at least half of the best trials sit in its outer band.
CROWDED_SHARE = 0.5
# Suggested new bound: push the crowded edge out by half the current width (own scale):
# for a log range of 3 decades, 1.5 more decades. Enough to see the optimum turn around.
WIDEN_FRACTION = 0.5


def top_count(n_feasible: int) -> int:
    """How many of the best trials the boundary check looks at."""
    return min(n_feasible, max(MIN_TOP, math.ceil(TOP_FRACTION * n_feasible)))


def suggested_bound(p: ParamInfo, side: str) -> float | None:
    """A widened bound for the crowded side ('low' or 'high'); None if it cannot move.

    A linear range starting at or above 0 is not pushed below 0 (rates, probabilities,
    sizes); an int parameter's bound is rounded outward.
    """
    u = -WIDEN_FRACTION if side == "low" else 1 + WIDEN_FRACTION
    value = p.from_position(u)
    if not p.log and side == "low" and p.low >= 0:
        value = max(value, 0.0)
    if p.kind == "int":
        value = math.floor(value) if side == "low" else math.ceil(value)
    current = p.low if side == "low" else p.high
    return None if value == current else value


def _param_boundary(p: ParamInfo, top: list[TrialResult]) -> dict:
    positions = [(t.number, p.position(t.params[p.name])) for t in top if p.name in t.params]
    positions = [(n, u) for n, u in positions if u is not None]
    at_low = [n for n, u in positions if u <= EDGE_FRACTION]
    at_high = [n for n, u in positions if u >= 1 - EDGE_FRACTION]
    need = CROWDED_SHARE * len(positions)
    crowded = None
    if positions and len(at_high) >= need and len(at_high) >= len(at_low):
        crowded = "high"
    elif positions and len(at_low) >= need:
        crowded = "low"
    return {
        "param": p.name, "role": p.role, "log": p.log, "low": p.low, "high": p.high,
        "top_trials": [n for n, _ in positions], "positions": [u for _, u in positions],
        "at_low": at_low, "at_high": at_high, "crowded": crowded,
        "suggested_bound": suggested_bound(p, crowded) if crowded else None,
    }


def search_space_boundary(study: StudyData) -> Check:
    """For every varied numeric parameter with a declared range: do the best trials crowd an edge?"""
    ranked = study.ranked()
    params = [study.param(n) for n in varied_params(study)]
    params = [p for p in params if p.numeric and p.low is not None and p.high is not None]
    k = top_count(len(ranked))
    evidence = {"edge_fraction": EDGE_FRACTION, "top_k": k, "n_feasible": len(ranked), "params": []}
    if not params or not ranked:
        why = "no varied numeric parameter with a range" if not params else "no feasible trial yet"
        return Check("search_space_boundary", TITLE, "n/a", why, evidence)
    rows = [_param_boundary(p, ranked[:k]) for p in params]
    evidence["params"] = rows
    details = tuple(
        f"{r['param']}: best {len(r['positions'])} at "
        + ", ".join(f"{u:.2f}" for u in r["positions"])
        + f" of its range ({'log' if r['log'] else 'linear'}){_crowd_note(r)}"
        for r in rows
    )
    crowded = [r for r in rows if r["crowded"]]
    if not crowded:
        return Check("search_space_boundary", TITLE, "ok",
                     f"the best {k} trials sit inside every range ({len(rows)} numeric parameter(s))",
                     evidence, details=details)
    parts = [f"{r['param']} crowds its {r['crowded']} edge" for r in crowded]
    advice = "; ".join(
        f"widen {r['param']} {r['crowded']} bound {fmt(r[r['crowded']])} -> {fmt(r['suggested_bound'])}"
        if r["suggested_bound"] is not None else f"{r['param']} cannot widen past its {r['crowded']} bound"
        for r in crowded
    ) + ", then run more trials there"
    return Check("search_space_boundary", TITLE, "warning",
                 f"best trials at a boundary: {', '.join(parts)}", evidence, advice, details)


def _crowd_note(row: dict) -> str:
    if not row["crowded"]:
        return ""
    n = len(row[f"at_{row['crowded']}"])
    return f": {n} in the outer {EDGE_FRACTION:.0%} at the {row['crowded']} end"
