import numpy as np
import pytest
from playbook_synth import LR, WIDTH, curve, curves, study, trial

from runner.playbook.training_curves import (
    diagnose_objective,
    diagnose_training_loss,
    noise_sigma,
    train_loss_metric,
    training_curves,
)

T = 1000
STEPS = np.arange(0, T + 1, 10)  # 101 evaluations
RNG = np.random.default_rng(0)


def clean(steps=STEPS):
    """Improves through most of training, flat at the very end (tau = T/5)."""
    return 0.1 + 2 * np.exp(-steps / 200)


def noisy(values, sigma, rng=RNG):
    return values + rng.normal(0, sigma, len(values))


def findings(values, steps=STEPS):
    return diagnose_objective(steps.astype(float), np.asarray(values, dtype=float))[0]


def test_noise_sigma_recovers_white_noise_on_a_trend():
    steps = np.arange(5000)
    values = 3 - steps / 5000 + np.random.default_rng(1).normal(0, 0.1, 5000)
    assert noise_sigma(values) == pytest.approx(0.1, rel=0.1)
    assert noise_sigma(np.array([1.0, 2.0])) == 0.0


def test_a_clean_curve_has_no_findings():
    assert not any(findings(noisy(clean(), 0.002)).values())


def test_overfitting_validation_that_rises_after_its_best():
    rising = clean() + 0.4 * np.maximum(0, STEPS - 400) / 600
    assert findings(noisy(rising, 0.002))["overfitting"]
    assert not findings(noisy(clean(), 0.002))["overfitting"]


def test_noise_after_the_best_is_not_overfitting():
    flat_noisy = np.concatenate([clean()[:60], noisy(np.full(41, clean()[60]), 0.05)])
    f = findings(flat_noisy)
    assert not f["overfitting"]


def test_high_variance_late_in_training():
    late_noise = clean().copy()
    late_noise[76:] += np.random.default_rng(2).normal(0, 0.2, 25)
    assert findings(late_noise)["high_late_variance"]
    assert not findings(noisy(clean(), 0.002))["high_late_variance"]


def test_still_improving_at_the_last_step():
    linear = 2.1 - 2 * STEPS / T
    f = findings(noisy(linear, 0.002))
    assert f["still_improving"] and not f["saturated_early"]
    assert not findings(noisy(clean(), 0.002))["still_improving"]


def test_saturated_long_before_the_end():
    fast = 0.1 + 2 * np.exp(-STEPS / 50)
    f = findings(noisy(fast, 0.002))
    assert f["saturated_early"] and not f["still_improving"]
    assert not findings(noisy(clean(), 0.002))["saturated_early"]


def test_findings_survive_downsampling():
    # What read_series hands out when it buckets 1000 steps into 100: every 10th value.
    full_steps = np.arange(0, 1001)
    rising = noisy(clean(full_steps) + 0.4 * np.maximum(0, full_steps - 400) / 600, 0.002)
    assert findings(rising, full_steps)["overfitting"] == findings(rising[::10], full_steps[::10])["overfitting"] is True
    linear = noisy(2.1 - 2 * full_steps / T, 0.002)
    assert findings(linear[::10], full_steps[::10])["still_improving"]


def test_max_mode_is_read_through_negation():
    accuracy = 1 - (clean() + 0.4 * np.maximum(0, STEPS - 400) / 600) / 3  # rises, then falls
    assert findings(-accuracy)["overfitting"]


def train_loss(rise: bool, n=2000, seed=3):
    steps = np.arange(n)
    values = 0.2 + 2.3 * np.exp(-steps / 200) + (0.8 * np.maximum(0, steps - 1000) / 1000 if rise else 0)
    return np.random.default_rng(seed).normal(0, 0.1, n) + values


def test_training_loss_rising_during_training():
    assert diagnose_training_loss(train_loss(rise=True))[0]
    assert not diagnose_training_loss(train_loss(rise=False))[0]
    assert not diagnose_training_loss(train_loss(rise=False, n=300))[0]


def test_train_loss_metric_choice():
    assert train_loss_metric(["train_loss", "loss", "val_loss"], "val_loss") == "train_loss"
    assert train_loss_metric(["loss", "val_loss"], "val_loss") == "loss"
    assert train_loss_metric(["eval_loss", "val_loss", "test_loss"], "val_loss") is None
    assert train_loss_metric(["my_loss"], "val_loss", preferred="nope") == "my_loss"


def study_with(train_rising: bool, overfit_width: int | None = None):
    """Two widths x two lrs; the best trial per width gets the interesting curves."""
    trials = [trial(1, {"learning_rate": 0.01, "width": 32}, 0.3), trial(2, {"learning_rate": 0.05, "width": 32}, 0.5),
              trial(3, {"learning_rate": 0.01, "width": 512}, 0.2), trial(4, {"learning_rate": 0.05, "width": 512}, 0.6)]
    items = []
    for t, width in ((1, 32), (3, 512)):
        val = clean() + (0.4 * np.maximum(0, STEPS - 400) / 600 if width == overfit_width else 0)
        items.append(curve(t, "val_loss", STEPS, noisy(val, 0.002)))
        items.append(curve(t, "train_loss", np.arange(2000), train_loss(rise=train_rising and width == 512)))
    # Trial 2 is nobody's best: its rising loss must not count.
    items.append(curve(2, "train_loss", np.arange(2000), train_loss(rise=True)))
    return study((LR, WIDTH), trials), curves(*items)


def test_check_reads_the_best_trial_of_each_scientific_value():
    s, c = study_with(train_rising=False)
    check = training_curves(s, c)
    assert check.verdict == "ok"
    assert sorted(r["trial"] for r in check.evidence["trials"]) == [1, 3]


def test_check_flags_a_rising_training_loss_as_a_problem():
    s, c = study_with(train_rising=True)
    check = training_curves(s, c)
    assert check.verdict == "problem" and "trial 3" in check.summary and "bug" in check.advice
    by_trial = {r["trial"]: r for r in check.evidence["trials"]}
    assert by_trial[3]["findings"]["training_loss_rising"] and not by_trial[1]["findings"]["training_loss_rising"]


def test_check_flags_overfitting_as_a_warning():
    s, c = study_with(train_rising=False, overfit_width=32)
    check = training_curves(s, c)
    assert check.verdict == "warning" and check.summary.startswith("overfitting: trial 1")


def test_missing_curves_are_not_applicable():
    s, _ = study_with(train_rising=False)
    assert training_curves(s, curves()).verdict == "n/a"
