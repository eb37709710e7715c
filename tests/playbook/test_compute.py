import numpy as np
import pytest
from playbook_synth import LR, WIDTH, curve, curves, study, trial

from runner.playbook.compute import compute_axis, compute_view, pareto_frontier, time_to_target

STEPS = np.arange(10, 201, 10)


def loss(speed: float) -> np.ndarray:
    """A loss that falls `speed` times faster per step."""
    return 0.1 + 2 * np.exp(-STEPS * speed / 50)


def race(big_cost: float):
    """Width 512 learns 2x faster per step; each of its steps costs `big_cost` s, width 32's cost 1 s."""
    s = study((LR, WIDTH), [trial(1, {"learning_rate": 0.01, "width": 32}, float(loss(1)[-1])),
                            trial(2, {"learning_rate": 0.01, "width": 512}, float(loss(2)[-1]))])
    c = curves(curve(1, "val_loss", STEPS, loss(1)), curve(2, "val_loss", STEPS, loss(2)),
               curve(1, "elapsed_s", STEPS, STEPS * 1.0), curve(2, "elapsed_s", STEPS, STEPS * big_cost))
    return s, c


def test_fewer_steps_but_more_compute_loses_the_race_by_compute():
    check = compute_view(*race(big_cost=5.0))
    assert check.verdict == "warning"
    ev = check.evidence
    assert ev["axis"] == "seconds" and ev["winner_by_compute"] == 1 and ev["winner_by_steps"] == [2]
    assert "by compute trial 1 (width=32)" in check.summary


def test_when_steps_cost_the_same_both_views_agree():
    check = compute_view(*race(big_cost=1.0))
    assert check.verdict == "ok"
    assert check.evidence["winner_by_compute"] == 2 and check.evidence["winner_by_steps"] == [2]


def test_default_target_is_one_every_scientific_value_reaches():
    check = compute_view(*race(big_cost=5.0))
    assert check.evidence["target"] == pytest.approx(loss(1)[-1])  # the looser of the two bests
    assert {r["trial"] for r in check.evidence["time_to_target"]} == {1, 2}


def test_pareto_frontier_is_the_best_reached_by_each_compute():
    points = {1: (np.array([1, 2, 3.]), np.array([1, 2, 3.]), np.array([5, 3, 1.])),
              2: (np.array([1, 2.]), np.array([1.5, 2.5]), np.array([4, 3.5]))}
    assert [(r["compute"], r["value"], r["trial"]) for r in pareto_frontier(points, "min")] == [
        (1.0, 5.0, 1), (1.5, 4.0, 2), (2.0, 3.0, 1), (3.0, 1.0, 1)]
    assert [(r["compute"], r["value"]) for r in pareto_frontier(points, "max")] == [(1.0, 5.0)]
    assert time_to_target(points, 3.5, "min") == {1: {"step": 2.0, "compute": 2.0}, 2: {"step": 2.0, "compute": 2.5}}


def one_trial(params, *extra_curves, **timing):
    s = study((LR,), [trial(1, {"learning_rate": 0.01, **params}, 0.2, last_step=200, **timing)])
    return s, curves(curve(1, "val_loss", STEPS, loss(1)), *extra_curves)


def axis_of(s, c):
    axis = compute_axis(s, c, list(s.trials))
    return axis.kind, axis.sources[1], axis.at(1, np.array([100.0, 200.0]))


def test_axis_prefers_flops_then_seconds_then_examples():
    kind, source, at = axis_of(*one_trial({}, curve(1, "flops", STEPS, STEPS * 1e9),
                                          curve(1, "elapsed_s", STEPS, STEPS * 2.0)))
    assert (kind, source) == ("flops", "metric flops") and at.tolist() == [1e11, 2e11]


def test_seconds_from_throughput_and_batch_size():
    # 64 examples a step at 128 examples/s: half a second per step.
    rate = curve(1, "examples_per_s", np.arange(1, 201), np.full(200, 128.0))
    kind, source, at = axis_of(*one_trial({"batch_size": 64}, rate))
    assert kind == "seconds" and "examples_per_s" in source and at.tolist() == pytest.approx([50.0, 100.0])


def test_seconds_from_per_point_wall_times():
    s, _ = one_trial({})
    c = curves(curve(1, "val_loss", STEPS, loss(1), wall=STEPS * 3.0))
    assert axis_of(s, c)[:2] == ("seconds", "wall time of each point")


def test_seconds_from_the_trial_duration_when_nothing_else():
    kind, source, at = axis_of(*one_trial({}, started_at=1000.0, ended_at=1040.0))
    assert kind == "seconds" and "start-to-end" in source and at.tolist() == pytest.approx([20.0, 40.0])


def test_examples_from_batch_size_then_steps_only():
    assert axis_of(*one_trial({"batch_size": 32}))[:2] == ("examples", "batch_size x step")
    s, c = one_trial({})
    check = compute_view(s, c)
    assert check.evidence["axis"] == "steps" and check.verdict == "n/a" and "steps only" in check.summary


def test_no_curves_is_not_applicable():
    s, _ = race(1.0)
    assert compute_view(s, curves()).verdict == "n/a"
