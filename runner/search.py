"""Trial values: a grid over scientific parameters crossed with quasi-random nuisance samples.

Quasi-random search is the playbook's exploration tool: non-adaptive, reproducible
(the same study file gives the same trials), and it covers the space evenly.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from runner.spec import ParamSpec, StudySpec


def _round(x: float) -> float:
    """Six significant digits: readable in tables and argv, far below any tuning resolution."""
    return float(f"{x:.6g}")


def from_unit(p: ParamSpec, u: float) -> Any:
    """Map u in [0, 1) onto the parameter's range, in its own scale."""
    if p.kind == "choice":
        return p.values[min(int(u * len(p.values)), len(p.values) - 1)]
    lo, hi = p.low, p.high
    if p.kind == "int":
        if p.is_log:
            value = math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))
            return int(min(max(math.floor(value), lo), hi))
        return int(min(lo + math.floor(u * (hi - lo + 1)), hi))
    if p.is_log:
        return _round(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))
    return _round(lo + u * (hi - lo))


def grid_values(p: ParamSpec) -> list[Any]:
    """The values a scientific parameter takes: its list, or `points` evenly spaced in its scale."""
    if p.kind == "choice":
        return list(p.values)
    n = p.points or 1
    if n == 1:
        return [p.low if p.kind == "float" else int(p.low)]
    if p.is_log:
        raw = np.geomspace(p.low, p.high, n)
    else:
        raw = np.linspace(p.low, p.high, n)
    if p.kind == "int":
        return sorted({int(round(v)) for v in raw})
    return [_round(v) for v in raw]


def scientific_grid(spec: StudySpec) -> list[dict[str, Any]]:
    """Every combination of scientific values (one empty combination when there are none)."""
    sci = spec.by_role("scientific")
    return [dict(zip([p.name for p in sci], combo, strict=True))
            for combo in itertools.product(*(grid_values(p) for p in sci))]


def nuisance_samples(spec: StudySpec, n: int) -> list[dict[str, Any]]:
    """n points of a scrambled, randomly shifted Halton sequence over the nuisance space.

    Seeded by the study's seed, so the same file always gives the same points.
    A conditional nuisance parameter keeps its own dimension even where it does
    not apply, so adding a condition never reshuffles the other parameters.
    """
    nuisance = spec.by_role("nuisance")
    if n <= 0:
        return []
    if not nuisance:
        return [{} for _ in range(min(n, 1))]  # nothing to sample: one trial per scientific value
    from scipy.stats import qmc  # here, not at import: the service imports this module, scipy costs ~0.3 s

    halton = qmc.Halton(d=len(nuisance), scramble=True, seed=spec.seed)
    points = halton.random(n)
    shift = np.random.default_rng(spec.seed).random(len(nuisance))
    points = (points + shift) % 1.0
    return [{p.name: from_unit(p, u) for p, u in zip(nuisance, row, strict=True)} for row in points]


def resolve(spec: StudySpec, chosen: dict[str, Any]) -> dict[str, Any]:
    """Complete a trial's values with fixed parameters and drop conditionals that do not apply."""
    assigned: dict[str, Any] = {}
    for p in spec.params:
        if p.when and not p.applies(assigned):
            continue
        assigned[p.name] = p.value if p.role == "fixed" else chosen[p.name]
    return assigned


def plan_values(spec: StudySpec) -> list[tuple[str, dict[str, Any]]]:
    """(source, values) for every trial of the study, in launch order.

    Nuisance samples form the outer loop so the first trials to finish already
    cover every scientific value; manual trials come last.
    """
    grid = scientific_grid(spec)
    # A bayes study queues only its quasi-random start here; runner.bayes asks for the rest.
    samples = nuisance_samples(spec, spec.search.startup_trials if spec.search.is_bayes else spec.trials)
    planned = [("search", resolve(spec, {**sample, **sci})) for sample in samples for sci in grid]
    planned += [("manual", dict(values)) for values in spec.manual]
    return planned
