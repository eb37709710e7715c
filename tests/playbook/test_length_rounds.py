"""The training-length decisions on curves and rounds whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.playbook.rounds import best_configurations, stretch_schedule, transfer
from runner.playbook.training_length import (
    FIT_TARGET_SHARE,
    TARGET_MARGIN,
    SweepCurve,
    initial_steps,
    propose_target,
    steps_to_target,
)
from runner.playbook.warmup import LossCurve

STEPS = tuple(range(1, 401))


def exp_curve(rate: float, floor: float = 0.0) -> LossCurve:
    """loss(s) = floor + exp(-rate * s): it crosses floor + t first at s = ceil(ln(1/t) / rate)."""
    return LossCurve(STEPS, tuple(floor + math.exp(-rate * s) for s in STEPS))


def crossing(rate: float, target: float) -> int:
    return math.ceil(math.log(1 / target) / rate)


def test_steps_to_target_is_the_first_step_at_or_below_it():
    for rate in (0.01, 0.03, 0.1):
        assert steps_to_target(exp_curve(rate), 0.05, window=1) == crossing(rate, 0.05)
    assert steps_to_target(exp_curve(0.001), 0.05, window=1) is None  # never gets there in 400 steps


def test_one_lucky_batch_below_the_target_is_not_reaching_it():
    values = [1.0] * 400
    values[9] = 0.0  # step 10: one batch far below the target
    for s in range(50, 401):
        values[s - 1] = 0.01  # from step 50 on the run has really fitted
    curve = LossCurve(STEPS, tuple(values))
    assert steps_to_target(curve, 0.1, window=1) == 10
    # trailing mean of 5: (5 - m) * 1 + m * 0.01 <= 0.5 needs all 5 points past step 50 -> step 54
    assert steps_to_target(curve, 0.1, window=5) == 54


def test_nan_points_are_skipped_not_counted_as_low():
    values = [1.0, float("nan"), None, 0.5, 0.01]
    curve = LossCurve((1, 2, 3, 4, 5), tuple(values))
    assert steps_to_target(curve, 0.05, window=1) == 5


def test_proposed_target_sits_a_margin_above_the_best_final_loss():
    runs = [SweepCurve(0.01, exp_curve(0.005, floor=0.2)), SweepCurve(0.1, exp_curve(0.05, floor=0.02)),
            SweepCurve(1.0, exp_curve(0.02, floor=0.5), "diverged")]
    target = propose_target(runs, window=1)
    final = 0.02 + math.exp(-0.05 * 400)
    assert target.value == pytest.approx(final * (1 + TARGET_MARGIN))
    assert target.proposed and "lr 0.1" in target.why


def test_initial_steps_is_the_fastest_runs_steps_to_the_target():
    rates = {0.01: 0.01, 0.03: 0.03, 0.1: 0.06, 0.3: 0.02}  # lr -> how fast its loss falls
    runs = [SweepCurve(lr, exp_curve(k)) for lr, k in rates.items()]
    out = initial_steps(runs, horizon=400, target=0.01, window=1)
    assert out.fastest_lr == 0.1
    assert out.max_train_steps == crossing(0.06, 0.01)
    by_lr = {r["learning_rate"]: r["steps_to_target"] for r in out.rows}
    assert by_lr[0.01] is None  # exp(-4) = 0.018 > 0.01 at step 400
    assert by_lr[0.03] == crossing(0.03, 0.01) and by_lr[0.3] == crossing(0.02, 0.01)
    assert not out.target_proposed and not any("edge" in a or "extend the grid" in a for a in out.advice)
    assert f"max_train_steps = {crossing(0.06, 0.01)}" in out.summary


def test_fastest_lr_at_the_edge_of_the_grid_is_flagged():
    runs = [SweepCurve(lr, exp_curve(k)) for lr, k in {0.01: 0.01, 0.1: 0.03, 1.0: 0.08}.items()]
    out = initial_steps(runs, horizon=400, target=0.01, window=1)
    assert out.fastest_lr == 1.0
    assert any("highest of the sweep" in a for a in out.advice)


def test_a_run_that_does_not_fit_is_said_so():
    runs = [SweepCurve(lr, exp_curve(k, floor=0.6)) for lr, k in {0.01: 0.01, 0.1: 0.05, 1.0: 0.02}.items()]
    out = initial_steps(runs, horizon=400, window=1)
    assert out.max_train_steps is not None and out.target_proposed
    assert any("does not fit" in a for a in out.advice)


def test_unreachable_target_gives_no_steps_and_says_why():
    runs = [SweepCurve(0.1, exp_curve(0.01))]
    out = initial_steps(runs, horizon=400, target=1e-6, window=1)
    assert out.max_train_steps is None and "no run reached" in out.summary


def test_best_configurations_picks_the_k_best_and_never_a_failed_one():
    scores = {"a": 0.5, "b": 0.2, "c": None, "d": float("nan"), "e": 0.3, "f": 0.9}
    assert best_configurations(scores, 3, "min") == ["b", "e", "a"]
    assert best_configurations(scores, 2, "max") == ["f", "a"]
    assert best_configurations(scores, 10, "min") == ["b", "e", "a", "f"]


def test_linear_stretch_keeps_the_decay_and_extends_the_peak():
    s = stretch_schedule("linear", 100, 400, 50)
    assert (s.max_train_steps, s.decay_steps, s.constant_steps) == (400, 50, 350)
    assert "50 to 350" in s.why


def test_cosine_stretch_keeps_base_lr_and_stretches_the_period():
    s = stretch_schedule("cosine", 100, 400, 100)
    assert (s.max_train_steps, s.decay_steps, s.constant_steps) == (400, 400, None)


def test_stretch_refuses_a_shorter_round_two_and_an_unknown_schedule():
    with pytest.raises(ValueError, match="longer"):
        stretch_schedule("linear", 400, 100, 50)
    with pytest.raises(ValueError, match="expected one of"):
        stretch_schedule("step", 100, 400, 50)
    with pytest.raises(ValueError, match="decay_steps"):
        stretch_schedule("linear", 100, 400, 150)


def test_rank_correlation_of_a_constructed_pair_of_rounds():
    short = {"a": 0.10, "b": 0.20, "c": 0.30, "d": 0.40, "e": 0.50}
    same_order = {k: v / 2 for k, v in short.items()}
    out = transfer(short, same_order, "min")
    assert out.spearman == pytest.approx(1.0) and out.kendall == pytest.approx(1.0)
    assert out.verdict == "transferred" and out.best_kept

    reversed_order = {"a": 0.5, "b": 0.4, "c": 0.3, "d": 0.2, "e": 0.1}
    out = transfer(short, reversed_order, "min")
    assert out.spearman == pytest.approx(-1.0) and out.verdict == "did not transfer" and not out.best_kept

    # one swap of neighbours among 5: rho = 1 - 6 * 2 / (5 * 24) = 0.9, tau = (9 - 1) / 10 = 0.8
    one_swap = {"a": 0.1, "b": 0.3, "c": 0.2, "d": 0.4, "e": 0.5}
    out = transfer(short, one_swap, "min")
    assert out.spearman == pytest.approx(0.9) and out.kendall == pytest.approx(0.8)
    assert out.verdict == "transferred" and out.best_kept

    # two swaps: rho = 1 - 6 * 4 / 120 = 0.8 ... with a's swap the best changes
    two_swaps = {"a": 0.2, "b": 0.1, "c": 0.3, "d": 0.5, "e": 0.4}
    out = transfer(short, two_swaps, "min")
    assert out.spearman == pytest.approx(0.8) and not out.best_kept
    assert np.isfinite(out.spearman_p)


def test_rank_correlation_needs_three_configurations_run_in_both_rounds():
    out = transfer({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": None}, "min")
    assert out.verdict == "too few" and out.spearman is None and out.pairs == 1


def test_proposed_target_for_a_run_that_fits_is_a_share_of_its_first_loss():
    # a loss falling towards 0: "10% above its final value" would sit at the end of every run
    runs = [SweepCurve(0.1, exp_curve(0.05)), SweepCurve(0.01, exp_curve(0.01))]
    target = propose_target(runs, window=1)
    assert target.value == pytest.approx(FIT_TARGET_SHARE * math.exp(-0.05))
    assert "fitted" in target.why
    out = initial_steps(runs, horizon=400, window=1)
    assert out.max_train_steps == crossing(0.05, target.value)  # about 93 steps, far from the end


def test_a_run_that_reaches_the_target_and_leaves_it_has_not_fitted():
    steady = exp_curve(0.03)
    # faster at first, then blows up: below 0.01 from step 47 to 199, back at 1.0 from step 200
    unstable = LossCurve(STEPS, tuple(math.exp(-0.1 * s) if s < 200 else 1.0 for s in STEPS))
    out = initial_steps([SweepCurve(0.1, steady), SweepCurve(1.0, unstable)], horizon=400, target=0.01, window=1)
    assert out.fastest_lr == 0.1 and out.max_train_steps == crossing(0.03, 0.01)
    row = next(r for r in out.rows if r["learning_rate"] == 1.0)
    assert row["steps_to_target"] is None and row["left_target_after"] == crossing(0.1, 0.01)


def test_parameters_are_read_in_the_playbooks_order_of_what_transfers():
    from runner.playbook.rounds import param_transfer, transfer_class

    assert transfer_class("warmup_steps")[0] == 0 and transfer_class("init_scale")[0] == 0
    assert transfer_class("width")[0] == 1 and transfer_class("num_layers")[0] == 1
    assert transfer_class("learning_rate")[0] == 2 and transfer_class("weight_decay")[0] == 2
    assert transfer_class("decay_steps")[0] == 3 and transfer_class("schedule")[0] == 3
    assert transfer_class("seed") is None
    kept = param_transfer("width", 128, 128)
    assert kept["kept"] and "likely to transfer" in kept["summary"]
    changed = param_transfer("learning_rate", 0.05, 0.02)
    assert not changed["kept"] and "changed; optimizer hyperparameters" in changed["summary"]


def test_a_rank_correlation_on_the_threshold_gets_the_verdict_of_the_threshold():
    # ranks (1 2 3 4) against (3 1 2 4): sum d^2 = 4 + 1 + 1 + 0 = 6, rho = 1 - 6 * 6 / (4 * 15) = 0.4
    short = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    long = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 4.0}
    out = transfer(short, long, "min")
    assert out.spearman == pytest.approx(0.4) and out.verdict == "partly"
