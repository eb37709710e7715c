"""Were enough points sampled? Trials per dimension, trials near the best, and a bootstrap of best-of-k."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from runner.playbook.check import Check, fmt
from runner.playbook.data import StudyData, TrialResult
from runner.playbook.isolation import scientific_key, scientific_label, varied_params

TITLE = "Were enough points sampled?"
# The playbook's Adam budget: < 10 trials tune only the learning rate, 10-25 also beta1,
# 25+ also epsilon, i.e. about 5 (2 dims at 10) to 8 (3 dims at 25) trials per tuned
# dimension. Fewer than 5 per nuisance dimension, per scientific value, is thin.
MIN_TRIALS_PER_DIM = 5
# "Near the best": within a quarter of the way from the best objective to the median one.
# Scale-free (works for errors, losses, accuracies) and needs no estimate of seed noise.
NEAR_BEST_GAP = 0.25
# The good region is explored when at least 3 trials land in it, not just the winner.
MIN_NEAR_BEST = 3
# Bootstrap of "best objective with k trials" (the playbook's box plot of study variance):
BOOTSTRAP_RESAMPLES = 2000
# More trials would still pay when going from n/2 to n trials still buys more than 10%
# of the whole gain from 1 to n trials (mean best-of-k, in the bootstrap).
STILL_PAYS_SHARE = 0.10
BOOTSTRAP_SEED = 0

_FINISHED = ("completed", "failed")


def _badness(study: StudyData, trials: list[TrialResult]) -> np.ndarray:
    """Objective as 'lower is better'; +inf for a trial that reached none (infeasible, crashed)."""
    sign = 1.0 if study.mode == "min" else -1.0
    return np.array([sign * t.best_value if t.best_value is not None and not t.infeasible else np.inf
                     for t in trials], dtype=float)


def bootstrap_best_of_k(study: StudyData, ks: list[int] | None = None, resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> list[dict]:
    """Best objective of k trials drawn (with replacement) from the study's finished trials.

    One row per k: mean and the 10/50/90th percentiles of the best, in the objective's
    own units, and the share of draws with no feasible trial at all. Seeded: the same
    study gives the same numbers.
    """
    trials = [t for t in study.trials if t.state in _FINISHED]
    bad = _badness(study, trials)
    n = len(bad)
    if n == 0 or not np.isfinite(bad).any():
        return []
    ks = ks or _k_grid(n)
    rng = np.random.default_rng(seed)
    sign = 1.0 if study.mode == "min" else -1.0
    rows = []
    for k in ks:
        best = bad[rng.integers(0, n, size=(resamples, k))].min(axis=1)
        ok = best[np.isfinite(best)] * sign
        q10, q50, q90 = np.percentile(ok, [10, 50, 90]) if ok.size else (math.nan,) * 3
        rows.append({"k": k, "mean": float(ok.mean()) if ok.size else None, "p10": float(q10),
                     "p50": float(q50), "p90": float(q90), "no_feasible": 1 - ok.size / resamples})
    return rows


def _k_grid(n: int) -> list[int]:
    """Every k up to 30 trials, then about 20 steps spaced evenly in log; n/2 and n always in."""
    if n <= 30:
        return list(range(1, n + 1))
    grid = {int(round(x)) for x in np.geomspace(1, n, 20)} | {math.ceil(n / 2), n}
    return sorted(grid)


def still_pays(rows: list[dict], n: int, mode: str) -> float | None:
    """Share of the best-of-k gain (1 -> n trials) that the last half of the trials bought."""
    by_k = {r["k"]: r["mean"] for r in rows}
    one, half, full = by_k.get(1), by_k.get(math.ceil(n / 2)), by_k.get(n)
    if None in (one, half, full) or n < 2:
        return None
    sign = 1.0 if mode == "min" else -1.0
    total = sign * (one - full)
    return sign * (half - full) / total if total > 0 else 0.0


def near_best(study: StudyData) -> tuple[list[int], float | None]:
    """Feasible trials within NEAR_BEST_GAP of the way from the best to the median objective."""
    ranked = study.ranked()
    if not ranked:
        return [], None
    values = np.array([t.best_value for t in ranked])
    best, median = values[0], float(np.median(values))
    tolerance = NEAR_BEST_GAP * abs(median - best)
    return [t.number for t in ranked if abs(t.best_value - best) <= tolerance], tolerance


def sampling_density(study: StudyData, seed: int = BOOTSTRAP_SEED) -> Check:
    """Trials per nuisance dimension per scientific value, trials near the best, best-of-k bootstrap."""
    finished = [t for t in study.trials if t.state in _FINISHED]
    varied = varied_params(study)
    nuisance = [n for n in varied if study.param(n).role == "nuisance"]
    groups = Counter(scientific_label(study, t) for t in finished)
    dims = max(len(nuisance), 1)
    per_dim = {g: c / dims for g, c in groups.items()}
    near, tolerance = near_best(study)
    rows = bootstrap_best_of_k(study, seed=seed)
    pays = still_pays(rows, len(finished), study.mode)
    evidence = {
        "n_finished": len(finished), "n_feasible": len(study.ranked()), "varied_dims": len(varied),
        "nuisance_dims": len(nuisance), "trials_per_nuisance_dim": per_dim,
        "min_trials_per_dim": MIN_TRIALS_PER_DIM, "near_best_trials": near,
        "near_best_tolerance": tolerance, "bootstrap": rows, "still_pays_share": pays,
        "bootstrap_seed": seed, "scientific_groups": len({scientific_key(study, t) for t in finished}),
    }
    if not study.ranked():
        return Check("sampling_density", TITLE, "n/a", "no feasible trial yet", evidence)
    thin = sorted(g for g, v in per_dim.items() if v < MIN_TRIALS_PER_DIM)
    problems = []
    if thin:
        problems.append(f"{min(per_dim.values()):.1f} trials per nuisance dimension (want {MIN_TRIALS_PER_DIM})")
    if len(near) < MIN_NEAR_BEST:
        problems.append(f"only {len(near)} trial(s) near the best")
    if pays is not None and pays > STILL_PAYS_SHARE:
        problems.append(f"the last half of the trials still bought {pays:.0%} of the best-of-k gain")
    details = _details(rows, len(finished), near, tolerance, per_dim)
    if problems:
        return Check("sampling_density", TITLE, "warning", "; ".join(problems), evidence,
                     "run more trials in the same space (the quasi-random sequence continues where it "
                     "stopped) before drawing conclusions", details)
    return Check("sampling_density", TITLE, "ok",
                 f"{len(near)} trials near the best; more trials would change the best little", evidence,
                 details=details)


def _details(rows: list[dict], n: int, near: list[int], tolerance: float | None,
             per_dim: dict[str, float]) -> tuple[str, ...]:
    lines = ["trials per nuisance dimension: " + ", ".join(f"{g}: {v:.1f}" for g, v in sorted(per_dim.items())),
             f"near the best (within {fmt(tolerance)}): trials {', '.join(map(str, near))}"]
    by_k = {r["k"]: r for r in rows}
    for k in sorted({1, math.ceil(n / 2), n} & set(by_k)):
        r = by_k[k]
        lines.append(f"best of {k} trials (bootstrap): median {fmt(r['p50'])}, 10-90% {fmt(r['p10'])}..{fmt(r['p90'])}")
    return tuple(lines)
