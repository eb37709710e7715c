"""The warmup wizard's decisions: is a loss curve stable, lr* and the unstable lr, warmup, clipping.

The playbook's procedure ("Instability, warmup and clipping"): sweep the learning rate,
find the best one (lr*) and the smallest unstable one above it; optionally check for an
early instability at 2 x lr*; then sweep `warmup_steps` at a base learning rate 10x (or
100x) the unstable one and keep the *shortest* warmup that trains stably; finally set
the clipping threshold at the 90th percentile of the unclipped gradient norm.

Everything here is pure: numbers in, frozen dataclasses out. Losses are training losses
per step (nats or whatever the study logs; assumed non-negative, as cross-entropy and
squared errors are); steps are optimizer steps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from runner.playbook.gradients import CLIP_PERCENTILE, OVERCLIP_SHARE

# -- thresholds -------------------------------------------------------------------

# The final loss of a run: the mean of its last 10% of steps, so one noisy batch does not
# decide which learning rate is best.
FINAL_FRACTION = 0.10
# Smoothing window for the running best: 5% of the curve, at least 5 points (a single
# lucky batch must not set the "best so far").
SMOOTH_FRACTION = 0.05
MIN_SMOOTH = 5
# "Rose and did not recover": the final loss gave back more than a fifth of the progress
# the run had made (first loss -> its best). Noise on a stable curve gives back a few percent.
RISE_SHARE = 0.2
# A sudden jump: 3 consecutive steps (one bad batch is not a jump), each at least
# twice the best loss so far, or giving back half of the progress made so far...
JUMP_WINDOW = 3
JUMP_FACTOR = 2.0
JUMP_SHARE = 0.5
# ...and sudden: at least half of that rise within those 3 steps (a slow climb is a rise, not a jump)...
SUDDEN_SHARE = 0.5
# ...and far outside the step-to-step noise (6 robust sigmas of the recent differences).
JUMP_NOISE_SIGMAS = 6.0
NOISE_WINDOW = 20
# "After steady decrease": the loss had already fallen by a tenth of where it started.
STEADY_DROP_SHARE = 0.10
# Recovered from a jump: the smoothed loss is back within a fifth of the jump's height
# above the pre-jump best.
RECOVER_SHARE = 0.2
# "Failed to train": a run above lr* whose progress (first - final loss) is less than half
# of lr*'s. The playbook counts a loss many standard deviations worse than the rest as
# infeasible; a dead network (the loss parked at the unigram entropy) ends exactly there.
FAILED_PROGRESS_SHARE = 0.5
# The early-instability check: ~500 steps at 2 x lr*, evaluated every step.
EARLY_CHECK_STEPS = 500
EARLY_CHECK_FACTOR = 2.0
# base_learning_rate = factor x unstable_lr: one order of magnitude, then two.
BASE_LR_FACTORS = (10, 100)
# Warmup never longer than 10% of max_train_steps; over 5% suggests training longer.
MAX_WARMUP_SHARE = 0.10
LONG_WARMUP_SHARE = 0.05
# One warmup step is no warmup (step 1 already gets the full learning rate).
MIN_WARMUP_STEPS = 2
MIN_GRID_POINTS = 3  # fewer decades than this fit: fill in with a 1-2-5 spread
POST_WARMUP_FACTOR = 2  # the playbook: post_warmup_steps = 2 x warmup_steps is usually fine
STABLE, UNSTABLE, DIVERGED = "stable", "unstable", "diverged"
BAD_OUTCOMES = ("diverged", "failed")  # the runner's failure classes; both count as unstable


# -- curves -----------------------------------------------------------------------


@dataclass(frozen=True)
class LossCurve:
    """Training loss per step; None, NaN and inf are allowed (a diverged or missing point)."""

    steps: tuple[int, ...]
    values: tuple[float | None, ...]

    def finite(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of the finite points, in step order."""
        pairs = sorted((s, v) for s, v in zip(self.steps, self.values, strict=True)
                       if v is not None and math.isfinite(v))
        return (np.array([s for s, _ in pairs], dtype=int), np.array([v for _, v in pairs], dtype=float))

    def first_nonfinite(self) -> tuple[int, str] | None:
        """(step, "NaN" | "inf") of the first non-finite point, None if all are finite."""
        for s, v in sorted(zip(self.steps, self.values, strict=True), key=lambda p: p[0]):
            if v is None or math.isnan(v):
                return s, "NaN"
            if math.isinf(v):
                return s, "inf"
        return None


