import math

import pytest
from playbook_synth import LR, WIDTH, curve, curves, lr_grid, study, trial

from runner.playbook.data import ParamInfo
from runner.playbook.infeasible import failed_to_train, infeasible_trials


def lr_sweep(n: int = 20, diverge_from: float = 1.0, reason: str = "diverged"):
    """Trials over lr; those at or above diverge_from are infeasible (width alternates)."""
    out = []
    for i, lr in enumerate(lr_grid(n)):
        params = {"learning_rate": lr, "width": (32, 512)[i % 2]}
        out.append(trial(i, params, feasible=False, reason=reason) if lr >= diverge_from else trial(i, params, 0.2))
    return study((LR, WIDTH), out)


def test_a_few_infeasible_trials_are_ok_and_their_region_is_found():
    s = lr_sweep(diverge_from=0.06)  # the top 2 of 20
    check = infeasible_trials(s)
    assert check.verdict == "ok"
    assert check.evidence["fraction"] == pytest.approx(0.1)
    assert check.evidence["by_reason"] == {"diverged": 2}
    cluster = check.evidence["cluster"]
    assert (cluster["param"], cluster["op"]) == ("learning_rate", ">=")
    assert (cluster["infeasible_inside"], cluster["feasible_inside"]) == (2, 0)
    assert "learning_rate >=" in check.summary


@pytest.mark.parametrize("diverge_from, verdict", [(0.02, "warning"), (0.001, "problem")])
def test_large_infeasible_fractions_warn_then_fail(diverge_from, verdict):
    check = infeasible_trials(lr_sweep(diverge_from=diverge_from))
    assert check.verdict == verdict
    assert check.evidence["fraction"] > (0.2 if verdict == "warning" else 0.5)
    assert "reshape" in check.advice


def test_a_single_crash_warns_as_a_likely_bug():
    s = lr_sweep(diverge_from=0.1, reason="exit")  # 1 of 20
    check = infeasible_trials(s)
    assert check.verdict == "warning" and "crashed" in check.advice
    assert infeasible_trials(lr_sweep(diverge_from=0.1, reason="diverged")).verdict == "ok"


def test_categorical_cluster_and_oom():
    trials = [trial(i, {"learning_rate": lr, "width": (32, 512)[i % 2]}, 0.3) for i, lr in enumerate(lr_grid(10))]
    trials = [trial(t.number, t.params, feasible=False, reason="oom") if t.params["width"] == 512 and t.number < 6
              else t for t in trials]
    check = infeasible_trials(study((LR, WIDTH), trials))
    cluster = check.evidence["cluster"]
    assert (cluster["param"], cluster["op"], cluster["value"]) == ("width", "==", 512)
    assert check.evidence["by_reason"] == {"oom": 3}


def test_stopped_and_running_trials_do_not_count():
    s = lr_sweep(n=10, diverge_from=0.05)
    extra = [trial(100 + i, {"learning_rate": 0.01, "width": 32}, None, state=state, feasible=True)
             for i, state in enumerate(("stopped", "running", "lost", "queued"))]
    check = infeasible_trials(study(s.params, [*s.trials, *extra]))
    assert check.evidence["n_finished"] == 10


def test_no_finished_trial_is_not_applicable():
    assert infeasible_trials(study((LR,), [])).verdict == "n/a"


def stuck_study(n_stuck: int):
    """12 lrs; the top n_stuck never train (loss stuck at 2.87, no NaN), the rest spread 0.6..1.1."""
    out = []
    for i, lr in enumerate(lr_grid(12)):
        value = 2.87 if i >= 12 - n_stuck else 0.6 + 0.05 * i
        out.append(trial(i, {"learning_rate": lr, "width": 32}, value))
    return study((LR, WIDTH), out)


def test_trials_many_sigmas_worse_than_the_rest_failed_to_train():
    from runner.playbook.infeasible import failed_to_train

    assert sorted(failed_to_train(stuck_study(3))) == [9, 10, 11]
    check = infeasible_trials(stuck_study(3))
    assert check.evidence["by_reason"] == {"failed to train": 3} and check.verdict == "warning"
    assert check.evidence["cluster"]["op"] == ">="
    assert failed_to_train(stuck_study(0)) == {}
    assert infeasible_trials(stuck_study(0)).verdict == "ok"


