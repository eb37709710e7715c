"""How long to train: the step retrospective best-checkpoint selection picked, across the study."""

from __future__ import annotations

import numpy as np

from runner.playbook.check import Check
from runner.playbook.data import StudyData

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