@dataclass(frozen=True)
class Stability:
    """A curve's verdict ("stable" | "unstable" | "diverged"), in plain words, with its numbers."""

    verdict: str
    reason: str
    evidence: dict = field(default_factory=dict)

    @property
    def stable(self) -> bool:
        return self.verdict == STABLE

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "reason": self.reason, "evidence": dict(self.evidence)}


def _smooth(values: np.ndarray) -> np.ndarray:
    """Trailing mean over a window of max(MIN_SMOOTH, 5% of the points); point i covers i-w+1..i."""
    w = max(MIN_SMOOTH, int(len(values) * SMOOTH_FRACTION))
    csum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - w)
    return (csum[idx] - csum[lo]) / (idx - lo)


def final_loss(curve: LossCurve) -> float | None:
    """Mean training loss over the last 10% of the finite points; None if the run ended non-finite."""
    steps, values = curve.finite()
    if values.size == 0 or curve.first_nonfinite() is not None:
        return None
    n = max(1, int(round(values.size * FINAL_FRACTION)))
    return float(values[-n:].mean())


def progress(curve: LossCurve) -> float | None:
    """How far the loss fell: the first loss minus the final loss (loss units); None if diverged."""
    end = final_loss(curve)
    if end is None:
        return None
    return float(curve.finite()[1][0] - end)


def _noise(values: np.ndarray, end: int) -> float:
    """Robust std of one step's loss, from the differences of the NOISE_WINDOW points before `end`."""
    recent = values[max(0, end - NOISE_WINDOW):end]
    if recent.size < 4:
        return 0.0
    d = np.diff(recent)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2))


def _jumps(steps: np.ndarray, values: np.ndarray, *, need_steady: bool) -> dict | None:
    """The first sudden jump: 3 steps whose mean is far above the best smoothed loss so far.

    With `need_steady`, only after the loss had fallen by STEADY_DROP_SHARE of its start.
    Returns the jump's step, factor, best-before and peak, and the step it recovered by.
    """
    smooth = _smooth(values)
    start = values[0]
    for i in range(2, len(values) - JUMP_WINDOW + 1):
        best = float(smooth[:i].min())
        level = float(values[i:i + JUMP_WINDOW].min())  # every step of the window is up
        gained = start - best
        if need_steady and gained < STEADY_DROP_SHARE * abs(start):
            continue
        big = (best > 0 and level >= JUMP_FACTOR * best) or (gained > 0 and level - best >= JUMP_SHARE * gained)
        before = float(values[max(0, i - JUMP_WINDOW):i].mean())
        sudden = level - before >= SUDDEN_SHARE * (level - best)
        if not (big and sudden) or level - best < JUMP_NOISE_SIGMAS * _noise(values, i) / math.sqrt(JUMP_WINDOW):
            continue
        peak = float(values[i:i + JUMP_WINDOW].max())
        back = best + RECOVER_SHARE * (level - best)
        later = np.nonzero(smooth[i + JUMP_WINDOW:] <= back)[0]
        recovered = int(steps[i + JUMP_WINDOW + later[0]]) if later.size else None
        mean = float(values[i:i + JUMP_WINDOW].mean())
        return {"step": int(steps[i]), "factor": mean / best if best > 0 else math.inf,
                "best_before": best, "level": level, "peak": peak, "recovered_by": recovered}
    return None


def _rise(steps: np.ndarray, values: np.ndarray) -> dict | None:
    """Rose from its best and did not come back: the final loss gave back > RISE_SHARE of the progress."""
    smooth = _smooth(values)
    n_final = max(1, int(round(values.size * FINAL_FRACTION)))
    end = float(values[-n_final:].mean())
    at = int(np.argmin(smooth[:-n_final])) if values.size > n_final else 0
    best = float(smooth[at])
    gained = float(values[0] - best)
    if gained <= 0 or end - best <= RISE_SHARE * gained:
        return None
    return {"best": best, "best_step": int(steps[at]), "final": end, "gave_back": (end - best) / gained}


