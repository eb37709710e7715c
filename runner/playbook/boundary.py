"""Is the search space big enough? The best trials pushing against a boundary of a numeric dimension.

Two kinds of evidence, either of which is enough, both stated in the check's JSON:
- one of the 2 best trials sits in the outer band of a range AND the other trials improve
  toward that edge (Kendall rank correlation of objective and position, exact one-sided
  p-value from scipy.stats). This works with few trials: with 8 quasi-random points a best trial
  sits at the edge and the trend is clear whenever the optimum lies beyond the range, while
  a mid-range optimum never puts a best trial at the edge, and a dimension that does not
  matter rarely shows a trend (tests/playbook/test_boundary.py measures both rates);
- more of the best trials crowd one outer band than chance would put there (3 of the top
  3, 4 of the top 10, ...: a binomial tail), the classic reading of an axis plot.
"""

from __future__ import annotations

import math
import warnings

from runner.playbook.check import Check, fmt
from runner.playbook.data import ParamInfo, StudyData, TrialResult
from runner.playbook.isolation import varied_params

TITLE = "Is the search space big enough?"
# "Outer part" of a range: the outer 10% at each end, measured in the parameter's own
# scale (log for log parameters), the band an axis plot shows as "at the edge".
EDGE_FRACTION = 0.10
# With few trials the points sit about 1/n apart (quasi-random points are evenly spread,
# not exactly on a grid), so the outermost trial is "at the edge" when it lies within 1.5
# spacings of it: the band widens to 1.5/n below 15 trials.
EDGE_SPACINGS = 1.5
# The trend toward an edge counts when a one-sided Kendall test says so at this level.
TREND_ALPHA = 0.05
MIN_TREND_TRIALS = 4  # fewer trials left for the trend: no rank correlation to speak of
# The edge evidence looks at the 2 best trials: with noise the single best one often sits one
# point in from the outermost. The trend is then measured over the other trials only, so the
# two pieces of evidence are independent (a dimension that does not matter passes both by
# chance about 2 x band x alpha of the time, 1-3%).
EDGE_TOP = 2
# The "best trials": the top 10% of feasible trials by objective, and at least 3, so
# that one lucky trial alone cannot move a boundary.
TOP_FRACTION = 0.10
MIN_TOP = 3
# An edge is crowded when more of the best trials sit in its outer band than chance would put
# there: the binomial tail P(X >= k) for k of the best m in a band holding EDGE_FRACTION of
# the range, doubled for the two ends, is below TREND_ALPHA (3 of 3, 3 of 4, 4 of 10, ...).
# Suggested new bound: push the crowded edge out by half the current width (own scale):
# for a log range of 3 decades, 1.5 more decades. Enough to see the optimum turn around.
WIDEN_FRACTION = 0.5


def top_count(n_feasible: int) -> int:
    """How many of the best trials the boundary check looks at."""
    return min(n_feasible, max(MIN_TOP, math.ceil(TOP_FRACTION * n_feasible)))


def edge_band(n_feasible: int) -> float:
    """The outer band (share of the range at each end) the best trial must sit in to be 'at the edge'."""
    return max(EDGE_FRACTION, EDGE_SPACINGS / max(n_feasible, 1))


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


def trend_toward_high(positions: list[float], goodness: list[float]) -> tuple[float | None, float | None, float | None]:
    """(tau, one-sided p for "better toward the high end", one-sided p for "better toward the low end").

    Kendall's rank correlation of position and goodness (higher = better), whose p-value
    scipy computes exactly for small samples (Spearman's is a t approximation, too
    confident with 5 trials); None when it is undefined (too few trials, no variation).
    """
    if len(positions) < MIN_TREND_TRIALS or len(set(positions)) < 2 or len(set(goodness)) < 2:
        return None, None, None
    from scipy import stats  # here, not at import: the runner imports this module, and scipy costs ~0.3 s

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ties make scipy fall back to its approximation, with a warning
        up = stats.kendalltau(positions, goodness, alternative="greater")
        down = stats.kendalltau(positions, goodness, alternative="less")
    tau = float(up.statistic)
    if not math.isfinite(tau):
        return None, None, None
    return tau, float(up.pvalue), float(down.pvalue)


LEAD_RULE = f"one of the best {EDGE_TOP} trials at the edge, the other trials improving toward it"
CROWD_RULE = "more of the best trials in the outer band than chance puts there"


def crowd_p(k: int, m: int) -> float:
    """Chance that k or more of m trials land in one end's outer band when position does not matter."""
    from scipy import stats  # see trend_toward_high

    return min(1.0, 2 * float(stats.binom.sf(k - 1, m, EDGE_FRACTION))) if m else 1.0


