"""Tuning in rounds when training is compute-bound (PLAYBOOK.md "How long to train").

Round 1: many short runs for the model and optimizer hyperparameters. Round 2: the best few
of them again, long, with the learning-rate schedule stretched the playbook's way (keep the
peak lr longer). Then: did the ranking of the configurations carry over from short to long?
What transfers, most to least likely: warmup length and initialization; big architecture
wins; optimizer hyperparameters, augmentation, regularization; the lr schedule (least).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import asdict, dataclass

from scipy import stats

from runner.playbook.check import fmt, jsonable

SCHEDULES = ("constant", "linear", "cosine")
# The playbook's order, most likely to transfer from short to long runs first.
TRANSFER_ORDER = (
    "warmup length and initialization",
    "big architecture wins",
    "optimizer hyperparameters, augmentation, regularization",
    "the learning-rate schedule",
)
# How a parameter's name reads in the playbook's order (first matching rule wins): a name part
# (split at _ - .) or the whole name. Regularization before the schedule: weight_decay is not a
# decay schedule.
_CLASS_RULES = (
    (2, ("weight_decay", "wd", "l2", "dropout", "label_smoothing"), ("dropout", "augment", "augmentation", "mixup")),
    (0, (), ("warmup", "init", "initialization")),
    (3, ("schedule", "lr_schedule"), ("schedule", "decay", "cosine", "anneal", "annealing")),
    (1, (), ("width", "depth", "layers", "layer", "heads", "hidden", "dim", "channels", "blocks", "embed", "units")),
    (2, ("lr", "learning_rate"), ("lr", "momentum", "beta1", "beta2", "eps", "optimizer", "batch")),
)
TRANSFERRED_RHO = 0.8  # Spearman rho at or above: the short runs ranked the configurations as the long ones
PARTLY_RHO = 0.4  # at or above: the order roughly holds; below: it did not carry over
_EPS = 1e-9
MIN_PAIRS = 3  # fewer configurations than this in both rounds: no ranking to compare


def best_configurations(scores: dict[Hashable, float | None], k: int, mode: str) -> list[Hashable]:
    """The k best keys by score (min or max), best first; missing and non-finite scores never chosen.

    Ties keep the order of `scores` (the round-1 order), so the choice is repeatable."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    sign = 1.0 if mode == "min" else -1.0
    scored = [(sign * float(v), i, key) for i, (key, v) in enumerate(scores.items())
              if v is not None and math.isfinite(v)]
    return [key for _, _, key in sorted(scored)[:k]]


@dataclass(frozen=True)
class Stretch:
    """A round-2 schedule: what its params become, and why (the playbook's rule for this schedule)."""

    schedule: str
    max_train_steps: int
    decay_steps: int | None  # linear: length of the final decay; cosine: the cosine's period; constant: None
    constant_steps: int | None  # linear: steps at the peak lr before the decay
    why: str

    def to_json(self) -> dict:
        return asdict(self)