def _nonfinite(curve: LossCurve) -> Stability | None:
    bad = curve.first_nonfinite()
    if bad is None:
        return None
    step, kind = bad
    return Stability(DIVERGED, f"{kind} at step {step}", {"step": step, "kind": kind})


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def classify(curve: LossCurve) -> Stability:
    """One curve on its own: diverged (NaN/inf), unstable (a sudden jump after steady
    decrease, or a rise that did not recover) or stable ("trained").

    A dead network whose loss simply stays high is not visible here; `lr_sweep` and
    `warmup_verdict` compare its progress with the best run's.
    """
    if (bad := _nonfinite(curve)) is not None:
        return bad
    steps, values = curve.finite()
    if values.size < MIN_SMOOTH:
        return Stability(UNSTABLE, f"only {values.size} loss point(s)", {"points": int(values.size)})
    if (jump := _jumps(steps, values, need_steady=True)) is not None:
        tail = (f", recovered by step {jump['recovered_by']}" if jump["recovered_by"] is not None
                else " and did not recover")
        return Stability(UNSTABLE, f"sudden jump x{jump['factor']:.1f} at step {jump['step']} after steady "
                         f"decrease{tail}", {"jump": jump})
    if (rise := _rise(steps, values)) is not None:
        return Stability(UNSTABLE, f"loss rose from {_fmt(rise['best'])} to {_fmt(rise['final'])} after step "
                         f"{rise['best_step']} and did not recover", {"rise": rise})
    return Stability(STABLE, "trained", {"first": float(values[0]), "final": final_loss(curve)})


def early_check(curve: LossCurve) -> Stability:
    """The ~500-step run at 2 x lr*, evaluated every step: any early spike, even one that recovers.

    Ordinary evaluation schedules miss a model that is unstable early and then recovers;
    here a jump counts from the third step on, without waiting for a steady decrease.
    """
    if (bad := _nonfinite(curve)) is not None:
        return bad
    steps, values = curve.finite()
    if values.size < MIN_SMOOTH:
        return Stability(UNSTABLE, f"only {values.size} loss point(s)", {"points": int(values.size)})
    jump = _jumps(steps, values, need_steady=False)
    if jump is not None and jump["recovered_by"] is not None:
        return Stability(UNSTABLE, f"unstable early, recovered by step {jump['recovered_by']} (jump "
                         f"x{jump['factor']:.1f} at step {jump['step']})", {"jump": jump, "recovered": True})
    if jump is not None:
        return Stability(UNSTABLE, f"jump x{jump['factor']:.1f} at step {jump['step']} and did not recover",
                         {"jump": jump, "recovered": False})
    if (rise := _rise(steps, values)) is not None:
        return Stability(UNSTABLE, f"loss rose from {_fmt(rise['best'])} to {_fmt(rise['final'])} after step "
                         f"{rise['best_step']} and did not recover", {"rise": rise})
    return Stability(STABLE, f"no early instability in {int(steps[-1])} steps", {"steps": int(steps[-1])})


def _judge(curve: LossCurve, outcome: str) -> Stability:
    """classify(), but a run the runner marked diverged or failed is never stable."""
    seen = classify(curve)
    if outcome in BAD_OUTCOMES and seen.stable:
        verdict = DIVERGED if outcome == "diverged" else UNSTABLE
        return Stability(verdict, f"the run {outcome}", {"outcome": outcome})
    return seen


def _failed_to_train(seen: Stability, gained: float | None, reference: float, label: str) -> Stability:
    """A stable-looking run that made less than FAILED_PROGRESS_SHARE of the reference progress."""
    if not seen.stable or gained is None or reference <= 0 or gained >= FAILED_PROGRESS_SHARE * reference:
        return seen
    moved = f"fell by {_fmt(gained)}" if gained >= 0 else f"rose by {_fmt(-gained)}"
    return Stability(UNSTABLE, f"failed to train: the loss {moved}, under "
                     f"{FAILED_PROGRESS_SHARE:.0%} of the {_fmt(reference)} it fell {label}",
                     {**seen.evidence, "progress": gained, "reference_progress": reference})


