"""What fraction of trials is infeasible, why, and where in the search space they cluster."""

from __future__ import annotations

from collections import Counter

import numpy as np

from runner.playbook.check import Check, fmt
from runner.playbook.data import StudyData, TrialResult
from runner.playbook.isolation import varied_params

TITLE = "What fraction of trials is infeasible?"
# Above 20% infeasible, a fifth of the budget is spent learning where not to go: reshape
# the space. Above half, the space (or the code) is mostly wrong.
WARN_FRACTION = 0.20
PROBLEM_FRACTION = 0.50
# Reasons that say nothing about the search space: a crash is usually a bug to read
# in the trial's stderr, whatever the fraction.
CRASH_REASONS = ("exit", "signal")
# A region "holds" the infeasible trials when it separates them from the feasible ones
# this well (Youden's J: share of infeasible inside minus share of feasible inside).
MIN_SEPARATION = 0.5

# The playbook counts as infeasible a trial whose loss is "many standard deviations worse
# than the rest" (a run knocked into a dead state ends without NaN, but never trains).
# Many = 3 robust standard deviations (1.4826 x MAD) worse than the feasible trials' median,
# measured only when there are enough trials for a median to mean something.
FAILED_TO_TRAIN_SIGMAS = 3.0
MIN_TRIALS_FOR_SIGMAS = 5

_FINISHED = ("completed", "failed")


def failed_to_train(study: StudyData) -> dict[int, float]:
    """Feasible trials whose best objective is many robust sigmas worse than the rest: trial -> sigmas."""
    ranked = [t for t in study.ranked() if t.state in _FINISHED]
    if len(ranked) < MIN_TRIALS_FOR_SIGMAS:
        return {}
    sign = 1.0 if study.mode == "min" else -1.0
    bad = np.array([sign * t.best_value for t in ranked])
    median = np.median(bad)
    scale = 1.4826 * np.median(np.abs(bad - median))
    if scale <= 0:
        return {}
    z = (bad - median) / scale
    return {t.number: float(zi) for t, zi in zip(ranked, z, strict=True) if zi > FAILED_TO_TRAIN_SIGMAS}


def _region_score(inside: list[bool], infeasible: list[bool]) -> tuple[float, int, int]:
    n_inf = sum(infeasible)
    n_feas = len(infeasible) - n_inf
    inf_in = sum(1 for i, b in zip(inside, infeasible, strict=True) if i and b)
    feas_in = sum(1 for i, b in zip(inside, infeasible, strict=True) if i and not b)
    score = inf_in / n_inf - (feas_in / n_feas if n_feas else 0.0)
    return score, inf_in, feas_in


def infeasible_cluster(study: StudyData, trials: list[TrialResult], infeasible: set[int]) -> dict | None:
    """The one-sided region of one parameter (x >= c, x <= c, or x == value) that best holds the infeasible.

    A decision stump over every varied parameter: simple enough to read on an axis plot
    ('learning_rate >= 0.4 holds 5 of 5 infeasible trials and 1 of 20 feasible').
    """
    best: dict | None = None
    for name in varied_params(study):
        p = study.param(name)
        have = [t for t in trials if name in t.params]
        flags = [t.number in infeasible for t in have]
        if not any(flags):
            continue
        xs = [t.params[name] for t in have]
        # Sorted, so ties between equally good regions resolve the same way every run.
        cuts = sorted({x for x, f in zip(xs, flags, strict=True) if f}, key=lambda v: (str(type(v)), str(v)))
        regions = ([(">=", c, [x >= c for x in xs]) for c in cuts] + [("<=", c, [x <= c for x in xs]) for c in cuts]
                   if p.numeric else [("==", c, [x == c for x in xs]) for c in cuts])
        for op, cut, inside in regions:
            score, inf_in, feas_in = _region_score(inside, flags)
            if best is None or score > best["separation"]:
                best = {"param": name, "op": op, "value": cut, "separation": score,
                        "infeasible_inside": inf_in, "feasible_inside": feas_in,
                        "infeasible_total": sum(flags), "feasible_total": len(flags) - sum(flags)}
    return best


def infeasible_trials(study: StudyData) -> Check:
    """Share of finished trials that are infeasible, by reason, and the region they cluster in.

    Infeasible: what the runner marked so (diverged, out of memory, crashed), and trials
    that failed to train (objective many sigmas worse than the rest; see failed_to_train).
    """
    finished = [t for t in study.trials if t.state in _FINISHED]
    dead = failed_to_train(study)
    bad = [t for t in finished if t.infeasible or t.number in dead]
    reasons = Counter(t.reason or ("failed to train" if t.number in dead else "infeasible") for t in bad)
    unknown = Counter(t.reason or "unknown" for t in finished if t.state == "failed" and t.feasible is None)
    fraction = len(bad) / len(finished) if finished else None
    cluster = infeasible_cluster(study, finished, {t.number for t in bad}) if bad else None
    evidence = {"n_finished": len(finished), "n_infeasible": len(bad),
                "n_marked_by_runner": sum(1 for t in finished if t.infeasible), "fraction": fraction,
                "by_reason": dict(reasons), "failed_unknown_feasibility": dict(unknown),
                "trials": [{"trial": t.number, "reason": t.reason, "sigmas_worse": dead.get(t.number)} for t in bad],
                "failed_to_train_sigmas": FAILED_TO_TRAIN_SIGMAS, "cluster": cluster,
                "warn_fraction": WARN_FRACTION, "problem_fraction": PROBLEM_FRACTION}
    if not finished:
        return Check("infeasible_trials", TITLE, "n/a", "no finished trial yet", evidence)
    by_reason = ", ".join(f"{r} {n}" for r, n in reasons.most_common()) or "none"
    summary = f"{len(bad)} of {len(finished)} finished trials infeasible ({fraction:.0%}; {by_reason})"
    details = [f"by reason: {by_reason}"]
    if unknown:
        details.append("failed, feasibility unknown: " + ", ".join(f"{r} {n}" for r, n in unknown.items()))
    if cluster and cluster["separation"] >= MIN_SEPARATION:
        details.append(_cluster_line(cluster))
        summary += f"; they cluster where {cluster['param']} {cluster['op']} {_fmt_value(cluster['value'])}"
    crashes = sum(reasons[r] for r in CRASH_REASONS)
    if fraction > PROBLEM_FRACTION:
        return Check("infeasible_trials", TITLE, "problem", summary, evidence,
                     "most trials fail: reshape the search space away from the failing region, and rule "
                     "out a bug (run one failing configuration by hand)", tuple(details))
    if fraction > WARN_FRACTION or crashes:
        advice = ("reshape the search space away from the failing region" if fraction > WARN_FRACTION
                   else "")
        if crashes:
            advice += ("; " if advice else "") + f"{crashes} trial(s) crashed: read their stderr, a crash is usually a bug"
        return Check("infeasible_trials", TITLE, "warning", summary, evidence, advice, tuple(details))
    return Check("infeasible_trials", TITLE, "ok", summary, evidence, details=tuple(details))


def _fmt_value(value) -> str:
    return fmt(value) if isinstance(value, float) else str(value)


def _cluster_line(c: dict) -> str:
    return (f"{c['param']} {c['op']} {_fmt_value(c['value'])} holds {c['infeasible_inside']} of "
            f"{c['infeasible_total']} infeasible and {c['feasible_inside']} of {c['feasible_total']} feasible trials")
