"""The warmup wizard's decisions on synthetic loss curves with known truth."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from runner.playbook.warmup import (
    BASE_LR_FACTORS,
    EARLY_CHECK_STEPS,
    LossCurve,
    SweepRun,
    WarmupRun,
    classify,
    clipping,
    early_check,
    final_loss,
    lr_grid,
    lr_sweep,
    post_warmup_steps,
    warmup_grid,
    warmup_verdict,
)

STEPS = np.arange(1, 201)


def decay(start: float = 3.4, floor: float = 0.7, tau: float = 40.0, noise: float = 0.05, seed: int = 0,
          steps: np.ndarray = STEPS) -> np.ndarray:
    """Exponential decay from `start` to `floor` with Gaussian noise: a stable training loss."""
    rng = np.random.default_rng(seed)
    return floor + (start - floor) * np.exp(-(steps - 1) / tau) + rng.normal(0, noise, len(steps))


def as_curve(values, steps=STEPS) -> LossCurve:
    return LossCurve(tuple(int(s) for s in steps), tuple(None if v is None else float(v) for v in values))


def dead(seed: int = 0) -> np.ndarray:
    """A network knocked dead in a few steps: the loss parks at the unigram entropy (2.87)."""
    return decay(start=3.4, floor=2.87, tau=3.0, noise=0.05, seed=seed)


# -- classify ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_noisy_exponential_decay_is_stable(seed):
    s = classify(as_curve(decay(seed=seed)))
    assert (s.verdict, s.reason) == ("stable", "trained")


def test_nan_and_inf_diverge_at_their_step():
    values = list(decay())
    values[11] = math.nan
    assert classify(as_curve(values)).reason == "NaN at step 12"
    values = list(decay())[:50] + [math.inf]
    s = classify(as_curve(values, STEPS[:51]))
    assert (s.verdict, s.reason, s.evidence["step"]) == ("diverged", "inf at step 51", 51)
    values = list(decay())
    values[30] = None  # a missing point is what a NaN becomes in JSON
    assert classify(as_curve(values)).verdict == "diverged"


def test_rise_that_does_not_recover():
    values = decay(tau=10.0)
    values[40:] += np.linspace(0, 2.0, 160)  # climbs from ~0.7 back to ~2.7 and stays
    s = classify(as_curve(values))
    assert s.verdict == "unstable"
    assert "did not recover" in s.reason and s.reason.startswith("loss rose from 0.")
    assert 30 <= s.evidence["rise"]["best_step"] <= 50
    assert s.evidence["rise"]["final"] > 2.3


def test_sudden_jump_after_steady_decrease():
    values = decay(tau=15.0)
    values[54:] = 2.4 + np.random.default_rng(1).normal(0, 0.05, 146)  # x3.4 at step 55, stays
    s = classify(as_curve(values))
    assert s.verdict == "unstable"
    assert s.reason.startswith("sudden jump x") and "at step 55 after steady decrease" in s.reason
    assert s.evidence["jump"]["factor"] > 2.5
    assert s.evidence["jump"]["step"] == 55


def test_one_bad_batch_is_not_a_jump():
    values = decay()
    values[120] = 3.0  # one outlier batch, x4 for a single step
    assert classify(as_curve(values)).verdict == "stable"


def test_early_wobble_before_any_decrease_is_not_a_jump_for_classify():
    values = decay()
    values[1:3] = [3.9, 3.8]  # Adam's first steps overshoot: not yet "after steady decrease"
    assert classify(as_curve(values)).verdict == "stable"


# -- early check ---------------------------------------------------------------------


def test_early_spike_that_recovers_is_flagged_by_early_check():
    steps = np.arange(1, EARLY_CHECK_STEPS + 1)
    values = decay(steps=steps, tau=60.0)
    bump = np.zeros(len(steps))
    bump[20:45] = 3.0 * np.exp(-np.arange(25) / 5.0)  # spike at step 21, gone by ~step 45
    s = early_check(as_curve(values + bump, steps))
    assert s.verdict == "unstable" and s.evidence["recovered"]
    assert s.reason.startswith("unstable early, recovered by step ")
    assert 25 <= s.evidence["jump"]["recovered_by"] <= 60
    assert s.evidence["jump"]["step"] == 21


def test_early_check_passes_a_clean_curve():
    steps = np.arange(1, EARLY_CHECK_STEPS + 1)
    s = early_check(as_curve(decay(steps=steps, tau=60.0), steps))
    assert s.verdict == "stable" and s.reason == "no early instability in 500 steps"


# -- the learning-rate sweep -----------------------------------------------------------


def sweep_runs():
    """Known truth: lr 0.01 is best; 0.02 and up die (no NaN); 0.1 goes NaN."""
    floors = {0.001: 1.6, 0.003: 1.0, 0.01: 0.7}
    runs = [SweepRun(lr, as_curve(decay(floor=f, seed=i))) for i, (lr, f) in enumerate(floors.items())]
    runs += [SweepRun(0.02, as_curve(dead(3))), SweepRun(0.05, as_curve(dead(4)))]
    nan = list(decay())[:30] + [math.nan]
    runs.append(SweepRun(0.1, as_curve(nan, STEPS[:31]), outcome="diverged"))
    return runs


def test_sweep_finds_lr_star_and_the_dead_network_above_it():
    result = lr_sweep(list(reversed(sweep_runs())))
    assert [r.learning_rate for r in result.rows] == [0.001, 0.003, 0.01, 0.02, 0.05, 0.1]
    assert result.lr_star == 0.01 and result.unstable_lr == 0.02
    assert result.above_lr_star == (0.02, 0.05, 0.1)
    by_lr = {r.learning_rate: r for r in result.rows}
    assert by_lr[0.02].stability.verdict == "unstable"
    assert by_lr[0.02].stability.reason.startswith("failed to train")
    assert by_lr[0.1].stability.verdict == "diverged" and by_lr[0.1].final_loss is None
    assert by_lr[0.001].stability.stable  # slow below lr* is not unstable
    assert by_lr[0.01].final_loss == pytest.approx(0.7, abs=0.03)
    assert "0.2 (10x)" in " ".join(result.advice)
    data = result.to_json()
    assert data["base_learning_rates"] == pytest.approx([f * 0.02 for f in BASE_LR_FACTORS])
    assert data["rows"][3]["stability"]["verdict"] == "unstable"


def test_sweep_without_instability_says_to_extend_the_grid():
    runs = [SweepRun(lr, as_curve(decay(floor=f, seed=i))) for i, (lr, f) in
            enumerate({0.001: 1.2, 0.003: 0.8, 0.01: 0.75}.items())]
    result = lr_sweep(runs)
    assert result.lr_star == 0.01 and result.unstable_lr is None
    assert "extend the grid upward" in result.advice[0]


def test_sweep_with_nothing_stable():
    result = lr_sweep([SweepRun(0.1, as_curve([3.0, math.nan], [1, 2]), "diverged")])
    assert result.lr_star is None and result.unstable_lr is None


def test_a_failed_run_is_never_stable():
    runs = [SweepRun(0.01, as_curve(decay())), SweepRun(0.02, as_curve(decay(seed=1)), outcome="failed")]
    result = lr_sweep(runs)
    assert result.unstable_lr == 0.02


def test_lr_grid_is_log_spaced_and_rounded():
    assert lr_grid(1e-3, 0.1, 5) == [0.001, 0.00316, 0.01, 0.0316, 0.1]
    assert lr_grid(0.002, 0.002, 1) == [0.002]
    with pytest.raises(ValueError):
        lr_grid(0.0, 1.0, 3)


# -- the warmup sweep --------------------------------------------------------------------


@pytest.mark.parametrize("steps", [20, 50, 200, 500, 1000, 10_000, 30_000, 100_000, 1_000_000])
def test_warmup_grid_never_above_ten_percent(steps):
    grid = warmup_grid(steps)
    assert grid == sorted(set(grid))
    assert len(grid) >= (3 if steps >= 50 else 1)
    assert max(grid) == steps // 10 and min(grid) >= 2


def test_warmup_grid_values():
    assert warmup_grid(200) == [2, 5, 10, 20]
    assert warmup_grid(10_000) == [10, 100, 1000]
    assert warmup_grid(1_000_000) == [10, 100, 1000, 10_000, 100_000]
    assert warmup_grid(50) == [2, 3, 5]
    assert warmup_grid(10) == []
    assert post_warmup_steps(100) == 200


def warmup_runs():
    """Known truth at base lr: warmup 0 and 5 die, 10 and 20 train."""
    return [WarmupRun(0, as_curve(dead(0))), WarmupRun(5, as_curve(dead(1))),
            WarmupRun(10, as_curve(decay(floor=0.9, seed=2))), WarmupRun(20, as_curve(decay(floor=0.85, seed=3)))]


def test_shortest_stable_warmup():
    result = warmup_verdict(warmup_runs(), base_learning_rate=0.2, max_train_steps=150)
    assert result.recommended == 10
    assert [w for w, _ in result.rows] == [0, 5, 10, 20]
    assert [s.verdict for _, s in result.rows] == ["unstable", "unstable", "stable", "stable"]
    assert result.new_max_train_steps == 160 and result.exceeds_5pct  # 10 > 5% of 150
    assert "consider training for more steps" in " ".join(result.advice)
    assert result.to_json()["recommended"] == 10


@pytest.mark.parametrize("steps", [200, 1000])  # 10 is exactly 5% of 200: not above it
def test_short_warmup_within_five_percent(steps):
    result = warmup_verdict(warmup_runs(), base_learning_rate=0.2, max_train_steps=steps)
    assert result.recommended == 10 and not result.exceeds_5pct and result.new_max_train_steps == steps + 10


def test_all_dead_warmups_are_not_stable_against_lr_star():
    runs = [WarmupRun(w, as_curve(dead(w))) for w in (2, 5, 10, 20)]
    # Without a reference every run looks alike; lr*'s progress (3.4 -> 0.7) exposes them.
    result = warmup_verdict(runs, base_learning_rate=0.2, max_train_steps=200, reference_progress=2.7)
    assert result.recommended is None and result.new_max_train_steps is None
    assert "lowering the learning rate is the last resort" in result.advice[0]


def test_warmup_run_that_diverges_is_unstable():
    nan = list(decay())[:30] + [math.nan]
    runs = [WarmupRun(2, as_curve(nan, STEPS[:31]), "diverged"), WarmupRun(20, as_curve(decay()))]
    result = warmup_verdict(runs, base_learning_rate=1.0, max_train_steps=200)
    assert result.rows[0][1].verdict == "diverged" and result.recommended == 20


# -- clipping ----------------------------------------------------------------------------


def test_clipping_at_p90_clips_a_tenth():
    norms = np.random.default_rng(0).lognormal(0, 0.3, 1000)
    advice = clipping(list(norms) + [math.nan])
    assert advice.threshold == pytest.approx(np.percentile(norms, 90))
    assert advice.clipped_fraction == pytest.approx(0.1, abs=0.002)
    assert not advice.lower_lr_instead


def test_clipping_most_updates_says_lower_the_lr():
    advice = clipping([1.0, 2.0, 3.0, 4.0], threshold=1.5)
    assert advice.clipped_fraction == 0.75 and advice.lower_lr_instead
    assert "lower it instead" in advice.summary
    assert clipping([]).threshold is None


def test_final_loss_is_the_mean_of_the_last_tenth():
    assert final_loss(as_curve(list(range(100, 0, -1)), np.arange(1, 101))) == pytest.approx(5.5)


# -- real curves: sample_studies/tiny_transformer, seed 0, 200 steps (see the fixture's "source") --

REAL = Path(__file__).with_name("tiny_transformer_curves.json")


def real_curve(values: list[float]) -> LossCurve:
    return LossCurve(tuple(range(1, len(values) + 1)), tuple(values))


def real_sweep():
    data = json.loads(REAL.read_text())
    runs = [SweepRun(float(lr), real_curve(v)) for lr, v in data["lr_sweep_warmup_0"].items()]
    return data, lr_sweep(runs)


def test_real_lr_sweep_finds_the_dead_network_at_0_02():
    _, result = real_sweep()
    assert result.lr_star == 0.01 and result.unstable_lr == 0.02
    assert [r.stability.stable for r in result.rows] == [True, True, True, False, False]
    assert all(r.stability.reason.startswith("failed to train") for r in result.rows[3:])


def warmup_on_real(lr: str):
    data, sweep = real_sweep()
    runs = [WarmupRun(int(w), real_curve(v)) for w, v in data[f"warmup_at_lr_{lr}"].items()]
    return warmup_verdict(runs, base_learning_rate=float(lr), max_train_steps=200,
                          reference_progress=sweep.lr_star_progress)


def test_real_warmup_at_ten_times_the_unstable_lr_finds_nothing():
    # The measured truth for this sample: at 0.2 (10 x 0.02) no warmup up to 10% of 200 steps trains.
    result = warmup_on_real("0.2")
    assert [w for w, _ in result.rows] == warmup_grid(200)
    assert result.recommended is None


def test_real_warmup_at_the_unstable_lr_itself_needs_ten_steps():
    result = warmup_on_real("0.02")
    assert result.recommended == 10 and not result.exceeds_5pct and result.new_max_train_steps == 210
    assert [s.stable for _, s in result.rows] == [False, False, True, True]


# -- wording ---------------------------------------------------------------------------


def test_a_loss_that_went_up_is_said_to_have_risen():
    parked = 2.87 + np.random.default_rng(5).normal(0, 0.05, len(STEPS))
    parked[0] = 2.80  # the first loss is below where it parks: the loss rose over training
    result = warmup_verdict([WarmupRun(10, as_curve(parked))], base_learning_rate=0.2, max_train_steps=200,
                            reference_progress=2.7)
    text = result.rows[0][1].reason
    assert "failed to train: the loss rose by 0.0" in text and "fell by -" not in text, text


@pytest.mark.parametrize("config, suggests_adam", [
    ('command = "python train.py --optimizer adamw --lr {lr}"', False),
    ('notes = "Adam (beta2 0.98), linear warmup"', False),
    ('notes = "SGD with Nesterov momentum"', True),
    ('values = ["sgd", "adam"]', True),  # part of the study still runs momentum
    ('command = "python train.py --lr {lr}"', True),  # unknown: the playbook's general advice
])
def test_adam_is_suggested_only_to_a_study_not_already_on_it(config, suggests_adam):
    from runner.playbook.warmup import optimizers_named

    runs = [WarmupRun(w, as_curve(dead(w))) for w in (2, 5, 10, 20)]
    result = warmup_verdict(runs, base_learning_rate=0.2, max_train_steps=200, reference_progress=2.7,
                            optimizers=optimizers_named(config))
    assert ("Adam instead of momentum" in result.advice[0]) is suggests_adam, result.advice[0]
    assert "gradient clipping" in result.advice[0]