# -- stage 1: the learning-rate sweep ------------------------------------------------


@dataclass(frozen=True)
class SweepRun:
    """One trial of the learning-rate sweep (warmup 0); outcome is the runner's failure class."""

    learning_rate: float
    curve: LossCurve
    outcome: str = "ok"


@dataclass(frozen=True)
class SweepRow:
    learning_rate: float
    final_loss: float | None
    stability: Stability
    progress: float | None = None  # first loss - final loss

    def to_json(self) -> dict:
        return {"learning_rate": self.learning_rate, "final_loss": self.final_loss, "progress": self.progress,
                "stability": self.stability.to_json()}


@dataclass(frozen=True)
class LrSweepResult:
    rows: tuple[SweepRow, ...]
    lr_star: float | None
    unstable_lr: float | None
    above_lr_star: tuple[float, ...]
    summary: str
    advice: tuple[str, ...]
    lr_star_progress: float | None = None  # how far lr*'s loss fell: the bar for "trained"

    def to_json(self) -> dict:
        return {"rows": [r.to_json() for r in self.rows], "lr_star": self.lr_star,
                "unstable_lr": self.unstable_lr, "above_lr_star": list(self.above_lr_star),
                "lr_star_progress": self.lr_star_progress, "summary": self.summary, "advice": list(self.advice),
                "base_learning_rates": ([f * self.unstable_lr for f in BASE_LR_FACTORS]
                                        if self.unstable_lr is not None else [])}


def lr_grid(low: float, high: float, points: int) -> list[float]:
    """`points` learning rates log-spaced from low to high (inclusive), rounded to 3 significant digits."""
    if points < 1 or low <= 0 or high < low:
        raise ValueError(f"need 0 < low <= high and points >= 1, got {low}, {high}, {points}")
    if points == 1:
        return [float(f"{low:.3g}")]
    return [float(f"{x:.3g}") for x in np.geomspace(low, high, points)]


def _sweep_advice(lr_star: float | None, unstable: SweepRow | None, rows: list[SweepRow]) -> tuple[str, ...]:
    if lr_star is None:
        return ("no learning rate trained stably: extend the grid downward",)
    if unstable is None:
        top = rows[-1].learning_rate
        if lr_star == top:
            return (f"lr* is the top of the grid ({_fmt(top)}): extend the grid upward to find where it breaks",)
        return (f"nothing up to {_fmt(top)} was unstable: no instability to fix at this horizon; "
                "extend the grid upward, or run the early check at 2 x lr*",)
    base = ", ".join(f"{_fmt(f * unstable.learning_rate)} ({f}x)" for f in BASE_LR_FACTORS)
    return (f"look at the training curves above lr* ({_fmt(lr_star)}): loss that rises and does not come back "
            "is instability worth fixing",
            f"run the warmup sweep at base_learning_rate {base} of the unstable {_fmt(unstable.learning_rate)}")


def lr_sweep(runs: Sequence[SweepRun]) -> LrSweepResult:
    """lr* (lowest final loss among stable runs) and the smallest unstable learning rate above it.

    Above lr*, a run that made less than half of lr*'s progress counts as unstable ("failed
    to train"); below lr* a slow run is only slow.
    """
    ordered = sorted(runs, key=lambda r: r.learning_rate)
    rows = [SweepRow(r.learning_rate, final_loss(r.curve), _judge(r.curve, r.outcome), progress(r.curve))
            for r in ordered]
    trained = [r for r in rows if r.stability.stable and r.final_loss is not None]
    if not trained:
        return LrSweepResult(tuple(rows), None, None, (), "no learning rate trained stably",
                             _sweep_advice(None, None, rows))
    star = min(trained, key=lambda r: (r.final_loss, r.learning_rate))
    bar = star.progress or 0.0
    rows = [_replace_stability(r, _failed_to_train(r.stability, r.progress, bar, f"at lr* {_fmt(star.learning_rate)}"))
            if r.learning_rate > star.learning_rate else r for r in rows]
    above = [r for r in rows if r.learning_rate > star.learning_rate]
    unstable = next((r for r in above if not r.stability.stable), None)
    summary = f"lr* = {_fmt(star.learning_rate)} (final loss {_fmt(star.final_loss)})"
    summary += (f"; smallest unstable learning rate above it: {_fmt(unstable.learning_rate)} "
                f"({unstable.stability.reason})" if unstable else "; no unstable learning rate above it")
    return LrSweepResult(tuple(rows), star.learning_rate, unstable.learning_rate if unstable else None,
                         tuple(r.learning_rate for r in above), summary, _sweep_advice(star.learning_rate, unstable, rows),
                         star.progress)


