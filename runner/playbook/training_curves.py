"""What do the training curves of the best trials say? Overfitting, late noise, still improving,
saturated early, training loss rising.

Every threshold is relative to the curve itself (its noise, or how much it improved), so
it holds for errors, losses and accuracies alike, and for curves the store downsampled
(each point is then the last value of a bucket of steps: a sample of the same curve).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from runner.playbook.check import Check, worst
from runner.playbook.data import Curve, CurveData, StudyData
from runner.playbook.isolation import best_per_scientific, scientific_label

TITLE = "What do the training curves of the best trials say?"
# The last quarter of training is "late" (the playbook's last-25% reading of best steps).
LATE_FRACTION = 0.25
MIN_POINTS = 3  # fewer objective points than this: nothing to read
SMOOTH_DIVISOR = 20  # levels are read on a running mean over 1/20 of the points
# Late noise is read from the last quarter's second differences; with fewer than 20 points
# that quarter holds under 5 of them and the estimate is the curve's bend, not its noise.
MIN_POINTS_FOR_LATE_NOISE = 20
# Overfitting: after its best, the validation metric's late mean is worse than the best by
# more than 3 noise standard deviations (a noisy flat curve sits ~1.5 sigma above its min),
# and by more than 1% of what training gained (a floor for noise-free curves).
OVERFIT_SIGMAS = 3.0
OVERFIT_MIN_SHARE = 0.01
# High late variance: late step-to-step noise above 5% of the curve's whole improvement.
LATE_NOISE_SHARE = 0.05
# Still improving: the last quarter beat everything before it by more than 2 noise sigmas
# and by more than 5% of the whole improvement (an exponential approach with time constant
# above a quarter of training; a curve that flattened gains ~1-2% there).
IMPROVING_SIGMAS = 2.0
IMPROVING_MIN_SHARE = 0.05
# Saturated: within max(2 sigma, 1% of the improvement) of the final best by half of
# training: the second half bought (almost) nothing.
SATURATED_AT = 0.5
SATURATED_SHARE = 0.01
# Training loss rising: its smoothed end is above its smoothed minimum by more than 10% of
# the drop before it, and by more than 4 noise sigmas of the smoothed curve.
RISE_SHARE = 0.10
RISE_SIGMAS = 4.0


def train_loss_metric(names: list[str], objective: str, preferred: str = "train_loss") -> str | None:
    """The training-loss metric: `preferred` when reported, else the first other name with 'loss'
    that is not the objective and not a validation/test metric."""
    if preferred in names:
        return preferred
    held_out = ("val", "valid", "test", "eval")
    return next((n for n in sorted(names) if "loss" in n.lower() and n != objective
                 and not any(h in n.lower() for h in held_out)), None)


def noise_sigma(values: np.ndarray) -> float:
    """Step-to-step noise (std), robust to trends: MAD of second differences / sqrt(6).

    Second differences cancel any locally linear trend; white noise of std s gives
    second differences of std s*sqrt(6). 0.0 for fewer than 3 points.
    """
    if len(values) < 3:
        return 0.0
    d2 = np.diff(values, n=2)
    return float(1.4826 * np.median(np.abs(d2)) / math.sqrt(6))


@dataclass(frozen=True)
class CurveDiagnosis:
    """What one trial's curves say; numbers in the objective's units, lower-is-better inside."""

    trial: int
    group: str
    findings: dict[str, bool] = field(default_factory=dict)
    numbers: dict[str, float | int | None] = field(default_factory=dict)
    note: str | None = None

    @property
    def verdict(self) -> str:
        if self.note and not self.findings:
            return "n/a"
        if self.findings.get("training_loss_rising"):
            return "problem"
        return "warning" if any(self.findings.values()) else "ok"


def _late_mask(steps: np.ndarray) -> np.ndarray:
    """The last quarter of the steps, and always at least the last two points."""
    first, last = steps[0], steps[-1]
    late = steps >= last - LATE_FRACTION * (last - first)
    late[-min(len(steps), 2):] = True
    return late


def running_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of each full window of `width` points (len - width + 1 values)."""
    return np.convolve(values, np.ones(width) / width, mode="valid")


