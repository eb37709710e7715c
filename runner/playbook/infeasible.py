"""What fraction of trials is infeasible, why, and where in the search space they cluster."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from runner.playbook.check import Check, fmt
from runner.playbook.data import Curve, CurveData, StudyData, TrialResult
from runner.playbook.isolation import varied_params

# Trials that ran to a clean exit without one objective point (runner.failures).
NO_OBJECTIVE = "no_objective"

TITLE = "What fraction of trials is infeasible?"
# Above 20% infeasible, a fifth of the budget is spent learning where not to go: reshape
# the space. Above half, the space (or the code) is mostly wrong.
WARN_FRACTION = 0.20
PROBLEM_FRACTION = 0.50
# Reasons that say nothing about the search space: a crash is usually a bug to read
# in the trial's stderr, whatever the fraction.
CRASH_REASONS = ("exit", "signal")
# The causes that define a region of the space (too hot a learning rate, too big a model):
# only these locate the infeasible region. Crashes, timeouts and config errors strike
# anywhere and are reported apart. "infeasible" is a trial marked so without a reason.
REGION_REASONS = ("diverged", "oom", "failed to train", "infeasible")
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


# Parameters through which a study says how many classes (or tokens) its outputs choose from,
# so that the loss of a uniform guess is known: ln(k) for a cross-entropy, 1 - 1/k for an error
# rate, 1/k for an accuracy.
CLASS_COUNT_PARAMS = ("num_classes", "n_classes", "classes", "vocab_size", "n_vocab", "vocab")
# "Rising" at the end: the last third of the evaluations (at least 2) ends higher than it began.
RISING_TAIL_SHARE = 1 / 3


def chance_level(study: StudyData, t: TrialResult) -> float | None:
    """The objective of a uniform guess, when the study says how many classes there are (None otherwise)."""
    k = next((t.params[n] for n in CLASS_COUNT_PARAMS if isinstance(t.params.get(n), (int, float))), None)
    if k is None or k < 2:
        return None
    name = study.objective.lower()
    if re.search(r"acc", name):
        return 1.0 / k
    if re.search(r"err", name):
        return 1.0 - 1.0 / k
    if re.search(r"loss|nll|entropy|xent|perplexity", name):
        return float(k) if "perplexity" in name else math.log(k)
    return None


def _robust_z(study: StudyData) -> dict[int, float]:
    """Feasible finished trials' best objective in robust sigmas (1.4826 x MAD) worse than the median."""
    ranked = [t for t in study.ranked() if t.state in _FINISHED]
    if len(ranked) < MIN_TRIALS_FOR_SIGMAS:
        return {}
    sign = 1.0 if study.mode == "min" else -1.0
    bad = np.array([sign * t.best_value for t in ranked])
    median = np.median(bad)
    scale = 1.4826 * np.median(np.abs(bad - median))
    if scale <= 0:
        return {}
    return {t.number: float(z) for t, z in zip(ranked, (bad - median) / scale, strict=True)}


def _against_its_curve(curve: Curve | None, sign: float, chance: float | None, typical: float | None) -> str | None:
    """Why a run failed to train, judged against references its own data gives; None if it did train.

    - never better than a uniform guess (chance level, when the study says the class count);
    - ended worse than a uniform guess, or worse than its own first evaluation, and still
      getting worse over the last third of its evaluations. This applies only to a run whose
      best is worse than `typical` (the median of the other trials' best, in the same
      "bigger is worse" units): a good run that overfits late trained, it trained too long.
    """
    if curve is None:
        return None
    _, values = curve.finite()
    if not values:
        return None
    bad = [sign * v for v in values]  # bigger is worse, whatever the mode
    first, final, best = bad[0], bad[-1], min(bad)
    worse_chance = None if chance is None else sign * chance
    if worse_chance is not None and best >= worse_chance:
        return f"never better than a uniform guess ({fmt(chance)}): best {fmt(sign * best)}"
    tail = bad[-max(2, math.ceil(len(bad) * RISING_TAIL_SHARE)):]
    rising = len(bad) >= 2 and tail[-1] > tail[0] and final > best
    if not rising or (typical is not None and best <= typical):
        return None
    if worse_chance is not None and final > worse_chance:
        return (f"ended worse than a uniform guess ({fmt(chance)}) and still getting worse: "
                f"{fmt(sign * final)} at the last evaluation")
    if final > first:
        return (f"ended worse than its first evaluation ({fmt(sign * first)}) and still getting worse: "
                f"{fmt(sign * final)} at the last evaluation")
    return None


def failed_to_train(study: StudyData, curves: CurveData | None = None) -> dict[int, str]:
    """Feasible finished trials that did not train, with why: trial number -> reason.

    Judged against references the data gives: the trial's own objective curve (chance level
    when the study names its class count, the trial's first evaluation), and the other
    trials (an objective many robust sigmas worse than the rest: a run knocked into a dead
    state ends without NaN, but never trains).
    """
    sign = 1.0 if study.mode == "min" else -1.0
    z = _robust_z(study)
    judged = [t for t in study.ranked() if t.state in _FINISHED]
    out: dict[int, str] = {}
    for t in judged:
        curve = curves.get(t.number, study.objective) if curves is not None else None
        others = [sign * o.best_value for o in judged if o.number != t.number]
        typical = float(np.median(others)) if others else None
        why = _against_its_curve(curve, sign, chance_level(study, t), typical)
        if why is None and z.get(t.number, 0.0) > FAILED_TO_TRAIN_SIGMAS:
            why = (f"best {study.objective} {fmt(t.best_value)} is {z[t.number]:.1f} robust sd worse than the "
                   f"median trial (more than {FAILED_TO_TRAIN_SIGMAS:g} counts as failed to train)")
        if why is not None:
            out[t.number] = why
    return out


