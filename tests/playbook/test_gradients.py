import numpy as np
import pytest
from playbook_synth import LR, WIDTH, curve, curves, study, trial

from runner.playbook.data import ParamInfo
from runner.playbook.gradients import gradient_norm, histogram, norm_stats

STEPS = np.arange(1, 1001)


def norms(scale: float = 1.0, seed: int = 0) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(0.0, 0.3, len(STEPS))


def two_widths(big_scale: float = 1.0, spike: bool = False, clip: float | None = None):
    """Best trial 1 (width 32), best of width 512 is trial 3; norms of width 512 scaled by big_scale."""
    params = (LR, WIDTH) + ((ParamInfo("grad_clip", "fixed", "fixed"),) if clip else ())
    extra = {"grad_clip": clip} if clip else {}
    s = study(params, [trial(1, {"learning_rate": 0.01, "width": 32, **extra}, 0.1),
                       trial(2, {"learning_rate": 0.1, "width": 32, **extra}, 0.4),
                       trial(3, {"learning_rate": 0.01, "width": 512, **extra}, 0.2)])
    best = norms(seed=1)
    if spike:
        best[500] = 50 * np.median(best)
    return s, curves(curve(1, "grad_norm", STEPS, best), curve(2, "grad_norm", STEPS, norms(seed=2)),
                     curve(3, "grad_norm", STEPS, norms(big_scale, seed=3)))


def test_percentiles_and_threshold():
    stats = norm_stats(curve(1, "grad_norm", np.arange(100), np.arange(1, 101)), threshold=90.0)
    assert (stats["p50"], stats["p90"], stats["max"]) == (pytest.approx(50.5), pytest.approx(90.1), 100)
    assert stats["clipped_share_at_threshold"] == pytest.approx(0.10)
    assert stats["spikes"] == 0


def test_a_clean_study_is_ok_and_recommends_the_best_trials_p90():
    s, c = two_widths()
    check = gradient_norm(s, c)
    assert check.verdict == "ok"
    assert check.evidence["recommended_threshold"] == pytest.approx(np.percentile(c.get(1, "grad_norm").values, 90))
    row = {r["trial"]: r for r in check.evidence["trials"]}[1]
    assert row["clipped_share_at_threshold"] == pytest.approx(0.10, abs=0.002)


def test_spikes_in_the_best_trial_warn():
    s, c = two_widths(spike=True)
    check = gradient_norm(s, c)
    assert check.verdict == "warning" and "spike" in check.summary
    row = {r["trial"]: r for r in check.evidence["trials"]}[1]
    assert row["spikes"] == 1 and row["spike_steps"] == [501]


def test_spikes_hidden_by_downsampling_are_kept_by_the_bucket_highs():
    values = norms(seed=1)
    values[505] = 50.0  # inside bucket 500..509; the bucket's last value (step 510) is ordinary
    steps = STEPS[9::10]
    last = values[9::10]
    highs = values.reshape(-1, 10).max(axis=1)
    stats = norm_stats(curve(1, "grad_norm", steps, last, highs=highs))
    assert stats["spikes"] == 1 and stats["max"] == 50.0
    assert norm_stats(curve(1, "grad_norm", steps, last))["spikes"] == 0  # without highs it would be missed


def test_one_threshold_that_clips_most_updates_of_another_scientific_value_warns():
    s, c = two_widths(big_scale=5.0)
    check = gradient_norm(s, c)
    assert check.verdict == "warning" and check.evidence["threshold_misfit_trials"] == [3]
    assert "width=512" in check.summary


def test_a_configured_clip_that_clips_most_updates_is_a_problem():
    s, c = two_widths(clip=0.5)  # median norm is 1.0: nearly every update clipped
    check = gradient_norm(s, c)
    assert check.verdict == "problem" and "lower" in check.advice
    assert check.evidence["overclipped_trials"] == [1, 2, 3]
    s, c = two_widths(clip=3.0)  # clips almost nothing
    assert gradient_norm(s, c).verdict == "ok"


def test_histogram_counts_every_positive_point():
    h = histogram(list(norms()))
    assert sum(h["counts"]) == len(STEPS) and len(h["edges"]) == 21


def test_no_grad_norm_is_not_applicable():
    s, _ = two_widths()
    assert gradient_norm(s, curves()).verdict == "n/a"