def test_the_region_is_located_from_divergences_only_and_crashes_are_reported_apart():
    # 20 lrs: the top 4 diverge (the region); two random crashes, one just below the region.
    out = []
    for i, lr in enumerate(lr_grid(20)):
        params = {"learning_rate": lr, "width": (32, 512)[i % 2]}
        if i >= 16:
            out.append(trial(i, params, feasible=False, reason="diverged"))
        elif i in (3, 14):
            out.append(trial(i, params, feasible=False, reason="exit" if i == 3 else "signal"))
        else:
            out.append(trial(i, params, 0.2))
    check = infeasible_trials(study((LR, WIDTH), out))
    cluster = check.evidence["cluster"]
    assert (cluster["param"], cluster["op"]) == ("learning_rate", ">=")
    assert cluster["value"] == lr_grid(20)[16]  # where divergence starts, not the crash below it
    assert (cluster["infeasible_inside"], cluster["infeasible_total"], cluster["feasible_inside"]) == (4, 4, 0)
    assert check.evidence["n_region"] == 4 and check.evidence["n_apart"] == 2
    assert {r["trial"]: r["in_region"] for r in check.evidence["trials"]} == {
        3: False, 14: False, 16: True, 17: True, 18: True, 19: True}
    assert "(exit 1, signal 1 not counted in the region)" in check.summary
    assert check.evidence["by_reason"] == {"diverged": 4, "exit": 1, "signal": 1}  # every cause still counted


# -- failed to train, against references the data gives --------------------------------------------

CHANCE = math.log(64)  # a uniform guess over a 64-token vocabulary: 4.159


def falling(start: float, end: float, n: int = 10) -> list[float]:
    return [end + (start - end) * 0.6 ** i for i in range(n)]


LSTM_AT_LR_184 = [4.25, 4.12, 4.10, 4.14, 4.22, 4.31, 4.40, 4.47, 4.55, 4.62]  # above chance and rising


def lstm_sweep(vocab: int | None = 64, hot=LSTM_AT_LR_184):
    """4 printed-log LSTM trials over lr; the two hottest (184, 200) end above a uniform guess and rising."""
    lrs = (1.0, 10.0, 184.0, 200.0)
    shapes = (falling(4.2, 1.6), falling(4.2, 1.9), hot, [v + 0.05 for v in hot])
    trials, items = [], []
    for i, (lr, values) in enumerate(zip(lrs, shapes, strict=True)):
        params = {"learning_rate": lr, **({"vocab_size": vocab} if vocab else {})}
        trials.append(trial(i, params, min(values), best_step=10 * (values.index(min(values)) + 1)))
        items.append(curve(i, "val_loss", range(10, 110, 10), values))
    lr = ParamInfo("learning_rate", "nuisance", "float", log=True, low=0.1, high=300.0)
    return study((lr,), trials), curves(*items)


def test_a_run_above_a_uniform_guess_and_rising_failed_to_train():
    s, c = lstm_sweep()
    dead = failed_to_train(s, c)
    assert sorted(dead) == [2, 3]
    assert "uniform guess (4.159)" in dead[2] and "still getting worse" in dead[2]
    check = infeasible_trials(s, c)
    assert check.evidence["by_reason"] == {"failed to train": 2} and check.verdict == "warning"  # 2 of 4
    assert any("trial 2 failed to train: ended worse than a uniform guess" in d for d in check.details)


def test_without_a_class_count_the_first_evaluation_is_the_reference():
    s, c = lstm_sweep(vocab=None)
    dead = failed_to_train(s, c)
    assert sorted(dead) == [2, 3] and "worse than its first evaluation (4.25)" in dead[2]


def test_a_run_stuck_at_chance_never_trained_and_healthy_or_overfitting_runs_did():
    s, c = lstm_sweep(hot=[4.17, 4.16, 4.165, 4.16, 4.17, 4.16, 4.165, 4.16, 4.17, 4.16])
    dead = failed_to_train(s, c)
    assert sorted(dead) == [2, 3] and "never better than a uniform guess (4.159): best 4.16" in dead[2]
    # The best run overfits late, past its first evaluation: its best checkpoint trained, so it is not failed.
    overfit = falling(4.2, 1.2, 6) + [2.5, 3.6, 4.3, 4.4]
    s, c = lstm_sweep(hot=falling(4.2, 2.2))
    trials = list(s.trials)
    trials[0] = trial(0, trials[0].params, min(overfit))
    c = curves(*[x for x in c.curves.values() if x.trial != 0], curve(0, "val_loss", range(10, 110, 10), overfit))
    assert failed_to_train(study(s.params, trials), c) == {}


def test_trials_that_never_reported_the_objective_are_a_warning_not_ok():
    s = lr_sweep(diverge_from=1.0)  # 20 feasible trials
    missing = [trial(20 + i, {"learning_rate": 0.01, "width": 32}, state="failed", reason="no_objective",
                     feasible=None) for i in range(2)]
    check = infeasible_trials(study((LR, WIDTH), [*s.trials, *missing]))
    assert check.verdict == "warning"
    assert "2 trial(s) never reported the objective (no_objective: trials 20, 21)" in check.summary
    assert "not results" in check.advice and check.evidence["no_objective_trials"] == [20, 21]
    assert infeasible_trials(s).verdict == "ok"
