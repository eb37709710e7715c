import pytest
from playbook_synth import LR, study, trial

from runner.playbook.training_length import best_step_fractions, training_length


def with_best_steps(steps: list[int], max_train_steps: int = 1000):
    return study((LR,), [trial(i, {"learning_rate": 0.01 * (i + 1)}, 0.1 * (i + 1), best_step=s, last_step=max_train_steps)
                         for i, s in enumerate(steps)], max_train_steps=max_train_steps)


def test_all_best_steps_early_means_too_many_steps():
    check = training_length(with_best_steps([50, 80, 100, 30, 60]))
    assert check.verdict == "warning" and "too large" in check.advice
    assert check.evidence["share_early"] == 1.0


def test_all_best_steps_late_means_train_longer():
    check = training_length(with_best_steps([800, 950, 1000, 1000, 760]))
    assert check.verdict == "warning" and "train longer" in check.advice
    assert check.evidence["share_late"] == 1.0


def test_spread_best_steps_are_ok():
    check = training_length(with_best_steps([100, 300, 500, 800, 1000, 450]))
    assert check.verdict == "ok" and check.advice is None
    assert sum(check.evidence["histogram"]["counts"]) == 6


@pytest.mark.parametrize("n_late, verdict", [(9, "warning"), (8, "ok")])
def test_always_allows_one_trial_in_ten_to_differ(n_late, verdict):
    assert training_length(with_best_steps([900] * n_late + [300] * (10 - n_late))).verdict == verdict


def test_only_completed_feasible_trials_count():
    s = with_best_steps([900, 950, 1000])
    extra = [trial(10, {"learning_rate": 0.5}, feasible=False, reason="diverged", last_step=40),
             trial(11, {"learning_rate": 0.2}, 0.5, state="stopped", best_step=50, last_step=60)]
    s2 = study(s.params, [*s.trials, *extra], max_train_steps=1000)
    assert set(best_step_fractions(s2)) == {0, 1, 2}
    assert training_length(s2).verdict == "warning"


def test_too_few_trials_is_not_applicable():
    assert training_length(with_best_steps([100, 900])).verdict == "n/a"


def test_mostly_late_best_steps_are_not_called_spread():
    # 8 of 10 trials peak at the very last step: the median is 100%, which is not "spread over training".
    check = training_length(with_best_steps([1000] * 8 + [500, 300]))
    assert check.verdict == "ok"
    assert "spread" not in check.summary, check.summary
    assert check.summary.startswith("most best checkpoints are late but not all")
    assert "80% in the last 25%" in check.summary and "median at 100% of the steps" in check.summary


def test_spread_best_steps_say_where_they_fall():
    check = training_length(with_best_steps([100, 300, 500, 800, 1000, 450]))
    assert check.summary == ("best checkpoints spread over training (17% in the first 10%, 33% in the last 25%, "
                             "median at 48% of the steps)")


def test_with_max_train_steps_in_epochs_each_trial_is_read_against_its_own_run_length():
    """3 epochs of 167 (or 84) batches: best steps 250 and 126 are half-way, not 83x the run."""
    import dataclasses

    s = with_best_steps([250, 126, 250], max_train_steps=3)
    runs = {0: 501, 1: 252, 2: 501}
    s = dataclasses.replace(s, trials=tuple(dataclasses.replace(t, max_steps=runs[t.number]) for t in s.trials))
    assert best_step_fractions(s) == pytest.approx({0: 250 / 501, 1: 0.5, 2: 250 / 501})
    assert training_length(s).verdict == "ok"