def robust_sigmas(study: StudyData) -> dict[int, float]:
    """Every judged trial's robust z (evidence for a reader); empty with too few trials."""
    return _robust_z(study)


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


def infeasible_trials(study: StudyData, curves: CurveData | None = None) -> Check:
    """Share of finished trials that are infeasible, by reason, and the region they cluster in.

    Infeasible: what the runner marked so (diverged, out of memory, crashed), and trials
    that failed to train (see failed_to_train). The region is located from the causes that
    define one (REGION_REASONS); crashes and timeouts are counted and reported apart.
    """
    finished = [t for t in study.trials if t.state in _FINISHED]
    dead = failed_to_train(study, curves)
    bad = [t for t in finished if t.infeasible or t.number in dead]
    reason_of = {t.number: t.reason or ("failed to train" if t.number in dead else "infeasible") for t in bad}
    reasons = Counter(reason_of.values())
    unknown = Counter(t.reason or "unknown" for t in finished if t.state == "failed" and t.feasible is None)
    # Not results at all: neither feasible nor infeasible, but a study cannot be judged on them.
    no_objective = [t.number for t in finished if t.reason == NO_OBJECTIVE]
    fraction = len(bad) / len(finished) if finished else None
    regional = {n for n, r in reason_of.items() if r in REGION_REASONS}
    apart = {n for n in reason_of if n not in regional}
    located = [t for t in finished if t.number not in apart]  # crashes are neither region nor feasible data
    cluster = infeasible_cluster(study, located, regional) if regional else None
    z = robust_sigmas(study)
    evidence = {"n_finished": len(finished), "n_infeasible": len(bad),
                "n_marked_by_runner": sum(1 for t in finished if t.infeasible), "fraction": fraction,
                "by_reason": dict(reasons), "failed_unknown_feasibility": dict(unknown),
                "trials": [{"trial": t.number, "reason": reason_of[t.number], "why": dead.get(t.number),
                            "sigmas_worse": z.get(t.number), "in_region": t.number in regional} for t in bad],
                "failed_to_train_sigmas": FAILED_TO_TRAIN_SIGMAS, "region_reasons": list(REGION_REASONS),
                "n_region": len(regional), "n_apart": len(apart), "cluster": cluster,
                "no_objective_trials": no_objective,
                "warn_fraction": WARN_FRACTION, "problem_fraction": PROBLEM_FRACTION}
    if not finished:
        return Check("infeasible_trials", TITLE, "n/a", "no finished trial yet", evidence)
    by_reason = ", ".join(f"{r} {n}" for r, n in reasons.most_common()) or "none"
    summary = f"{len(bad)} of {len(finished)} finished trials infeasible ({fraction:.0%}; {by_reason})"
    details = [f"by reason: {by_reason}"]
    details += [f"trial {n} failed to train: {why}" for n, why in sorted(dead.items())]
    if unknown:
        details.append("failed, feasibility unknown: " + ", ".join(f"{r} {n}" for r, n in unknown.items()))
    if cluster and cluster["separation"] >= MIN_SEPARATION:
        details.append(_cluster_line(cluster))
        summary += f"; they cluster where {cluster['param']} {cluster['op']} {_fmt_value(cluster['value'])}"
        if apart:
            others = Counter(reason_of[n] for n in apart)
            summary += f" ({', '.join(f'{r} {k}' for r, k in sorted(others.items()))} not counted in the region)"
    crashes = sum(reasons[r] for r in CRASH_REASONS)
    if no_objective:
        summary += (f"; {len(no_objective)} trial(s) never reported the objective ({NO_OBJECTIVE}: "
                    f"trials {', '.join(map(str, no_objective[:8]))}{', ...' if len(no_objective) > 8 else ''})")
    if fraction > PROBLEM_FRACTION:
        return Check("infeasible_trials", TITLE, "problem", summary, evidence,
                     "most trials fail: reshape the search space away from the failing region, and rule "
                     "out a bug (run one failing configuration by hand)", tuple(details))
    if fraction > WARN_FRACTION or crashes or no_objective:
        advice = ("reshape the search space away from the failing region" if fraction > WARN_FRACTION
                   else "")
        if crashes:
            advice += ("; " if advice else "") + f"{crashes} trial(s) crashed: read their stderr, a crash is usually a bug"
        if no_objective:
            advice += (("; " if advice else "") + f"{len(no_objective)} trial(s) ended without the objective: "
                       "they are not results; make the script report it (see each trial's detail for the "
                       "names it did report)")
        return Check("infeasible_trials", TITLE, "warning", summary, evidence, advice, tuple(details))
    return Check("infeasible_trials", TITLE, "ok", summary, evidence, details=tuple(details))


def _fmt_value(value) -> str:
    return fmt(value) if isinstance(value, float) else str(value)


def _cluster_line(c: dict) -> str:
    return (f"{c['param']} {c['op']} {_fmt_value(c['value'])} holds {c['infeasible_inside']} of "
            f"{c['infeasible_total']} infeasible and {c['feasible_inside']} of {c['feasible_total']} feasible trials")
