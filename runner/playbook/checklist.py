"""The questions the playbook asks of every finished study, asked automatically.

    checks = run_checklist(study, curves)   # StudyData + CurveData -> list[Check]

Each check lives in a module named for its question (boundary, sampling, infeasible,
instability, training_curves, training_length, gradients, isolation, compute) and
returns a Check: verdict (ok | warning | problem | n/a), a one-line summary, the numbers
behind it, and advice. Pure: the CLI and the TUI call the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from runner.playbook.boundary import search_space_boundary
from runner.playbook.check import Check, Verdict, worst
from runner.playbook.compute import (
    EXAMPLES_METRICS,
    FLOPS_METRICS,
    RATE_METRIC,
    SECONDS_METRICS,
    compute_view,
)
from runner.playbook.data import CurveData, StudyData
from runner.playbook.gradients import GRAD_METRIC, gradient_norm
from runner.playbook.infeasible import NO_OBJECTIVE, infeasible_trials  # views import NO_OBJECTIVE from here
from runner.playbook.instability import instability
from runner.playbook.isolation import isolation_check
from runner.playbook.sampling import BOOTSTRAP_SEED, sampling_density
from runner.playbook.training_curves import train_loss_metric, training_curves
from runner.playbook.training_length import training_length

__all__ = ["CHECK_KEYS", "Check", "ChecklistOptions", "Verdict", "overall", "reads_metric", "run_checklist"]

# In the playbook's order: search space, sampling, infeasible, optimization problems,
# curves, then the views (training length, gradient norm, isolation, compute).
CHECK_KEYS = ("search_space_boundary", "sampling_density", "infeasible_trials", "instability",
              "training_curves", "training_length", "gradient_norm", "isolation", "compute")


@dataclass(frozen=True)
class ChecklistOptions:
    """Names and knobs a study may need to override; the defaults follow the project's conventions."""

    train_metric: str | None = None  # None: "train_loss", else another "...loss" that is not held out
    grad_metric: str = GRAD_METRIC
    lr_param: str | None = None  # None: learning_rate, lr, ... (see instability.LR_NAMES)
    clip_param: str | None = None  # None: grad_clip, clip_norm, max_grad_norm, ...
    target: float | None = None  # compute view's target objective; None: one every group reaches
    seed: int = BOOTSTRAP_SEED  # the sampling bootstrap's seed


def run_checklist(study: StudyData, curves: CurveData, options: ChecklistOptions | None = None) -> list[Check]:
    """Every check, in CHECK_KEYS order."""
    o = options or ChecklistOptions()
    checks = [
        search_space_boundary(study),
        sampling_density(study, seed=o.seed),
        infeasible_trials(study, curves),
        instability(study, lr_param=o.lr_param, curves=curves),
        training_curves(study, curves, train_metric=o.train_metric),
        training_length(study),
        gradient_norm(study, curves, metric=o.grad_metric, clip_name=o.clip_param),
        isolation_check(study),
        compute_view(study, curves, target=o.target),
    ]
    return explain_missing_objective(study, checks)


def explain_missing_objective(study: StudyData, checks: list[Check]) -> list[Check]:
    """When no trial has an objective because the objective never arrived (trials ended
    no_objective), the checks that found no feasible trial say that instead: the cause is
    the capture, not the search space."""
    missing = [t for t in study.trials if t.reason == NO_OBJECTIVE]
    if not missing or study.ranked():
        return checks
    why = (f"no trial reported {study.objective}: {len(missing)} trial(s) ended {NO_OBJECTIVE} "
           f"(trials {', '.join(str(t.number) for t in missing[:8])}{', ...' if len(missing) > 8 else ''})")
    return [replace(c, summary=why, advice=c.advice or _NO_OBJECTIVE_ADVICE)
            if c.verdict == "n/a" and c.summary.startswith(_NO_FEASIBLE) else c for c in checks]


# How the checks say they had nothing to rank ("no feasible trial yet", "... with a val_loss curve",
# "... reported grad_norm").
_NO_FEASIBLE = ("no feasible trial yet", "no feasible trial with a ", "no feasible trial reported ")


_NO_OBJECTIVE_ADVICE = ("report the objective (runner.report.Reporter, or a study.metrics pattern with a "
                        "group of its name); see each trial's detail for the names it did report")


def reads_metric(name: str, objective: str, options: ChecklistOptions | None = None) -> bool:
    """Whether the checklist reads this metric (so a loader fetches only these curves)."""
    o = options or ChecklistOptions()
    wanted = {objective, o.grad_metric, RATE_METRIC, *FLOPS_METRICS, *SECONDS_METRICS, *EXAMPLES_METRICS}
    if o.train_metric:
        wanted.add(o.train_metric)
    return name in wanted or train_loss_metric([name], objective) == name


def overall(checks: list[Check]) -> Verdict:
    """The most severe verdict of the checklist."""
    return worst([c.verdict for c in checks])
