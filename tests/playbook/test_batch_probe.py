import json
import math

import numpy as np
import pytest

from runner.playbook.batch_probe import (
    ALWAYS_ADVICE,
    MIN_MEASURED_STEPS,
    WARMUP_STEPS,
    ProbeRun,
    decide,
    estimate,
    next_batch_size,
    training_time_s,
)

STEPS = 30


def run(b: int, thr: float, steps: int = STEPS, sigma: float = 0.0, seed: int = 0, memory: float | None = None):
    """An ok run at batch size b with true throughput thr; warm-up steps are 100x too slow."""
    noise = np.random.default_rng(seed).lognormal(0.0, sigma, steps) if sigma else np.ones(steps)
    samples = thr * noise
    samples[:WARMUP_STEPS] = thr / 100
    return ProbeRun(b, "ok", tuple(samples), memory)


def probe(curve, sizes, limit: int | None = None, failed_at: int | None = None, cap: int = 1 << 20):
    """Drive the probe like the runner does: next_batch_size until done; OOM above `limit`."""
    runs: list[ProbeRun] = []
    while (b := next_batch_size(runs, sizes[0], cap)) is not None:
        if limit is not None and b > limit:
            runs.append(ProbeRun(b, "oom", (), detail="CUDA out of memory"))
        elif b == failed_at:
            runs.append(ProbeRun(b, "failed", (), detail="exit code 1: ImportError"))
        else:
            runs.append(run(b, curve(b), memory=b * 2.0))
    return runs, decide(runs, cap=cap)


def test_perfect_scaling_until_oom_recommends_the_last_size_that_fit():
    runs, result = probe(lambda b: 100.0 * b, [16], limit=256)
    assert [r.batch_size for r in runs] == [16, 32, 64, 128, 256, 512]
    assert result.stopped_by == "oom" and result.recommended == 256
    assert result.knee is None and not result.bottleneck
    assert [r.scaling_efficiency for r in result.rows[:5]] == [None, 1.0, 1.0, 1.0, 1.0]
    assert result.rows[-1].outcome == "oom" and result.rows[-1].examples_per_s is None
    assert result.row(256).time_per_step_s == pytest.approx(0.01) and result.row(256).peak_memory_mb == 512.0
    assert "until memory ran out" in result.summary and "512 ran out of memory" in result.summary


def saturating(b: float, b0: float = 256.0) -> float:
    return 1000.0 * b / (1.0 + b / b0)


def test_saturating_curve_finds_the_known_knee():
    _, result = probe(saturating, [32], limit=512)
    # efficiency from b to 2b is (1 + b/b0) / (1 + 2b/b0): 0.83 at 128, 0.75 at 256 (below 0.8)
    assert result.row(128).scaling_efficiency == pytest.approx(1.25 / 1.5)
    assert result.row(256).scaling_efficiency == pytest.approx(0.75)
    assert result.knee == 256
    assert result.recommended == 512  # 256 -> 512 still gains a third
    assert not result.bottleneck  # only one doubling beyond the knee fitted: saturated near memory
    assert "stopped (nearly) doubling throughput at 256 (accelerator saturated)" in result.summary


def test_only_sizes_that_still_buy_throughput_are_recommended_even_when_larger_fit():
    # On the same curve 2048 -> 4096 gains 1.059x, below the 10% a doubling must buy.
    _, result = probe(saturating, [256], limit=4096)
    assert result.recommended == 2048 and result.knee == 512
    assert result.row(4096).outcome == "ok"


def test_flat_throughput_while_memory_allows_more_is_a_bottleneck():
    _, result = probe(lambda b: 5000.0, [16], limit=512)
    assert result.knee == 32 and result.bottleneck
    assert result.recommended == 16  # no doubling bought anything
    assert result.row(512).time_per_step_s == pytest.approx(512 / 5000)
    assert "early, at 32, while memory allowed up to 512" in result.summary
    assert any("input pipeline" in a for a in result.advice)


def test_early_means_two_more_doublings_fitted_beyond_the_knee():
    flat_then = {16: 1600.0, 32: 3200.0, 64: 3300.0, 128: 3400.0, 256: 3500.0}
    one_more, _ = probe(flat_then.get, [16], limit=128)   # knee 64, only 128 fits beyond it
    two_more, _ = probe(flat_then.get, [16], limit=256)   # knee 64, 128 and 256 fit beyond it
    assert decide(one_more, cap=1 << 20).knee == 64 and not decide(one_more, cap=1 << 20).bottleneck
    assert decide(two_more, cap=1 << 20).bottleneck


def test_the_cap_stops_the_probe():
    runs, result = probe(lambda b: 100.0 * b, [16], cap=128)
    assert [r.batch_size for r in runs] == [16, 32, 64, 128]
    assert result.stopped_by == "cap" and result.recommended == 128
    assert "until the cap of 128" in result.summary


def test_a_failed_run_stops_the_probe_and_says_why():
    runs, result = probe(lambda b: 100.0 * b, [16], failed_at=64)
    assert [r.batch_size for r in runs] == [16, 32, 64]
    assert result.stopped_by == "failed" and result.recommended == 32
    assert "64 failed (exit code 1: ImportError)" in result.summary


def test_oom_at_the_start_gives_no_recommendation():
    runs, result = probe(lambda b: 100.0 * b, [64], limit=32)
    assert result.recommended is None and result.stopped_by == "oom"
    assert "no batch size gave a throughput measurement" in result.summary
    assert any("start the probe smaller" in a for a in result.advice)