def _replace_stability(row: SweepRow, stability: Stability) -> SweepRow:
    return SweepRow(row.learning_rate, row.final_loss, stability, row.progress)


# -- stage 3: the warmup sweep ----------------------------------------------------------


def warmup_grid(max_train_steps: int) -> list[int]:
    """warmup_steps to try (steps): powers of ten up to 10% of max_train_steps, plus that 10% value.

    When fewer than 3 such values fit (short runs), a 1-2-5 spread from 2 steps instead.
    Never above 10% of max_train_steps; empty when even that is under 2 steps.
    """
    cap = int(max_train_steps * MAX_WARMUP_SHARE)
    if cap < MIN_WARMUP_STEPS:
        return []
    decades = [10 ** k for k in range(1, len(str(cap)) + 1) if 10 ** k < cap] + [cap]
    if len(decades) >= MIN_GRID_POINTS:
        return decades
    spread = [m * 10 ** k for k in range(len(str(cap)) + 1) for m in (1, 2, 5)]
    grid = sorted({v for v in spread if MIN_WARMUP_STEPS <= v < cap} | {cap})
    if len(grid) >= MIN_GRID_POINTS:
        return grid
    # Very short runs: whatever distinct steps fit, log-spaced from 2 to the cap.
    return sorted({int(round(x)) for x in np.geomspace(MIN_WARMUP_STEPS, cap, MIN_GRID_POINTS)})


def post_warmup_steps(warmup_steps: int) -> int:
    """Steps at the constant base learning rate after the ramp: 2 x warmup_steps."""
    return POST_WARMUP_FACTOR * warmup_steps


@dataclass(frozen=True)
class WarmupRun:
    """One trial of the warmup sweep at base_learning_rate."""

    warmup_steps: int
    curve: LossCurve
    outcome: str = "ok"


@dataclass(frozen=True)
class WarmupResult:
    base_learning_rate: float
    rows: tuple[tuple[int, Stability], ...]
    recommended: int | None
    exceeds_5pct: bool
    max_train_steps: int
    new_max_train_steps: int | None
    summary: str
    advice: tuple[str, ...]

    def to_json(self) -> dict:
        return {"base_learning_rate": self.base_learning_rate,
                "rows": [{"warmup_steps": w, "stability": s.to_json()} for w, s in self.rows],
                "recommended": self.recommended, "exceeds_5pct": self.exceeds_5pct,
                "max_train_steps": self.max_train_steps, "new_max_train_steps": self.new_max_train_steps,
                "summary": self.summary, "advice": list(self.advice)}


_ADAM_LIKE = re.compile(r"\b(adam\w*|lamb|adafactor|lion)\b", re.IGNORECASE)
_MOMENTUM_LIKE = re.compile(r"\b(sgd|momentum|nesterov|heavy[- ]ball)\b", re.IGNORECASE)


def optimizers_named(text: str) -> set[str]:
    """Optimizer families a study's config text names (command, goal, notes, params): "adam", "sgd"."""
    found = set()
    if _ADAM_LIKE.search(text):
        found.add("adam")
    if _MOMENTUM_LIKE.search(text):
        found.add("sgd")
    return found


