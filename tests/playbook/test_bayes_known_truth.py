"""Known truth for Bayesian optimization (runner.bayes), through the planning code the runner uses.

A bowl in 3 nuisance dimensions (lr on a log scale, momentum, an integer width) whose minimum
is 1.0, with a region of 30% of the space where the "training" crashes (infeasible, no value).
BO must get within 2% of the optimum in fewer trials than the quasi-random search the same
study would run, over several seeds, and crashes must never stop it.
"""

from __future__ import annotations

import math
import textwrap

import pytest

from runner.bayes import Observation, plan_asks
from runner.search import nuisance_samples
from runner.spec import load

BUDGET = 80
SEEDS = range(5)
OPTIMUM = 1.0
TARGET = OPTIMUM * 1.02
CENTRE = {"lr": 0.6, "momentum": 0.3, "width": 0.45}  # the bowl's centre, in unit coordinates

STUDY = """
[study]
name = "bowl"
command = "python train.py --lr {{lr}} --momentum {{momentum}} --width {{width}}"
max_train_steps = 10
objective = {{ metric = "val_loss", mode = "min" }}
trials = {budget}
seed = {seed}
search = {search}

[params.lr]
role = "nuisance"
low = 1e-4
high = 1.0
scale = "log"

[params.momentum]
role = "nuisance"
low = 0.0
high = 0.99

[params.width]
role = "nuisance"
type = "int"
low = 16
high = 512
scale = "log"
"""


def unit(values: dict) -> dict[str, float]:
    """The point in unit coordinates, each parameter in its own scale."""
    return {
        "lr": (math.log(values["lr"]) - math.log(1e-4)) / (math.log(1.0) - math.log(1e-4)),
        "momentum": values["momentum"] / 0.99,
        "width": (math.log(values["width"]) - math.log(16)) / (math.log(512) - math.log(16)),
    }


def crashes(values: dict) -> bool:
    """The top 30% of the learning-rate range diverges: no objective, an infeasible trial."""
    return unit(values)["lr"] > 0.7


def loss(values: dict) -> float:
    u = unit(values)
    return OPTIMUM + sum((u[k] - CENTRE[k]) ** 2 for k in CENTRE)


def evaluate(values: dict) -> Observation:
    if crashes(values):
        return Observation(values, objective=None, feasible=False)
    return Observation(values, objective=loss(values), feasible=True)


def study(tmp_path, seed: int, search: str):
    path = tmp_path / f"bowl-{seed}-{abs(hash(search))}.toml"
    path.write_text(textwrap.dedent(STUDY.format(budget=BUDGET, seed=seed, search=search)))
    return load(path)


def trials_to_target(losses: list[float | None]) -> int:
    """The 1-based trial that first got within 2% of the optimum (BUDGET + 1 when none did)."""
    for i, value in enumerate(losses, start=1):
        if value is not None and value <= TARGET:
            return i
    return BUDGET + 1


def run_bayes(spec) -> list[Observation]:
    """Sequential BO (concurrency 1), asking through the same function the runner's top-up uses."""
    history: list[tuple[str, Observation]] = []
    while True:
        asks = plan_asks(spec, history, free=1)
        if not asks:
            return [o for _, o in history]
        history.append(("search", evaluate(asks[0])))


def test_bayes_reaches_the_optimum_in_fewer_trials_than_quasi_random(tmp_path):
    bayes_counts, random_counts = [], []
    for seed in SEEDS:
        bayes = run_bayes(study(tmp_path, seed, '{ kind = "bayes", sampler = "tpe", startup_trials = 10 }'))
        assert len(bayes) == BUDGET  # every infeasible trial was followed by another ask
        bayes_counts.append(trials_to_target([o.objective for o in bayes]))
        quasi = nuisance_samples(study(tmp_path, seed, '"quasi-random"'), BUDGET)
        random_counts.append(trials_to_target([None if crashes(v) else loss(v) for v in quasi]))
    ratio = sum(bayes_counts) / sum(random_counts)
    print(f"trials to within 2%: bayes {bayes_counts}, quasi-random {random_counts}, ratio {ratio:.2f}")
    assert all(b <= BUDGET for b in bayes_counts), bayes_counts
    assert ratio < 0.75
    assert sum(b < r for b, r in zip(bayes_counts, random_counts, strict=True)) >= 4


def test_crashes_teach_the_model_to_stay_feasible(tmp_path):
    """After the quasi-random start, BO proposes fewer points in the crashing region than its 30%
    share of the space, and far fewer than the same BO that is not told about the crashes."""
    spec = study(tmp_path, 0, '{ kind = "bayes", startup_trials = 10 }')
    told = run_bayes(spec)[10:]
    blind: list[tuple[str, Observation]] = []  # crashes stored with unknown feasibility: no lesson
    while asks := plan_asks(spec, blind, free=1):
        seen = evaluate(asks[0])
        blind.append(("search", seen if seen.feasible else Observation(seen.values, feasible=None)))
    crashed_told = sum(1 for o in told if crashes(o.values))
    crashed_blind = sum(1 for _, o in blind[10:] if crashes(o.values))
    print(f"crashes after the start: told {crashed_told}/{len(told)}, blind {crashed_blind}/{len(told)}")
    assert crashed_told < 0.3 * len(told)
    assert crashed_told < crashed_blind / 2


def test_gp_sampler_also_finds_the_optimum(tmp_path):
    spec = study(tmp_path, 1, '{ kind = "bayes", sampler = "gp", startup_trials = 8 }')
    history: list[tuple[str, Observation]] = []
    for _ in range(20):  # the GP is slower to ask than TPE: a shorter run
        history.append(("search", evaluate(plan_asks(spec, history, free=1)[0])))
    best = min(o.objective for _, o in history if o.objective is not None)
    assert best <= TARGET


def test_the_same_results_give_the_same_points(tmp_path):
    spec = study(tmp_path, 2, '"bayes"')
    first = [o.values for o in run_bayes(spec)[:20]]
    again = [o.values for o in run_bayes(spec)[:20]]
    assert first == again


def test_parallel_asks_spread_out_and_respect_the_budget(tmp_path):
    spec = study(tmp_path, 0, '{ kind = "bayes", startup_trials = 4 }')
    history = [("search", evaluate(v)) for v in nuisance_samples(spec, 4)]
    asks = plan_asks(spec, history, free=3)
    assert len(asks) == 3
    assert len({tuple(sorted(a.items())) for a in asks}) == 3  # pending points are not asked again
    full = [("search", evaluate(v)) for v in nuisance_samples(spec, BUDGET)]
    assert plan_asks(spec, full, free=3) == []


@pytest.mark.parametrize("bad, message", [
    ('"annealing"', "study.search: expected one of 'quasi-random', 'bayes'"),
    ('{ kind = "bayes", sampler = "cma" }', "study.search.sampler: expected 'tpe' or 'gp'"),
    ('{ kind = "bayes", startup_trials = 500 }', "study.search.startup_trials: 500 is more than study.trials"),
    ('{ kind = "quasi-random", sampler = "gp" }', 'study.search.sampler: only kind = "bayes" uses it'),
])
def test_bad_search_tables_are_named(tmp_path, bad, message):
    from runner.spec import SpecError

    with pytest.raises(SpecError) as info:
        study(tmp_path, 0, bad)
    assert any(message in p for p in info.value.problems), info.value.problems