def test_noisy_samples_report_their_spread_and_warm_up_steps_do_not_count():
    sigma = 0.1
    noisy = run(64, 6400.0, steps=400, sigma=sigma, seed=3)
    est = estimate(noisy)
    assert est.steps == 400 - WARMUP_STEPS
    assert est.examples_per_s == pytest.approx(6400.0, rel=0.02)
    # lognormal: (p75 - p25) / median = 2 sinh(0.6745 sigma)
    assert est.spread == pytest.approx(2 * math.sinh(0.6745 * sigma), abs=0.02)
    other_warmup = ProbeRun(64, "ok", (1e9,) * WARMUP_STEPS + noisy.examples_per_s[WARMUP_STEPS:])
    assert estimate(other_warmup) == est
    assert estimate(noisy, skip=0).steps == 400
    very_noisy = decide([run(64, 6400.0, sigma=0.4, seed=1)], cap=64)
    assert any("varies by more than" in a for a in very_noisy.advice)
    assert not any("varies" in a for a in decide([run(64, 6400.0)], cap=64).advice)


def test_a_too_short_run_is_not_measured_and_the_result_says_so():
    short = ProbeRun(32, "ok", (10.0,) * (WARMUP_STEPS + MIN_MEASURED_STEPS - 1))
    assert estimate(short) is None
    timer_glitch = ProbeRun(32, "ok", (10.0,) * (WARMUP_STEPS + MIN_MEASURED_STEPS) + (math.nan,))
    assert estimate(timer_glitch).steps == MIN_MEASURED_STEPS
    result = decide([run(16, 1600.0), short], cap=1024)
    assert result.row(32).outcome == "too short" and result.row(32).examples_per_s is None
    assert result.recommended == 16 and result.stopped_by == "incomplete"
    assert any("32: too short to measure" in a for a in result.advice)


def test_next_batch_size_sequence():
    assert next_batch_size([], 8, 64) == 8
    assert next_batch_size([run(8, 1.0)], 8, 64) == 16
    assert next_batch_size([run(8, 1.0), run(16, 1.0)], 8, 64) == 32
    assert next_batch_size([run(8, 1.0), run(16, 1.0), run(32, 1.0), run(64, 1.0)], 8, 64) is None
    assert next_batch_size([run(8, 1.0), ProbeRun(16, "oom", ())], 8, 64) is None
    assert next_batch_size([run(8, 1.0), ProbeRun(16, "failed", ())], 8, 64) is None
    assert next_batch_size([run(8, 1.0), run(16, 1.0)], 8, 24) is None  # 32 would pass the cap
    with pytest.raises(ValueError):
        next_batch_size([], 128, 64)


def test_advice_json_and_training_time():
    _, result = probe(saturating, [32], limit=512)
    assert set(ALWAYS_ADVICE) <= set(result.advice)
    assert any("learning rate, momentum and regularization" in a for a in result.advice)
    assert any("gradient accumulation" in a for a in result.advice)
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert data["recommended"] == 512 and data["rows"][0]["batch_size"] == 32
    assert data["thresholds"]["near_doubling"] == 0.8
    rec = result.row(result.recommended)
    assert training_time_s(rec.time_per_step_s, 10_000) == pytest.approx(10_000 * 512 / saturating(512))
    with pytest.raises(ValueError):
        training_time_s(math.inf, 10)


def test_the_json_reports_the_skip_actually_used():
    runs = [ProbeRun(16, "ok", (1.0,) * 2 + (100.0,) * 10), ProbeRun(32, "ok", (1.0,) * 2 + (200.0,) * 10)]
    assert decide(runs, cap=32, skip=2).to_json()["thresholds"]["warmup_steps"] == 2


def test_a_flat_step_does_not_hide_a_much_faster_larger_batch():
    # 64 -> 128 measured flat (a throttled run), then throughput keeps growing up to the cap.
    measured = {32: 1000.0, 64: 2000.0, 128: 2050.0, 256: 4000.0, 512: 7000.0, 1024: 12000.0}
    runs, result = probe(measured.get, [32], cap=1024)
    assert result.stopped_by == "cap"
    assert result.recommended == 1024  # measured 6x faster than 64: it is the one to use
    assert "recommended batch size 1024 (" in result.summary
    # The cap explains where the probe stopped; the flat step is no knee (larger sizes scaled past it).
    assert result.knee is None and result.summary.startswith("throughput scaled until the cap of 1024; ")


def test_a_flat_step_that_larger_sizes_recover_from_is_not_the_knee():
    """The knee and the recommendation give one answer: 1024 is recommended, so no text may call the
    flat 64 -> 128 step the knee or a bottleneck; the flat step is named as such in the advice."""
    measured = {32: 1000.0, 64: 2000.0, 128: 2050.0, 256: 4000.0, 512: 7000.0, 1024: 12000.0}
    _, result = probe(measured.get, [32], limit=1024)
    assert result.recommended == 1024 and result.knee is None and not result.bottleneck
    assert "early" not in result.summary and "at 128" not in result.summary
    assert result.summary.startswith("throughput scaled until memory ran out")
    assert any(a.startswith("batch size(s) 128 fell short of doubling throughput, yet larger sizes scaled")
               for a in result.advice)
    assert not any("input pipeline" in a for a in result.advice)
    # the same flat step, then throughput really stops growing at 2048: that is the knee
    measured |= {2048: 12500.0, 4096: 12600.0, 8192: 12700.0}
    _, result = probe(measured.get, [32], limit=8192)
    assert (result.recommended, result.knee) == (1024, 2048)
    assert "doubling stopped (nearly) doubling throughput early, at 2048" in result.summary
