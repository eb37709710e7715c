import math

import numpy as np
import pytest
from playbook_synth import LR, WD, lr_grid, quasi_random_trials, study, trial

from runner.playbook.boundary import EDGE_FRACTION, search_space_boundary, suggested_bound, top_count
from runner.playbook.data import ParamInfo


def lr_study(best_lr: float, mode: str = "min", n: int = 21):
    """Objective is a bowl in log(lr) around best_lr; wd varies but does not matter."""
    trials = []
    for i, lr in enumerate(lr_grid(n)):
        loss = (math.log10(lr) - math.log10(best_lr)) ** 2 + 0.1
        trials.append(trial(i, {"learning_rate": lr, "weight_decay": 10 ** (-6 + 4 * ((i * 7) % n) / n)},
                            loss if mode == "min" else -loss))
    return study((LR, WD), trials, mode=mode)


def test_best_trials_at_the_high_edge_warn_and_suggest_a_wider_bound():
    check = search_space_boundary(lr_study(best_lr=1e-1))
    assert check.verdict == "warning"
    row = {r["param"]: r for r in check.evidence["params"]}["learning_rate"]
    assert row["crowded"] == "high" and set(row["at_high"]) == {19, 20}  # 2 of the best 3
    # Half the current width further out in log: 3 decades wide -> 1.5 decades above 0.1.
    assert row["suggested_bound"] == pytest.approx(10 ** 0.5)
    assert "learning_rate" in check.summary and "widen learning_rate high bound" in check.advice
    assert {r["param"]: r for r in check.evidence["params"]}["weight_decay"]["crowded"] is None


def test_best_trials_in_the_middle_are_ok():
    check = search_space_boundary(lr_study(best_lr=10 ** -2.5))
    assert check.verdict == "ok"
    assert all(r["crowded"] is None for r in check.evidence["params"])
    positions = {r["param"]: r for r in check.evidence["params"]}["learning_rate"]["positions"]
    assert all(EDGE_FRACTION < u < 1 - EDGE_FRACTION for u in positions)


def test_low_edge_and_max_mode():
    check = search_space_boundary(lr_study(best_lr=1e-4, mode="max"))
    row = {r["param"]: r for r in check.evidence["params"]}["learning_rate"]
    assert check.verdict == "warning" and row["crowded"] == "low"
    assert row["suggested_bound"] == pytest.approx(10 ** -5.5)


def test_infeasible_trials_at_the_edge_are_not_the_best():
    # The edge holds the best objective values, but those trials diverged: they are not "best".
    s = lr_study(best_lr=1e-1)
    edge = [t for t in s.trials if t.params["learning_rate"] > 0.03]
    rest = [t for t in s.trials if t.params["learning_rate"] <= 0.03]
    failed = [trial(t.number, t.params, feasible=False, reason="diverged") for t in edge]
    check = search_space_boundary(study(s.params, rest + failed))
    assert check.verdict == "ok"


def test_top_count_is_ten_percent_and_at_least_three():
    assert [top_count(n) for n in (0, 2, 5, 30, 31, 100)] == [0, 2, 3, 3, 4, 10]


def test_suggested_bound_clamps_and_rounds():
    dropout = ParamInfo("dropout", "nuisance", "float", low=0.0, high=0.5)
    assert suggested_bound(dropout, "low") is None  # cannot go below 0
    assert suggested_bound(dropout, "high") == pytest.approx(0.75)
    layers = ParamInfo("layers", "nuisance", "int", low=2, high=5)
    assert suggested_bound(layers, "high") == 7 and suggested_bound(layers, "low") == 0


def test_no_numeric_parameter_is_not_applicable():
    s = study((ParamInfo("opt", "nuisance", "choice", values=("adam", "sgd")),),
              [trial(1, {"opt": "adam"}, 0.1), trial(2, {"opt": "sgd"}, 0.2)])
    assert search_space_boundary(s).verdict == "n/a"


# -- known truth: how often the check warns, on studies the product's own sampler places -------------

REPETITIONS = 200
NOISE = 0.05  # seed noise of the objective, against an objective that spans about 1 over the range


def _warning_rate(objective, n_trials: int) -> float:
    """Share of REPETITIONS quasi-random studies (seeds 0..) on which the check warns about any parameter.

    objective(u) is the loss at position u of the learning-rate range (log scale); weight decay
    does not matter, so a warning about it is always false.
    """
    warnings = 0
    for seed in range(REPETITIONS):
        noise = np.random.default_rng(10_000 + seed).normal(0, NOISE, n_trials)
        trials = [trial(i, values, objective(LR.position(values["learning_rate"])) + noise[i])
                  for i, values in enumerate(quasi_random_trials(n_trials, seed))]
        warnings += search_space_boundary(study((LR, WD), trials)).verdict == "warning"
    return warnings / REPETITIONS


def improving_to_the_top(u: float) -> float:
    return 1.0 - u  # the loss falls all the way to the top of the lr range: the optimum lies beyond it


def bowl_mid_range(u: float) -> float:
    return 4 * (u - 0.5) ** 2  # the optimum sits in the middle of the range


def test_a_boundary_is_found_with_8_trials_at_least_90_percent_of_the_time():
    assert _warning_rate(improving_to_the_top, 8) >= 0.90


@pytest.mark.parametrize("n_trials", [8, 20])
def test_a_mid_range_optimum_warns_at_most_5_percent_of_the_time(n_trials):
    assert _warning_rate(bowl_mid_range, n_trials) <= 0.05


def test_the_evidence_says_where_the_best_trial_sits_and_how_strong_the_trend_is():
    values = quasi_random_trials(8, seed=3)
    trials = [trial(i, v, improving_to_the_top(LR.position(v["learning_rate"]))) for i, v in enumerate(values)]
    check = search_space_boundary(study((LR, WD), trials))
    row = {r["param"]: r for r in check.evidence["params"]}["learning_rate"]
    top = max(LR.position(v["learning_rate"]) for v in values)
    assert check.verdict == "warning" and row["crowded"] == "high"
    assert row["best_position"] == pytest.approx(top) and row["best_position"] > 0.8
    # The 6 trials other than the best 2 rank perfectly: better the higher the lr.
    assert row["trend_trials"] == 6 and row["trend_tau"] == pytest.approx(1.0) and row["trend_p_high"] < 0.01
    assert f"at {top:.3f} of the range" in check.details[0] and "Kendall tau +1.00" in check.details[1]
