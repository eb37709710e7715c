"""Deciding whether to adopt a change: baseline and candidate re-run with several seeds each.

The playbook: adopt only changes that beat the baseline by more than retraining (seed) variance
explains, and whose improvement outweighs the complexity they add; but do not demand total
certainty: a point that is better after accounting for variance becomes the new baseline.

The rules, with alpha = 1 - confidence and d = improvement / pooled seed std ("seed-sd"):
- adopt: the improvement is significant (two-sided Welch p < alpha AND the bootstrap CI of the
  improvement lies wholly above 0) AND d >= the complexity's demand (REQUIRED_EFFECT_SD);
- do not adopt: the candidate is significantly worse (Welch p < alpha AND the CI lies wholly
  below 0), or even the CI's best end falls short of what the complexity demands, or both sides
  gave identical values (no noise, no difference);
- otherwise inconclusive, with the extra seeds per side that would settle it at 80% power.
Requiring both tests keeps the false-adopt rate of same-config (A/A) comparisons below alpha / 2.

Pure: objective values in (the objective's own units), a frozen verdict with its evidence out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import special, stats

from runner.playbook.check import fmt, jsonable

MODES = ("min", "max")
COMPLEXITIES = ("none", "some", "a lot")
DEFAULT_SEEDS = 5  # the wizard's proposal: enough for a first look at seed variance, cheap to run
MIN_SEEDS = 2      # the fewest values a side needs for a standard deviation
# The improvement each complexity demands, in seed-sd: a free change is worth any real gain;
# some complexity must buy at least half a seed-sd; a lot of it, a whole seed-sd.
REQUIRED_EFFECT_SD = {"none": 0.0, "some": 0.5, "a lot": 1.0}
POWER = 0.8  # the conventional chance of detecting a true effect of the observed size
BOOTSTRAP_RESAMPLES = 9999  # scipy's default; the CI's ends move by well under 1% of its width
# Above this many seeds per side the normal approximation of the sample size is exact enough,
# and nobody will run them anyway.
EXACT_POWER_LIMIT = 100_000
_COMPLEXITY_WORDS = {"none": "no complexity", "some": "some complexity", "a lot": "a lot of complexity"}
_SEARCH_WINDOW = 64  # candidate sample sizes evaluated per vectorized power call


@dataclass(frozen=True)
class SideStats:
    """The seed values of one side and their mean and standard deviation (ddof=1)."""

    values: tuple[float, ...]
    n: int
    mean: float
    std: float


@dataclass(frozen=True)
class AdoptDecision:
    """The verdict on adopting a candidate, with every number it rests on."""

    mode: str                    # "min" | "max" (how the objective improves)
    complexity: str              # "none" | "some" | "a lot"
    baseline: SideStats
    candidate: SideStats
    improvement: float           # how much better the candidate's mean is (positive = better, objective units)
    ci_low: float                # bootstrap CI of the improvement (scipy.stats.bootstrap, seeded)
    ci_high: float
    confidence: float
    welch_p: float               # two-sided Welch t-test p-value
    effect_sd: float             # improvement / pooled seed std
    seeds_needed: int | None     # seeds per side that resolve the observed difference (80% power, two-sided alpha), None if improvement is 0; never more than were run once the verdict is settled
    required_effect_sd: float    # the improvement the complexity demands, in seed-sd units
    verdict: str                 # "adopt" | "do not adopt" | "inconclusive"
    extra_seeds: int | None      # for inconclusive: how many more seeds per side would settle it
    reasoning: str               # one paragraph, citing the numbers
    pooled_std: float = 0.0      # pooled seed std (objective units) that effect_sd divides by
    alpha: float = 0.05          # 1 - confidence: the significance level of both tests
    power: float = POWER         # the power seeds_needed and extra_seeds are computed for

    def to_json(self) -> dict:
        """Every number, strict JSON (an infinite effect, from zero seed noise, becomes None)."""
        return jsonable(asdict(self))


def side_stats(values: Sequence[float]) -> SideStats:
    """Mean and sample standard deviation (ddof=1) of one side's seed values."""
    v = np.asarray(values, dtype=float)
    return SideStats(tuple(float(x) for x in v), int(v.size), float(v.mean()), float(v.std(ddof=1)))


def pooled_std(a: SideStats, b: SideStats) -> float:
    """The pooled standard deviation of two sides (objective units), weighted by degrees of freedom."""
    return math.sqrt(((a.n - 1) * a.std ** 2 + (b.n - 1) * b.std ** 2) / (a.n + b.n - 2))


