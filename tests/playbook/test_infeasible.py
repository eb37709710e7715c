import pytest
from playbook_synth import LR, WIDTH, lr_grid, study, trial

from runner.playbook.infeasible import infeasible_trials


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