def _warmup_advice(recommended: int | None, exceeds: bool, result_steps: int | None, base_lr: float,
                   rows: list[tuple[int, Stability]], optimizers: set[str] | None = None) -> tuple[str, ...]:
    if recommended is None:
        longest = max((w for w, _ in rows), default=0)
        # The playbook's next fix is Adam instead of momentum: pointless advice to a study already on Adam.
        on_adam_only = optimizers is not None and optimizers == {"adam"}
        adam = "" if on_adam_only else "Adam instead of momentum, "
        return (f"no warmup up to {longest} steps trains stably at {_fmt(base_lr)}: try gradient clipping, "
                f"{adam}normalization as the last op of the residual branch "
                "(x + Norm(f(x))), zero-init residual branches; lowering the learning rate is the last resort",)
    advice = [f"add warmup_steps {recommended} to the baseline schedule and compare with retrospective "
              f"best-checkpoint selection; max_train_steps grows to {result_steps}"]
    if exceeds:
        advice.append(f"stable training needs more than {LONG_WARMUP_SHARE:.0%} of max_train_steps as warmup: "
                      "consider training for more steps")
    longer_bad = [w for w, s in rows if w > recommended and not s.stable]
    if longer_bad:
        advice.append("longer warmup(s) " + ", ".join(map(str, longer_bad)) + " were unstable: the constant phase "
                      "at this learning rate may itself be too hot; check the curves")
    return tuple(advice)


def warmup_verdict(runs: Sequence[WarmupRun], *, base_learning_rate: float, max_train_steps: int,
                   reference_progress: float | None = None, optimizers: set[str] | None = None) -> WarmupResult:
    """The shortest warmup_steps that trains stably at base_learning_rate.

    optimizers: the families the study uses (optimizers_named of its config), so the advice
    does not suggest switching to Adam a study that already trains with it.

    A run counts as trained when it is stable and made at least half the progress of
    `reference_progress` (lr*'s, from the learning-rate sweep) or, without one, of the
    best stable run here: a dead network's flat loss is not "stable training".
    """
    ordered = sorted(runs, key=lambda r: r.warmup_steps)
    seen = [(r.warmup_steps, _judge(r.curve, r.outcome), progress(r.curve)) for r in ordered]
    bar = reference_progress
    label = "at lr*"
    if bar is None:
        bar = max((g for _, s, g in seen if s.stable and g is not None), default=0.0)
        label = "in the best warmup run"
    rows = [(w, _failed_to_train(s, g, bar, label)) for w, s, g in seen]
    recommended = next((w for w, s in rows if s.stable), None)
    exceeds = recommended is not None and recommended > LONG_WARMUP_SHARE * max_train_steps
    new_steps = max_train_steps + recommended if recommended is not None else None
    if recommended is None:
        summary = f"no warmup trained stably at base_learning_rate {_fmt(base_learning_rate)}"
    else:
        summary = (f"warmup_steps {recommended} is the shortest that trains stably at base_learning_rate "
                   f"{_fmt(base_learning_rate)} ({recommended / max_train_steps:.1%} of {max_train_steps} steps)")
    return WarmupResult(base_learning_rate, tuple(rows), recommended, exceeds, max_train_steps, new_steps, summary,
                        _warmup_advice(recommended, exceeds, new_steps, base_learning_rate, rows, optimizers))


# -- stage 4: clipping --------------------------------------------------------------


@dataclass(frozen=True)
class ClippingAdvice:
    threshold: float | None
    clipped_fraction: float | None
    lower_lr_instead: bool
    summary: str

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "clipped_fraction": self.clipped_fraction,
                "lower_lr_instead": self.lower_lr_instead, "summary": self.summary,
                "clip_percentile": CLIP_PERCENTILE, "overclip_share": OVERCLIP_SHARE}


def clipping(grad_norms: Sequence[float], threshold: float | None = None) -> ClippingAdvice:
    """The clipping threshold (default: p90 of the finite unclipped norms) and the share of updates it clips.

    Over half clipped is a strange way of lowering the learning rate: then lower it instead.
    """
    v = np.array([x for x in grad_norms if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return ClippingAdvice(None, None, False, "no finite gradient norms were logged")
    if threshold is None:
        threshold = float(np.percentile(v, CLIP_PERCENTILE))
    share = float(np.mean(v > threshold))
    lower = share > OVERCLIP_SHARE
    summary = f"clip the gradient norm at {_fmt(threshold)}: {share:.0%} of {v.size} updates would be clipped"
    if lower:
        summary += f"; over {OVERCLIP_SHARE:.0%} clipped is a strange way of lowering the learning rate: lower it instead"
    return ClippingAdvice(threshold, share, lower, summary)
