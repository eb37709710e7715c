"""Synthetic studies and curves with known truth, for the checklist's unit tests."""

from __future__ import annotations

import numpy as np

from runner.playbook.data import Curve, CurveData, ParamInfo, StudyData, TrialResult

LR = ParamInfo("learning_rate", "nuisance", "float", log=True, low=1e-4, high=1e-1)
WD = ParamInfo("weight_decay", "nuisance", "float", log=True, low=1e-6, high=1e-2)
WIDTH = ParamInfo("width", "scientific", "choice", values=(32, 512))


def trial(number: int, params: dict, best: float | None = None, *, feasible: bool = True,
          reason: str | None = None, state: str | None = None, best_step: int | None = 100,
          last_step: int | None = 100, started_at: float | None = None,
          ended_at: float | None = None) -> TrialResult:
    """A finished trial: completed when feasible, failed otherwise (unless `state` says)."""
    return TrialResult(
        number, state or ("completed" if feasible else "failed"), params, reason=reason,
        feasible=feasible, best_value=best if feasible else None,
        best_step=best_step if feasible else None, last_step=last_step,
        started_at=started_at, ended_at=ended_at)


def study(params: tuple[ParamInfo, ...], trials: list[TrialResult], *, objective: str = "val_loss",
          mode: str = "min", max_train_steps: int = 100) -> StudyData:
    return StudyData("synthetic", objective, mode, max_train_steps, params, tuple(trials))


def curve(trial_number: int, metric: str, steps, values, highs=None, wall=None) -> Curve:
    values = [None if v is None or not np.isfinite(v) else float(v) for v in values]
    return Curve(trial_number, metric, tuple(int(s) for s in steps), tuple(values),
                 tuple(wall) if wall is not None else None,
                 tuple(highs) if highs is not None else None, len(values))


def curves(*items: Curve) -> CurveData:
    return CurveData.of(items)


def lr_grid(n: int, low: float = 1e-4, high: float = 1e-1) -> list[float]:
    """n learning rates evenly spaced in log over [low, high]."""
    return [float(x) for x in np.geomspace(low, high, n)]


QUASI_RANDOM_STUDY = """
[study]
name = "quasi-random"
command = "python train.py --lr {learning_rate} --wd {weight_decay}"
max_train_steps = 100
objective = { metric = "val_loss" }
trials = %d
seed = %d

[params.learning_rate]
role = "nuisance"
low = 1e-4
high = 1e-1
scale = "log"

[params.weight_decay]
role = "nuisance"
low = 1e-6
high = 1e-2
scale = "log"
"""


def quasi_random_trials(n: int, seed: int) -> list[dict]:
    """The learning rates and weight decays the product's own sampler picks for an n-trial study
    over LR x WD (scrambled, shifted Halton; runner.search), so simulations see the spacing users get."""
    import tomllib
    from pathlib import Path

    from runner.search import nuisance_samples
    from runner.spec import parse

    text = QUASI_RANDOM_STUDY % (n, seed)
    return nuisance_samples(parse(tomllib.loads(text), path=Path("quasi-random.toml"), text=text), n)
