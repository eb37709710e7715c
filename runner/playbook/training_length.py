"""How long to train: the step retrospective best-checkpoint selection picked, across the study,
and the first guess at max_train_steps from a constant-lr sweep (steps to a training-loss target)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from runner.playbook.check import Check, fmt, jsonable
from runner.playbook.data import StudyData
from runner.playbook.warmup import LossCurve

TITLE = "Is max_train_steps right? (retrospective best checkpoint)"
# The playbook's readings: best steps always in the first 10% -> max_train_steps too large;
# always in the last 25% -> train longer and re-tune the decay schedule.
EARLY_FRACTION = 0.10
LATE_FRACTION = 0.75
# "Always", allowing one trial in ten to differ (a dead or unlucky run should not hide it).
ALWAYS_SHARE = 0.9
MIN_TRIALS = 3  # fewer completed trials than this: no distribution to read
HISTOGRAM_BINS = 10


def best_step_fractions(study: StudyData) -> dict[int, float]:
    """best_step / max_train_steps for every completed feasible trial, by trial number (in the
    trial's own steps when max_train_steps counts epochs: TrialResult.max_steps)."""
    return {t.number: t.best_step / (t.max_steps or study.max_train_steps) for t in study.trials
            if t.state == "completed" and not t.infeasible and t.best_step is not None
            and (t.max_steps or study.max_train_steps)}


def training_length(study: StudyData) -> Check:
    """Where in training the best checkpoints fall, and what the playbook reads from it."""
    fractions = best_step_fractions(study)
    values = np.array(list(fractions.values()), dtype=float)
    evidence: dict = {
        "max_train_steps": study.max_train_steps,
        "best_steps": [{"trial": t.number, "best_step": t.best_step, "fraction": fractions[t.number]}
                       for t in study.trials if t.number in fractions],
        "early_fraction": EARLY_FRACTION, "late_fraction": LATE_FRACTION, "always_share": ALWAYS_SHARE,
    }
    if len(values) < MIN_TRIALS:
        return Check("training_length", TITLE, "n/a",
                     f"{len(values)} completed feasible trial(s); need {MIN_TRIALS}", evidence)
    early = float(np.mean(values <= EARLY_FRACTION))
    late = float(np.mean(values >= LATE_FRACTION))
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    evidence.update({"share_early": early, "share_late": late, "median_fraction": float(np.median(values)),
                     "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}})
    details = (f"best step / max_train_steps: median {np.median(values):.2f}; "
               f"{early:.0%} in the first {EARLY_FRACTION:.0%}, {late:.0%} in the last {1 - LATE_FRACTION:.0%}",
               "histogram (0..1 in tenths): " + " ".join(str(c) for c in counts))
    if early >= ALWAYS_SHARE:
        return Check("training_length", TITLE, "warning",
                     f"{early:.0%} of best checkpoints in the first {EARLY_FRACTION:.0%} of training",
                     evidence, "max_train_steps is too large: fewer steps would do", details)
    if late >= ALWAYS_SHARE:
        return Check("training_length", TITLE, "warning",
                     f"{late:.0%} of best checkpoints in the last {1 - LATE_FRACTION:.0%} of training",
                     evidence, "train longer (raise max_train_steps) and re-tune the decay schedule", details)
    return Check("training_length", TITLE, "ok", _mixed_summary(early, late, float(np.median(values))),
                 evidence, details=details)


def _mixed_summary(early: float, late: float, median: float) -> str:
    """What the best steps say when neither reading holds 'always' (ALWAYS_SHARE of the trials)."""
    shares = (f"{early:.0%} in the first {EARLY_FRACTION:.0%}, {late:.0%} in the last {1 - LATE_FRACTION:.0%}, "
              f"median at {median:.0%} of the steps")
    if median >= LATE_FRACTION:
        return f"most best checkpoints are late but not all ({shares}): not yet a case for training longer"
    if median <= EARLY_FRACTION:
        return f"most best checkpoints are early but not all ({shares}): not yet a case for fewer steps"
    return f"best checkpoints spread over training ({shares})"


# -- the initial max_train_steps (PLAYBOOK.md "How long to train", not compute-bound) ------------
# A constant-lr sweep without regularization; the steps the fastest trial needs to reach a
# training-loss target is the first guess for max_train_steps.

SMOOTH_POINTS = 5  # trailing points averaged before comparing with the target: one lucky batch is not a fit
TARGET_MARGIN = 0.10  # proposed target: this much above the lowest final training loss of the sweep
FIT_TARGET_SHARE = 0.01  # proposed target when the best run fits: this share of its first loss
FIT_SHARE = 0.05  # a final loss under this share of the first loss counts as fitting the training set


@dataclass(frozen=True)
class SweepCurve:
    """One constant-lr run of the sweep: its learning rate, training loss per step, how it ended."""

    learning_rate: float
    curve: LossCurve
    outcome: str = "ok"  # ok | diverged | failed


@dataclass(frozen=True)
class Target:
    value: float
    why: str
    proposed: bool  # True: the wizard chose it; False: the user gave it


def smoothed(curve: LossCurve, window: int = SMOOTH_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(steps, trailing mean over the last `window` finite points) in step order.

    A trailing mean lags a falling curve by about window/2 points: the steps to a target
    come out slightly long, which is the safe side for a training length."""
    steps, values = curve.finite()
    if len(values) == 0:
        return steps, values
    window = max(1, min(window, len(values)))
    sums = np.cumsum(np.concatenate([[0.0], values]))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return steps, (sums[idx] - sums[lo]) / (idx - lo)


def steps_to_target(curve: LossCurve, target: float, window: int = SMOOTH_POINTS) -> int | None:
    """The first step at which the smoothed training loss is at or below `target`; None if never."""
    steps, values = smoothed(curve, window)
    hits = np.nonzero(values <= target)[0]
    return int(steps[hits[0]]) if len(hits) else None


def final_loss(curve: LossCurve, window: int = SMOOTH_POINTS) -> float | None:
    """The smoothed training loss at the curve's last finite point."""
    _, values = smoothed(curve, window)
    return float(values[-1]) if len(values) else None


def propose_target(runs: list[SweepCurve], window: int = SMOOTH_POINTS) -> Target | None:
    """The training loss that counts as "fitted", from the runs that finished.

    FIT_TARGET_SHARE of the first loss when the best run got below it (the training set is
    fitted: a loss falling towards 0 would otherwise put a target near its own final value
    at the very end of every run); else TARGET_MARGIN above the best run's final loss, what
    this sweep can fit, where a run has essentially arrived."""
    finals = [(final_loss(r.curve, window), r) for r in runs if r.outcome == "ok"]
    finals = [(v, r) for v, r in finals if v is not None]
    if not finals:
        return None
    best, run = min(finals, key=lambda p: p[0])
    first = float(run.curve.finite()[1][0])
    fitted = FIT_TARGET_SHARE * first
    if best * (1 + TARGET_MARGIN) < fitted:
        return Target(fitted, f"{FIT_TARGET_SHARE:.0%} of the first training loss ({fmt(first)}): the best run "
                              f"(lr {fmt(run.learning_rate)}) ends below it at {fmt(best)}, so the training set "
                              "is fitted; the steps to it are the steps a fit needs", proposed=True)
    return Target(best * (1 + TARGET_MARGIN),
                  f"{TARGET_MARGIN:.0%} above the lowest final training loss of the sweep ({fmt(best)} at lr "
                  f"{fmt(run.learning_rate)}): where the best run had essentially arrived", proposed=True)


@dataclass(frozen=True)
class InitialSteps:
    """The sweep read for a first max_train_steps."""

    rows: tuple[dict, ...]  # per lr: learning_rate, outcome, final_loss, steps_to_target
    target: float | None
    target_why: str
    target_proposed: bool
    fastest_lr: float | None
    max_train_steps: int | None  # the fastest run's steps to the target: the first guess
    horizon: int
    summary: str
    advice: tuple[str, ...]

    def to_json(self) -> dict:
        return jsonable(asdict(self))


def initial_steps(runs: list[SweepCurve], horizon: int, target: float | None = None,
                  window: int = SMOOTH_POINTS) -> InitialSteps:
    """Steps to the target for every lr of the sweep; the fastest one's is the first max_train_steps.

    `target` None: proposed from the sweep (propose_target). Advice when the fastest lr is at the
    edge of the grid (the best lr may lie beyond it) or when the best run does not fit the
    training set (its final loss is more than FIT_SHARE of its first)."""
    chosen = Target(target, "the training-loss target you gave", proposed=False) if target is not None \
        else propose_target(runs, window)
    rows = []
    for r in sorted(runs, key=lambda r: r.learning_rate):
        touched = steps_to_target(r.curve, chosen.value, window) if chosen and r.outcome == "ok" else None
        last = final_loss(r.curve, window)
        # A run that got to the target and then left it (an lr on the edge of instability) has not
        # fitted: it does not count, and the row says where it had been.
        reach = touched if touched is not None and last is not None and last <= chosen.value else None
        rows.append({"learning_rate": r.learning_rate, "outcome": r.outcome, "final_loss": last,
                     "steps_to_target": reach, "left_target_after": touched if reach is None else None})
    reached = [row for row in rows if row["steps_to_target"] is not None]
    if chosen is None or not reached:
        why = "no run finished" if chosen is None else f"no run reached {fmt(chosen.value)} in {horizon} steps"
        advice = ("lower the target or sweep longer (--horizon)",) if chosen is not None else (
            "check the runs' logs: none reported a training loss",)
        return InitialSteps(tuple(rows), chosen.value if chosen else None, chosen.why if chosen else "",
                            bool(chosen and chosen.proposed), None, None, horizon, why, advice)
    fastest = min(reached, key=lambda row: (row["steps_to_target"], row["learning_rate"]))
    advice = _initial_advice(runs, rows, fastest, horizon)
    summary = (f"lr {fmt(fastest['learning_rate'])} reaches training loss {fmt(chosen.value)} first, at step "
               f"{fastest['steps_to_target']}: start with max_train_steps = {fastest['steps_to_target']}")
    return InitialSteps(tuple(rows), chosen.value, chosen.why, chosen.proposed, fastest["learning_rate"],
                        fastest["steps_to_target"], horizon, summary, advice)


def _initial_advice(runs: list[SweepCurve], rows: list[dict], fastest: dict, horizon: int) -> tuple[str, ...]:
    out = []
    lrs = [row["learning_rate"] for row in rows]
    if fastest["learning_rate"] in (min(lrs), max(lrs)) and len(lrs) > 1:
        side = "lowest" if fastest["learning_rate"] == min(lrs) else "highest"
        out.append(f"the fastest lr is the {side} of the sweep: extend the grid past it, a better one may lie beyond")
    if fastest["steps_to_target"] >= 0.9 * horizon:
        out.append(f"the fastest run needed {fastest['steps_to_target']} of the sweep's {horizon} steps: "
                   "sweep longer to be sure the target is not still moving")
    run = next(r for r in runs if r.learning_rate == fastest["learning_rate"])
    steps, values = run.curve.finite()
    last = final_loss(run.curve)
    if len(values) and last is not None and values[0] > 0 and last > FIT_SHARE * values[0]:
        out.append(f"the best run ends at {fmt(last)}, {last / values[0]:.0%} of its first loss: it does not fit "
                   "the training set; the playbook's first guess assumes a configuration that does "
                   "(a bigger model, or no regularization)")
    return tuple(out)