def stretch_schedule(schedule: str, short_steps: int, long_steps: int, short_decay_steps: int | None) -> Stretch:
    """Extend a schedule from `short_steps` to `long_steps` by keeping the peak lr longer.

    linear (peak lr for max_train_steps - decay_steps steps, then linear to 0 over decay_steps):
    the decay keeps its length and the constant phase takes every added step.
    cosine (from the peak lr to 0 over decay_steps): base lr kept, the period stretched to
    the new max_train_steps. constant: nothing to stretch."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")
    if not 0 < short_steps < long_steps:
        raise ValueError(f"round 2 must be longer than round 1 (got {short_steps} -> {long_steps} steps)")
    if schedule == "constant":
        return Stretch(schedule, long_steps, None, None, "constant lr: only max_train_steps grows")
    if short_decay_steps is None or not 0 < short_decay_steps <= short_steps:
        raise ValueError(f"decay_steps {short_decay_steps} must be between 1 and round 1's {short_steps} steps")
    if schedule == "linear":
        constant = long_steps - short_decay_steps
        return Stretch(schedule, long_steps, short_decay_steps, constant,
                       f"linear decay: the constant phase at the peak lr grows from {short_steps - short_decay_steps} "
                       f"to {constant} steps, the final {short_decay_steps}-step decay is kept")
    return Stretch(schedule, long_steps, long_steps, None,
                   f"cosine: base lr kept, the cosine stretched from {short_decay_steps} to {long_steps} steps")


@dataclass(frozen=True)
class Transfer:
    """How well round 1's ranking of the configurations predicted round 2's."""

    pairs: int
    spearman: float | None
    spearman_p: float | None
    kendall: float | None
    kendall_p: float | None
    best_kept: bool | None  # round 1's best is also round 2's best
    verdict: str  # transferred | partly | did not transfer | too few
    summary: str
    transfer_order: tuple[str, ...] = TRANSFER_ORDER

    def to_json(self) -> dict:
        return jsonable(asdict(self))


def transfer(short: dict[Hashable, float | None], long: dict[Hashable, float | None], mode: str) -> Transfer:
    """Rank correlation (Spearman rho, Kendall tau) of the configurations run in both rounds.

    Scores are the objective in each round (lower better for mode min); correlating the raw
    scores ranks them the same way in both rounds, so the sign reads the same for either mode."""
    keys = [k for k in short if k in long and _finite(short[k]) and _finite(long[k])]
    if len(keys) < MIN_PAIRS:
        return Transfer(len(keys), None, None, None, None, None, "too few",
                        f"{len(keys)} configuration(s) finished in both rounds; need {MIN_PAIRS} to compare ranks")
    a = [float(short[k]) for k in keys]
    b = [float(long[k]) for k in keys]
    rho, rho_p = stats.spearmanr(a, b)
    tau, tau_p = stats.kendalltau(a, b)
    best_short = best_configurations({k: short[k] for k in keys}, 1, mode)[0]
    best_long = best_configurations({k: long[k] for k in keys}, 1, mode)[0]
    rho = None if not math.isfinite(rho) else float(rho)  # constant scores have no ranks
    # rho from ranks is a ratio of small integers: 0.4 may come out as 0.39999999999999997
    verdict = ("too few" if rho is None else "transferred" if rho >= TRANSFERRED_RHO - _EPS
               else "partly" if rho >= PARTLY_RHO - _EPS else "did not transfer")
    kept = "round 1's best stayed the best" if best_short == best_long else "round 1's best was not round 2's best"
    summary = (f"{verdict}: Spearman rho {fmt(rho)}, Kendall tau {fmt(float(tau))} over {len(keys)} "
               f"configurations; {kept}")
    return Transfer(len(keys), rho, _num(rho_p), _num(tau), _num(tau_p), best_short == best_long, verdict, summary)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def transfer_class(name: str) -> tuple[int, str] | None:
    """(rank in TRANSFER_ORDER, its words) of a hyperparameter by its name; None when the name says nothing."""
    lower = name.lower()
    parts = set(lower.replace("-", "_").replace(".", "_").split("_"))
    for rank, whole, words in _CLASS_RULES:
        if lower in whole or parts & set(words):
            return rank, TRANSFER_ORDER[rank]
    return None


def param_transfer(name: str, short_best, long_best) -> dict:
    """Whether round 1's best value of one parameter stayed round 2's best, with the playbook's expectation."""
    cls = transfer_class(name)
    expect = ("the playbook does not rank it" if cls is None else
              f"{cls[1]}: {['most likely', 'likely', 'less likely', 'least likely'][cls[0]]} to transfer")
    kept = short_best == long_best
    return {"param": name, "round1_best": short_best, "round2_best": long_best, "kept": kept,
            "class": None if cls is None else cls[1], "expected": expect,
            "summary": f"{name}: round 1's best {short_best}, round 2's best {long_best} "
                       f"({'kept' if kept else 'changed'}; {expect})"}
