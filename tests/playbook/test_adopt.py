import json

import numpy as np
import pytest
from scipy import stats

from runner.playbook.adopt import COMPLEXITIES, DEFAULT_SEEDS, decide, seeds_for_effect

BASE, SD = 0.30, 0.005  # a validation error of 30% with a seed-to-seed sd of half a point


def standard(n: int, seed: int = 0) -> np.ndarray:
    """n normal draws rescaled to mean exactly 0 and sd (ddof=1) exactly 1: a known effect size."""
    z = np.random.default_rng(seed).normal(size=n)
    return (z - z.mean()) / z.std(ddof=1)


def pair(effect_sd: float, n: int = DEFAULT_SEEDS) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and candidate errors (lower is better); the candidate better by exactly effect_sd seed-sd."""
    return BASE + SD * standard(n, 1), BASE - effect_sd * SD + SD * standard(n, 2)


@pytest.mark.parametrize("complexity", COMPLEXITIES)
def test_same_config_on_both_sides_is_adopted_at_most_5_percent_of_the_time(complexity):
    rng = np.random.default_rng(2024)
    cases = 1000  # per complexity; the false-adopt rate is about 2.5%, so 5% is 4 standard errors away
    verdicts = []
    for i in range(cases):
        a, b = rng.normal(BASE, SD, size=(2, DEFAULT_SEEDS))
        mode = "min" if i % 2 else "max"
        verdicts.append(decide(a, b, mode=mode, complexity=complexity, seed=i, n_resamples=100).verdict)
    assert verdicts.count("adopt") / cases <= 0.05
    assert verdicts.count("inconclusive") > verdicts.count("adopt")  # A/A is mostly "cannot tell"


def test_a_clear_improvement_is_adopted():
    baseline, candidate = pair(4.0)
    d = decide(baseline, candidate, mode="min")
    assert d.verdict == "adopt" and d.extra_seeds is None
    assert d.improvement == pytest.approx(4.0 * SD) and d.effect_sd == pytest.approx(4.0)
    assert 0 < d.ci_low < d.improvement < d.ci_high and d.welch_p < 0.001
    assert d.baseline.n == d.candidate.n == 5 and d.candidate.std == pytest.approx(SD)
    assert "Verdict: adopt" in d.reasoning and "4 seed-sd" in d.reasoning


def test_a_small_real_improvement_must_outweigh_the_complexity():
    baseline, candidate = pair(0.7, n=40)  # significant with 40 seeds, but under one seed-sd
    verdicts = {c: decide(baseline, candidate, mode="min", complexity=c) for c in COMPLEXITIES}
    assert verdicts["none"].verdict == "adopt" and verdicts["some"].verdict == "adopt"
    a_lot = verdicts["a lot"]
    assert a_lot.verdict == "inconclusive" and a_lot.required_effect_sd == 1.0
    # 0.7 must be told apart from the 1.0 demanded: 0.3 seed-sd takes 176 seeds a side
    assert a_lot.extra_seeds == seeds_for_effect(0.3) - 40
    tiny = decide(*pair(0.2, n=40), mode="min", complexity="a lot")
    assert tiny.verdict == "do not adopt" and "falls short" in tiny.reasoning


def test_a_clearly_worse_candidate_is_not_adopted():
    baseline, candidate = pair(-3.0)
    for complexity in COMPLEXITIES:
        d = decide(baseline, candidate, mode="min", complexity=complexity)
        assert d.verdict == "do not adopt" and d.improvement < 0 and d.ci_high < 0
        assert "worse by" in d.reasoning


def test_max_and_min_are_mirror_images():
    baseline, candidate = pair(1.5)
    as_min = decide(baseline, candidate, mode="min", complexity="some")
    as_max = decide(-baseline, -candidate, mode="max", complexity="some")
    for field in ("improvement", "ci_low", "ci_high", "welch_p", "effect_sd"):
        assert getattr(as_max, field) == pytest.approx(getattr(as_min, field))
    assert (as_max.verdict, as_max.seeds_needed) == (as_min.verdict, as_min.seeds_needed)
    flipped = decide(baseline, candidate, mode="max")
    assert flipped.improvement == pytest.approx(-as_min.improvement) and flipped.verdict == "do not adopt"


def test_seeds_needed_match_the_textbook_and_give_80_percent_power():
    # Cohen's tables, two-sided alpha 0.05, power 0.8: d = 0.5 needs 64 a side, d = 1.0 needs 17.
    assert seeds_for_effect(0.5) == 64 and seeds_for_effect(1.0) == 17
    needed = [seeds_for_effect(d) for d in (0.2, 0.5, 1.0, 2.0, 4.0)]
    assert needed == sorted(needed, reverse=True) and needed[0] > needed[-1]
    assert seeds_for_effect(0.0) is None
    assert decide(*pair(2.0), mode="min").seeds_needed < decide(*pair(1.0), mode="min").seeds_needed
    rng = np.random.default_rng(7)
    n = seeds_for_effect(1.0)
    p = stats.ttest_ind(rng.normal(1.0, 1.0, (4000, n)), rng.normal(0.0, 1.0, (4000, n)), axis=1,
                        equal_var=False).pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.03)


def test_inconclusive_says_how_many_more_seeds_would_settle_it():
    d = decide(*pair(0.8), mode="min")
    assert d.verdict == "inconclusive" and d.welch_p > 0.05
    assert d.extra_seeds == seeds_for_effect(0.8) - DEFAULT_SEEDS
    assert f"About {d.extra_seeds} more seeds" in d.reasoning
    settled = decide(*pair(0.8, n=DEFAULT_SEEDS + d.extra_seeds), mode="min")
    assert settled.verdict == "adopt"


def test_identical_values_and_zero_noise_do_not_crash():
    same = decide([0.3, 0.3, 0.3], [0.3, 0.3, 0.3], mode="min", complexity="a lot")
    assert same.verdict == "do not adopt" and same.improvement == 0 and same.seeds_needed is None
    assert same.welch_p == 1.0 and "identical" in same.reasoning
    exact = decide([0.3, 0.3], [0.2, 0.2], mode="min")
    assert exact.verdict == "adopt" and exact.effect_sd == float("inf") and exact.ci_low == pytest.approx(0.1)
    assert json.loads(json.dumps(exact.to_json(), allow_nan=False))["effect_sd"] is None
    one_side = decide([0.3, 0.3, 0.3], [0.2, 0.25, 0.22], mode="min")
    assert one_side.verdict in ("adopt", "inconclusive") and np.isfinite(one_side.welch_p)


def test_json_has_every_number():
    d = decide(*pair(1.0), mode="min", complexity="some", confidence=0.9)
    data = json.loads(json.dumps(d.to_json(), allow_nan=False))
    assert data["baseline"]["values"] == pytest.approx(list(pair(1.0)[0]))
    assert data["alpha"] == pytest.approx(0.1) and data["required_effect_sd"] == 0.5
    assert data["verdict"] == d.verdict and data["reasoning"] == d.reasoning


@pytest.mark.parametrize("kwargs, message", [
    ({"baseline": [0.3], "candidate": [0.2, 0.3]}, "at least 2"),
    ({"mode": "lowest"}, "mode"),
    ({"complexity": "huge"}, "complexity"),
    ({"candidate": [0.2, float("nan")]}, "non-finite"),
    ({"confidence": 1.0}, "confidence"),
])
def test_bad_input_is_refused_with_a_clear_message(kwargs, message):
    args = {"baseline": [0.3, 0.31], "candidate": [0.2, 0.21], "mode": "min", **kwargs}
    with pytest.raises(ValueError, match=message):
        decide(args.pop("baseline"), args.pop("candidate"), **args)


def test_seeds_advice_is_monotone_in_the_effect_from_half_a_sd_to_20():
    effects = np.linspace(0.5, 20, 400)
    needed = [seeds_for_effect(d) for d in effects]
    assert all(isinstance(n, int) and n >= 2 for n in needed)
    assert all(a >= b for a, b in zip(needed, needed[1:], strict=False)), "a larger effect never needs more seeds"
    assert needed[0] == 64 and needed[-1] == 2
    # The power behind it is a number everywhere (scipy's noncentral t gave NaN past about 6 sd).
    assert seeds_for_effect(8.6) == 2 and seeds_for_effect(6.0) == 2


def test_a_question_the_seeds_already_settled_asks_for_no_more_seeds():
    for effect in (4.0, 8.6, 20.0):
        d = decide(*pair(effect, n=3), mode="min")
        assert d.verdict == "adopt"
        assert d.seeds_needed <= 3 and d.extra_seeds is None
        assert "already settle it: no more seeds" in d.reasoning, d.reasoning
    # And the advice over a range of observed effects never grows with the effect.
    advice = [decide(*pair(e, n=3), mode="min").seeds_needed for e in np.linspace(0.5, 20, 40)]
    assert all(a >= b for a, b in zip(advice, advice[1:], strict=False))