def _power(n: np.ndarray, d: float, alpha: float) -> np.ndarray:
    """Power of a two-sided two-sample t-test, n seeds per side, true effect d seed-sd.

    Each tail from the noncentral t's survival function (scipy.stats.nct, accurate far out in
    the tail, where 1 - cdf cancels to 0 and scipy.special.nctdtr returns NaN for a large
    noncentrality); where scipy still gives NaN, the normal approximation of the noncentral t
    (Abramowitz & Stegun 26.7.10), which is excellent exactly there.
    """
    df = 2 * n - 2
    nc = d * np.sqrt(n / 2)
    t_crit = special.stdtrit(df, 1 - alpha / 2)
    return np.clip(_above(t_crit, df, nc) + _above(t_crit, df, -nc), 0.0, 1.0)


def _above(t: np.ndarray, df: np.ndarray, nc: np.ndarray) -> np.ndarray:
    """P(T > t) for T ~ noncentral t(df, nc), never NaN."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exact = np.asarray(stats.nct.sf(t, df, nc), dtype=float)
    approx = special.ndtr((nc - t * (1 - 1 / (4 * df))) / np.sqrt(1 + t ** 2 / (2 * df)))
    return np.where(np.isfinite(exact), exact, approx)


def seeds_for_effect(effect_sd: float, alpha: float = 0.05, power: float = POWER) -> int | None:
    """Seeds per side a two-sided two-sample t-test needs to detect effect_sd (seed-sd) with `power`.

    None for a zero effect (no number of seeds resolves it); MIN_SEEDS for an infinite one (zero noise).
    """
    d = abs(effect_sd)
    if d == 0 or math.isnan(d):
        return None
    if math.isinf(d):
        return MIN_SEEDS
    z = special.ndtri(1 - alpha / 2) + special.ndtri(power)
    approx = 2 * (z / d) ** 2  # the normal approximation; the t-test needs slightly more
    if approx > EXACT_POWER_LIMIT:
        return math.ceil(approx)
    start = max(MIN_SEEDS, math.floor(approx) - 2)
    while True:
        n = np.arange(start, start + _SEARCH_WINDOW)
        enough = np.flatnonzero(_power(n, d, alpha) >= power)
        if enough.size:
            return int(n[enough[0]])
        start += _SEARCH_WINDOW


def _difference(c: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(c, axis=axis) - np.mean(b, axis=axis)


def _bootstrap_ci(gain_c: np.ndarray, gain_b: np.ndarray, confidence: float, seed: int,
                  n_resamples: int) -> tuple[float, float]:
    """BCa bootstrap CI of mean(candidate) - mean(baseline), falling back to percentile, then a point."""
    point = float(_difference(gain_c, gain_b))
    if gain_c.std() == 0 and gain_b.std() == 0:
        return point, point  # no noise: every resample gives the same difference
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny samples make BCa warn; a NaN end is handled below
            res = stats.bootstrap((gain_c, gain_b), _difference, vectorized=True, paired=False,
                                  confidence_level=confidence, n_resamples=n_resamples, method=method,
                                  rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return point, point


def _welch_p(gain_c: np.ndarray, gain_b: np.ndarray) -> float:
    if gain_c.std() == 0 and gain_b.std() == 0:
        return 1.0 if gain_c.mean() == gain_b.mean() else 0.0  # exact: no noise to test against
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one side constant: scipy warns, the p is fine
        return float(stats.ttest_ind(gain_c, gain_b, equal_var=False).pvalue)


def _in_sd(x: float, sd: float) -> float:
    """x in seed-sd units; with zero noise any nonzero difference is infinitely many sds."""
    if sd > 0:
        return x / sd
    return 0.0 if x == 0 else math.copysign(math.inf, x)


def _validate(baseline: Sequence[float], candidate: Sequence[float], mode: str, complexity: str,
              confidence: float) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if complexity not in COMPLEXITIES:
        raise ValueError(f"complexity must be one of {COMPLEXITIES}, got {complexity!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    for name, values in (("baseline", baseline), ("candidate", candidate)):
        if len(values) < MIN_SEEDS:
            raise ValueError(f"{name} needs at least {MIN_SEEDS} seed values to measure seed variance, "
                             f"got {len(values)}")
        bad = [v for v in values if not math.isfinite(float(v))]
        if bad:
            raise ValueError(f"{name} has non-finite values {bad}: a diverged seed is a result to "
                             "look at, not a number to average")


def _verdict(d: AdoptDecision) -> tuple[str, str]:
    """(verdict, why) from the computed evidence."""
    improvement, alpha, required = d.improvement, d.alpha, d.required_effect_sd
    if d.pooled_std == 0 and improvement == 0:
        return "do not adopt", "both sides gave identical values, so the change makes no difference"
    significant = d.welch_p < alpha
    if significant and d.ci_low > 0 and d.effect_sd >= required:
        return "adopt", ("the improvement is beyond what seed variance explains and outweighs the complexity; "
                         "the candidate becomes the new baseline")
    if significant and d.ci_high < 0:
        return "do not adopt", "the candidate is worse by more than seed variance explains"
    if _in_sd(d.ci_high, d.pooled_std) < required:
        return "do not adopt", (f"even the confidence interval's best end ({fmt(_in_sd(d.ci_high, d.pooled_std))} "
                                "seed-sd) falls short of what the complexity demands")
    if significant and d.ci_low > 0:
        return "inconclusive", ("the candidate is better, but not yet clearly by as much as the complexity "
                                "demands")
    return "inconclusive", "the difference is within what seed variance explains"


def _extra_seeds(effect_sd: float, required: float, n: int, alpha: float) -> int | None:
    """More seeds per side that would settle an inconclusive comparison, if the observed effect is true.

    An effect at or above the demand must be told apart from zero; one below it, from the demand.
    None when the observed effect sits exactly on the boundary (no number of seeds settles it).
    """
    gap = effect_sd if effect_sd >= required and effect_sd > 0 else required - effect_sd
    needed = seeds_for_effect(gap, alpha)
    return None if needed is None else max(1, needed - n)


def _reasoning(d: AdoptDecision, why: str) -> str:
    better = "lower" if d.mode == "min" else "higher"
    size = f"better by {fmt(d.improvement)}" if d.improvement >= 0 else f"worse by {fmt(-d.improvement)}"
    text = (f"Baseline: mean {fmt(d.baseline.mean)}, sd {fmt(d.baseline.std)} over {d.baseline.n} seeds; "
            f"candidate: mean {fmt(d.candidate.mean)}, sd {fmt(d.candidate.std)} over {d.candidate.n} seeds "
            f"({better} is better). The candidate is {size} ({d.confidence:.0%} bootstrap CI {fmt(d.ci_low)} "
            f"to {fmt(d.ci_high)}; Welch p = {d.welch_p:.3g}), {fmt(d.effect_sd)} seed-sd. "
            f"The change adds {_COMPLEXITY_WORDS[d.complexity]}, so it must be better by at least "
            f"{fmt(d.required_effect_sd)} seed-sd. Verdict: {d.verdict}: {why}.")
    if d.verdict == "inconclusive" and d.extra_seeds is not None:
        text += f" About {d.extra_seeds} more seeds per side would settle it, if the observed effect is real."
    elif d.verdict != "inconclusive" and d.seeds_needed is not None:
        text += (f" The {min(d.baseline.n, d.candidate.n)} seeds per side already settle it: "
                 "no more seeds are needed.")
    return text


def decide(baseline: Sequence[float], candidate: Sequence[float], *, mode: str, complexity: str = "none",
           confidence: float = 0.95, seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES) -> AdoptDecision:
    """Adopt the candidate, do not, or say how many more seeds would tell (rules in the module docstring).

    baseline and candidate are the objective's final values, one per seed, in its own units;
    mode says whether lower ("min") or higher ("max") is better. seed fixes the bootstrap
    resampling; n_resamples trades CI precision for speed (simulations use a few hundred).
    Raises ValueError for fewer than 2 values a side, an unknown mode or complexity, or a
    non-finite value.
    """
    _validate(baseline, candidate, mode, complexity, confidence)
    base, cand = side_stats(baseline), side_stats(candidate)
    sign = 1.0 if mode == "max" else -1.0  # "gain" = the objective turned so that bigger is better
    gain_b, gain_c = sign * np.asarray(base.values), sign * np.asarray(cand.values)
    alpha = round(1.0 - confidence, 12)  # 0.05, not 0.050000000000000044
    improvement = float(gain_c.mean() - gain_b.mean())
    sd = pooled_std(base, cand)
    ci_low, ci_high = _bootstrap_ci(gain_c, gain_b, confidence, seed, n_resamples)
    effect = _in_sd(improvement, sd)
    required = REQUIRED_EFFECT_SD[complexity]
    draft = AdoptDecision(mode, complexity, base, cand, improvement, ci_low, ci_high, confidence,
                          _welch_p(gain_c, gain_b), effect, seeds_for_effect(effect, alpha), required,
                          "inconclusive", None, "", sd, alpha, POWER)
    verdict, why = _verdict(draft)
    n = min(base.n, cand.n)
    extra = _extra_seeds(effect, required, n, alpha) if verdict == "inconclusive" else None
    needed = draft.seeds_needed
    if verdict != "inconclusive" and needed is not None:
        needed = min(needed, n)  # what already settled the question is enough, whatever the power sum says
    decided = replace(draft, verdict=verdict, extra_seeds=extra, seeds_needed=needed)
    return replace(decided, reasoning=_reasoning(decided, why))