def _param_boundary(p: ParamInfo, ranked: list[TrialResult], k: int, sign: float) -> dict:
    """The evidence for one parameter; `ranked` is best first, sign turns the objective into goodness.

    The trend is measured over the trials other than the EDGE_TOP best, so it is evidence
    apart from where those sit (the same trials cannot make both).
    """
    placed = [(t, p.position(t.params[p.name])) for t in ranked if p.name in t.params]
    placed = [(t, u) for t, u in placed if u is not None]
    top = placed[:k]
    at_low = [t.number for t, u in top if u <= EDGE_FRACTION]
    at_high = [t.number for t, u in top if u >= 1 - EDGE_FRACTION]
    band = edge_band(len(placed))
    others = placed[EDGE_TOP:]
    tau, p_high, p_low = trend_toward_high([u for _, u in others], [sign * t.best_value for t, _ in others])
    best_number, best_u = (placed[0][0].number, placed[0][1]) if placed else (None, None)
    lead = [u for _, u in placed[:EDGE_TOP]]
    crowd_p_high, crowd_p_low = crowd_p(len(at_high), len(top)), crowd_p(len(at_low), len(top))
    side, rule = None, None
    if lead and max(lead) >= 1 - band and p_high is not None and p_high < TREND_ALPHA:
        side, rule = "high", LEAD_RULE
    elif lead and min(lead) <= band and p_low is not None and p_low < TREND_ALPHA:
        side, rule = "low", LEAD_RULE
    elif at_high and crowd_p_high < TREND_ALPHA and len(at_high) >= len(at_low):
        side, rule = "high", CROWD_RULE
    elif at_low and crowd_p_low < TREND_ALPHA:
        side, rule = "low", CROWD_RULE
    return {
        "param": p.name, "role": p.role, "log": p.log, "low": p.low, "high": p.high, "n": len(placed),
        "best_trial": best_number, "best_position": best_u, "edge_band": band, "lead_positions": lead,
        "trend_tau": tau, "trend_p_high": p_high, "trend_p_low": p_low, "trend_trials": len(others),
        "top_trials": [t.number for t, _ in top], "positions": [u for _, u in top],
        "at_low": at_low, "at_high": at_high, "crowd_p_low": crowd_p_low, "crowd_p_high": crowd_p_high,
        "crowded": side, "rule": rule, "suggested_bound": suggested_bound(p, side) if side else None,
    }


def search_space_boundary(study: StudyData) -> Check:
    """For every varied numeric parameter with a declared range: do the best trials push against an edge?"""
    ranked = study.ranked()
    params = [study.param(n) for n in varied_params(study)]
    params = [p for p in params if p.numeric and p.low is not None and p.high is not None]
    k = top_count(len(ranked))
    evidence = {"edge_fraction": EDGE_FRACTION, "top_k": k, "n_feasible": len(ranked),
                "trend_alpha": TREND_ALPHA, "params": []}
    if not params or not ranked:
        why = "no varied numeric parameter with a range" if not params else "no feasible trial yet"
        return Check("search_space_boundary", TITLE, "n/a", why, evidence)
    sign = -1.0 if study.mode == "min" else 1.0
    rows = [_param_boundary(p, ranked, k, sign) for p in params]
    evidence["params"] = rows
    details = tuple(line for r in rows for line in _detail(r))
    crowded = [r for r in rows if r["crowded"]]
    if not crowded:
        return Check("search_space_boundary", TITLE, "ok",
                     f"the best trials sit inside every range ({len(rows)} numeric parameter(s))",
                     evidence, details=details)
    parts = [f"{r['param']} crowds its {r['crowded']} edge" for r in crowded]
    advice = "; ".join(
        f"widen {r['param']} {r['crowded']} bound {fmt(r[r['crowded']])} -> {fmt(r['suggested_bound'])}"
        if r["suggested_bound"] is not None else f"{r['param']} cannot widen past its {r['crowded']} bound"
        for r in crowded
    ) + ", then run more trials there"
    return Check("search_space_boundary", TITLE, "warning",
                 f"best trials at a boundary: {', '.join(parts)}", evidence, advice, details)


def _detail(r: dict) -> tuple[str, ...]:
    """Two short lines per parameter: where the best trials sit, and the trend of the others."""
    if r["best_position"] is None:
        return (f"{r['param']}: no best trial placed on its range",)
    side = r["crowded"] or ("high" if r["best_position"] >= 0.5 else "low")
    n_out = len(r[f"at_{side}"])
    lines = [f"{r['param']} ({'log' if r['log'] else 'linear'}): best trial {r['best_trial']} at "
             f"{r['best_position']:.3f} of the range; {n_out} of the best {len(r['top_trials'])} in its {side} 10%"]
    if r["trend_tau"] is not None:
        p = r["trend_p_high"] if side == "high" else r["trend_p_low"]
        lines.append(f"{r['param']}: the other {r['trend_trials']} trials vs position: Kendall tau "
                     f"{r['trend_tau']:+.2f}, one-sided p {p:.2g} for better toward {side}")
    else:
        lines.append(f"{r['param']}: too few other trials ({r['trend_trials']}) for a trend")
    if r["crowded"]:
        lines.append(f"{r['param']}: at the {side} edge: {r['rule']}")
    return tuple(lines)
