import numpy as np
import pytest
from playbook_synth import LR, WD, lr_grid, study, trial

from runner.playbook.sampling import bootstrap_best_of_k, near_best, sampling_density, still_pays


def dense_study(n: int = 40, mode: str = "min"):
    """One nuisance dimension, many trials, a broad good region (many near the best)."""
    trials = [trial(i, {"learning_rate": lr}, min(abs(np.log10(lr) + 2.5), 1.0) * (1 if mode == "min" else -1))
              for i, lr in enumerate(lr_grid(n))]
    return study((LR,), trials, mode=mode)


def lucky_study():
    """Two nuisance dimensions, 6 trials, one far better than the rest."""
    values = [0.05, 0.50, 0.52, 0.55, 0.60, 0.61]
    trials = [trial(i, {"learning_rate": lr, "weight_decay": 1e-4 * (i + 1)}, v)
              for i, (lr, v) in enumerate(zip(lr_grid(6), values, strict=True))]
    return study((LR, WD), trials)


def test_dense_well_sampled_study_is_ok():
    check = sampling_density(dense_study())
    assert check.verdict == "ok"
    ev = check.evidence
    assert ev["trials_per_nuisance_dim"] == {"all trials": 40.0}
    assert len(ev["near_best_trials"]) >= 3 and ev["still_pays_share"] <= 0.1


def test_few_trials_and_a_lone_best_warn():
    check = sampling_density(lucky_study())
    assert check.verdict == "warning"
    ev = check.evidence
    assert ev["trials_per_nuisance_dim"] == {"all trials": 3.0}
    assert ev["near_best_trials"] == [0]
    assert ev["still_pays_share"] > 0.1  # the lucky trial is rarely drawn in half the trials
    assert "trials per nuisance dimension" in check.summary and "near the best" in check.summary


def test_each_condition_alone_warns():
    # Many trials per dimension, but the good region holds only the winner.
    values = [0.01] + [0.5 + 0.01 * i for i in range(29)]
    s = study((LR,), [trial(i, {"learning_rate": lr}, v) for i, (lr, v) in enumerate(zip(lr_grid(30), values, strict=True))])
    check = sampling_density(s)
    assert check.verdict == "warning" and "near the best" in check.summary
    assert "trials per nuisance dimension" not in check.summary


def test_bootstrap_is_reproducible_and_monotone():
    s = lucky_study()
    a, b = bootstrap_best_of_k(s, seed=3), bootstrap_best_of_k(s, seed=3)
    assert a == b
    means = [r["mean"] for r in a]
    assert all(x >= y - 1e-12 for x, y in zip(means, means[1:], strict=False))  # min mode: best-of-k improves with k
    assert all(r["p10"] <= r["p50"] <= r["p90"] for r in a)
    assert a[0]["k"] == 1 and a[0]["mean"] == pytest.approx(np.mean([t.best_value for t in s.trials]), rel=0.05)
    # With all 6 drawn, the lucky trial is in the draw with probability 1 - (5/6)^6 = 0.67.
    assert a[-1]["p50"] == 0.05


def test_bootstrap_counts_infeasible_trials_as_draws_without_a_result():
    trials = [trial(0, {"learning_rate": 0.01}, 0.1)] + [
        trial(i, {"learning_rate": 0.05 + i / 100}, feasible=False, reason="diverged") for i in range(1, 4)]
    rows = bootstrap_best_of_k(study((LR,), trials))
    assert rows[0]["no_feasible"] == pytest.approx(0.75, abs=0.04)
    assert rows[-1]["no_feasible"] == pytest.approx(0.75 ** 4, abs=0.04)


def test_max_mode():
    s = dense_study(mode="max")
    near, tolerance = near_best(s)
    assert len(near) >= 3 and tolerance > 0
    rows = bootstrap_best_of_k(s)
    means = [r["mean"] for r in rows]
    assert all(x <= y + 1e-12 for x, y in zip(means, means[1:], strict=False))
    assert still_pays(rows, 40, "max") <= 0.1
    assert sampling_density(s).verdict == "ok"


def test_no_feasible_trial_is_not_applicable():
    s = study((LR,), [trial(1, {"learning_rate": 0.1}, feasible=False, reason="diverged")])
    assert sampling_density(s).verdict == "n/a"