def diagnose_objective(steps: np.ndarray, bad: np.ndarray) -> tuple[dict, dict]:
    """Findings on a validation curve given as lower-is-better values at increasing steps.

    Levels are read on a running mean over ~5% of the points (1 for short curves), so the
    minimum of a noisy curve is not mistaken for its best level; the noise is the larger
    of the whole curve's and the last quarter's (late noise must not pass as a trend).
    """
    width = max(1, len(bad) // SMOOTH_DIVISOR)
    smooth, s_steps = running_mean(bad, width), steps[width - 1:]
    raw_late = _late_mask(steps)
    late_sigma = noise_sigma(bad[raw_late])
    sigma = max(noise_sigma(bad), late_sigma) / math.sqrt(width)
    best_i = int(np.argmin(smooth))
    best = smooth[best_i]
    gain = max(float(bad[0] - best), 0.0)  # from the first evaluation: smoothing would blunt the early drop
    late = _late_mask(s_steps)
    after = smooth[best_i + 1:][late[best_i + 1:]]
    rise = float(after.mean() - best) if after.size else 0.0
    before = smooth[~late]
    improved = float(before.min() - smooth[late].min()) if before.size else 0.0
    tolerance = max(IMPROVING_SIGMAS * sigma, SATURATED_SHARE * gain)
    reached = s_steps[int(np.argmax(smooth <= best + tolerance))]
    span = steps[-1] - steps[0]
    saturated_at = float((reached - steps[0]) / span) if span else 1.0
    overfit = rise > OVERFIT_SIGMAS * sigma and rise > OVERFIT_MIN_SHARE * gain
    improving = improved > IMPROVING_SIGMAS * sigma and improved > IMPROVING_MIN_SHARE * gain
    findings = {
        "overfitting": bool(overfit),
        "still_improving": bool(improving and not overfit),
        "saturated_early": bool(saturated_at <= SATURATED_AT and not overfit and not improving),
    }
    numbers = {"points": int(len(bad)), "best_step": int(steps[int(np.argmin(bad))]), "improvement": gain,
               "noise_sigma": sigma, "smoothing_points": width, "rise_after_best": rise,
               "late_gain": improved, "saturated_at_fraction": saturated_at}
    if len(bad) >= MIN_POINTS_FOR_LATE_NOISE:
        numbers["late_noise_sigma"] = late_sigma
        numbers["late_noise_share"] = late_sigma / gain if gain else None
        findings["high_late_variance"] = bool(gain and late_sigma > LATE_NOISE_SHARE * gain)
    return findings, numbers


def running_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median of each full window of `width` points (len - width + 1 values)."""
    windows = np.lib.stride_tricks.sliding_window_view(values, width)
    return np.median(windows, axis=1)


def diagnose_training_loss(values: np.ndarray) -> tuple[bool, dict]:
    """Whether a training-loss curve rises during training (a pipeline bug, usually).

    Smoothed with a running median over ~5% of the points (at least 3), since a
    per-batch loss is noisy; compares the smoothed end with the smoothed minimum.
    """
    if len(values) < 6:
        return False, {"train_points": int(len(values))}
    width = max(3, len(values) // 20)
    smooth = running_median(values, width)
    low_i = int(np.argmin(smooth))
    drop = float(smooth[0] - smooth[low_i])
    rise = float(smooth[-1] - smooth[low_i])
    sigma = noise_sigma(values) / math.sqrt(width)
    rising = rise > RISE_SIGMAS * sigma and rise > RISE_SHARE * drop and low_i < len(smooth) - 1
    return bool(rising), {"train_points": int(len(values)), "train_drop": drop, "train_rise": rise,
                          "train_noise_sigma": sigma}


def diagnose_trial(study: StudyData, curves: CurveData, trial: int, group: str,
                   train_metric: str | None = None) -> CurveDiagnosis:
    """Read the objective and training-loss curves of one trial."""
    objective = curves.get(trial, study.objective)
    if objective is None:
        return CurveDiagnosis(trial, group, note=f"no {study.objective} curve")
    steps, values = (np.asarray(a, dtype=float) for a in objective.finite())
    if len(values) < MIN_POINTS:
        return CurveDiagnosis(trial, group, note=f"only {len(values)} {study.objective} point(s)")
    bad = values if study.mode == "min" else -values
    findings, numbers = diagnose_objective(steps, bad)
    numbers["best_value"] = float(values[int(np.argmin(bad))])  # in the objective's own direction
    name = train_metric or train_loss_metric(curves.metrics(trial), study.objective)
    train: Curve | None = curves.get(trial, name) if name else None
    numbers["train_metric"] = name
    if train is not None:
        rising, train_numbers = diagnose_training_loss(np.asarray(train.finite()[1], dtype=float))
        findings["training_loss_rising"] = rising
        numbers.update(train_numbers)
    return CurveDiagnosis(trial, group, findings, numbers)


_ADVICE = {
    "training_loss_rising": "training loss rises during training: usually a pipeline bug (data, loss, "
                            "schedule); if not, instability",
    "overfitting": "validation worsens after its best: add regularization or rely on retrospective "
                   "best-checkpoint selection",
    "high_late_variance": "noisy late in training: bigger batch, more validation data, lr decay or "
                          "Polyak averaging",
    "still_improving": "still improving at the last step: compute-bound, train longer or change the schedule",
    "saturated_early": "saturated long before the last step: fewer steps would do",
}


def training_curves(study: StudyData, curves: CurveData, train_metric: str | None = None) -> Check:
    """Diagnose the curves of the best trial of every scientific value (the ones compared)."""
    best = best_per_scientific(study)
    diagnoses = [diagnose_trial(study, curves, t.number, scientific_label(study, t), train_metric)
                 for t in best.values()]
    evidence = {"trials": [{"trial": d.trial, "group": d.group, "verdict": d.verdict,
                            "findings": d.findings, "note": d.note, **d.numbers} for d in diagnoses]}
    read = [d for d in diagnoses if d.verdict != "n/a"]
    if not read:
        why = "no feasible trial yet" if not diagnoses else diagnoses[0].note
        return Check("training_curves", TITLE, "n/a", why or "no curves", evidence)
    details = tuple(_detail(d) for d in diagnoses)
    found = sorted({f for d in read for f, on in d.findings.items() if on}, key=list(_ADVICE).index)
    verdict = worst([d.verdict for d in read])
    if not found:
        return Check("training_curves", TITLE, "ok",
                     f"the best trial of each of {len(read)} group(s) trains cleanly", evidence, details=details)
    summary = "; ".join(
        f"{f.replace('_', ' ')}: " + ", ".join(f"trial {d.trial}" for d in read if d.findings.get(f))
        for f in found)
    return Check("training_curves", TITLE, verdict, summary, evidence,
                 "; ".join(_ADVICE[f] for f in found), details)


def _detail(d: CurveDiagnosis) -> str:
    if d.verdict == "n/a":
        return f"trial {d.trial} ({d.group}): {d.note}"
    on = [f.replace("_", " ") for f, v in d.findings.items() if v]
    return f"trial {d.trial} ({d.group}): " + (", ".join(on) if on else "clean") + (
        f" (best at step {d.numbers['best_step']}, {d.numbers['points']} points)")
