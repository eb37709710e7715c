"""Is there an optimization problem? The best learning rate at the edge of the feasible region."""

from __future__ import annotations

from collections import defaultdict

from runner.playbook.check import Check, fmt
from runner.playbook.data import CurveData, StudyData, TrialResult
from runner.playbook.infeasible import failed_to_train
from runner.playbook.isolation import scientific_key, scientific_label

TITLE = "Is there an optimization problem?"
# Names a learning-rate parameter goes by, most specific first.
LR_NAMES = ("learning_rate", "base_learning_rate", "peak_learning_rate", "lr", "base_lr", "peak_lr")
ADVICE = ("a model at the edge of instability: confirm with 5x-10x the best learning rate (look for a "
          "sudden loss jump after a steady decrease), then run the warmup procedure (warmup wizard): "
          "base_learning_rate 10x the unstable one, the shortest warmup_steps that trains stably")


def learning_rate_param(study: StudyData) -> str | None:
    """The study's learning-rate parameter: a known name, else any name with 'learning_rate'."""
    names = [p.name for p in study.params if p.numeric and p.role != "fixed"]
    for known in LR_NAMES:
        if known in names:
            return known
    return next((n for n in names if "learning_rate" in n.lower()), None)


def _edge_row(study: StudyData, lr: str, members: list[TrialResult], dead: dict[int, str]) -> dict | None:
    """The best feasible trial of one group and its nearest neighbour at a higher learning rate.

    The neighbour is unstable when it is infeasible or failed to train (`dead`: stuck
    many sigmas worse than the rest, the way a run knocked into a dead state ends).
    """
    numbers = {t.number for t in members}
    best = next((t for t in study.ranked() if t.number in numbers and lr in t.params), None)
    if best is None:
        return None
    finished = [t for t in members if lr in t.params and (t.best_value is not None or t.infeasible)]
    above = sorted((t for t in finished if t.params[lr] > best.params[lr]), key=lambda t: t.params[lr])
    nearest = above[0] if above else None
    unstable = [t for t in above if t.infeasible or t.number in dead]
    return {
        "group": scientific_label(study, best), "best_trial": best.number, "best_lr": best.params[lr],
        "next_lr": nearest.params[lr] if nearest else None,
        "next_trial": nearest.number if nearest else None,
        "next_infeasible": bool(nearest and nearest in unstable),
        "next_reason": (nearest.reason or ("failed to train" if nearest.number in dead else None)) if nearest else None,
        "infeasible_above": len(unstable),
        "feasible_above": len(above) - len(unstable),
        "at_edge": bool(nearest and nearest in unstable),
    }


def instability(study: StudyData, lr_param: str | None = None, curves: CurveData | None = None) -> Check:
    """Per scientific value: is the next learning rate above the best one already infeasible?

    The playbook: a model at the edge of instability shows its best learning rate at the
    border of the feasible region on the axis plot.
    """
    lr = lr_param or learning_rate_param(study)
    evidence: dict = {"lr_param": lr, "groups": []}
    numeric = {p.name for p in study.params if p.numeric}
    if lr not in numeric:
        return Check("instability", TITLE, "n/a", "no numeric learning-rate parameter is varied", evidence)
    groups: dict[tuple, list[TrialResult]] = defaultdict(list)
    for t in study.trials:
        groups[scientific_key(study, t)].append(t)
    dead = failed_to_train(study, curves)
    rows = [r for members in groups.values() if (r := _edge_row(study, lr, members, dead))]
    evidence["groups"] = rows
    if not rows:
        return Check("instability", TITLE, "n/a", "no feasible trial yet", evidence)
    details = tuple(
        f"{r['group']}: best {lr} {fmt(r['best_lr'])} (trial {r['best_trial']}); next higher "
        + (f"{fmt(r['next_lr'])} (trial {r['next_trial']}) is "
           + (f"infeasible ({r['next_reason'] or 'infeasible'})" if r["next_infeasible"] else "feasible")
           if r["next_lr"] is not None else "none tried")
        for r in rows
    )
    edge = [r for r in rows if r["at_edge"]]
    if edge:
        return Check("instability", TITLE, "warning",
                     f"best {lr} borders infeasible trials for {', '.join(r['group'] for r in edge)}",
                     evidence, ADVICE, details)
    return Check("instability", TITLE, "ok",
                 f"the best {lr} of every group is below a feasible higher one (or the highest tried)",
                 evidence, details=details)
