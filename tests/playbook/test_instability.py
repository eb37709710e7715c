from playbook_synth import LR, WIDTH, study, trial

from runner.playbook.data import ParamInfo
from runner.playbook.instability import instability, learning_rate_param


def sweep(width: int, first: int, best_lr: float, diverge_above: float | None) -> list:
    """An lr sweep for one width: best at best_lr; lrs above diverge_above are infeasible."""
    out = []
    for i, lr in enumerate((0.001, 0.003, 0.01, 0.03, 0.09)):
        params = {"learning_rate": lr, "width": width}
        if diverge_above is not None and lr > diverge_above:
            out.append(trial(first + i, params, feasible=False, reason="diverged"))
        else:
            out.append(trial(first + i, params, 0.1 + abs(lr - best_lr)))
    return out


def test_best_lr_next_to_diverged_trials_is_the_edge_of_stability():
    s = study((LR, WIDTH), sweep(32, 0, best_lr=0.01, diverge_above=0.01) + sweep(512, 10, 0.01, None))
    check = instability(s)
    assert check.verdict == "warning"
    rows = {r["group"]: r for r in check.evidence["groups"]}
    assert rows["width=32"]["at_edge"] and rows["width=32"]["next_reason"] == "diverged"
    assert rows["width=32"]["best_lr"] == 0.01 and rows["width=32"]["next_lr"] == 0.03
    assert rows["width=32"]["infeasible_above"] == 2
    assert not rows["width=512"]["at_edge"]  # its next lr trains: not at the edge
    assert "width=32" in check.summary and "width=512" not in check.summary
    assert "warmup" in check.advice


def test_feasible_trials_above_the_best_lr_are_ok():
    s = study((LR, WIDTH), sweep(32, 0, best_lr=0.01, diverge_above=0.03) + sweep(512, 10, 0.01, None))
    check = instability(s)
    assert check.verdict == "ok"
    assert not any(r["at_edge"] for r in check.evidence["groups"])


def test_best_lr_at_the_top_of_the_sweep_is_not_an_instability_finding():
    # Nothing above was tried: that is the boundary check's business, not this one's.
    s = study((LR,), [trial(i, {"learning_rate": lr}, 1 - lr) for i, lr in enumerate((0.001, 0.01, 0.09))])
    assert instability(s).verdict == "ok"


def test_learning_rate_param_is_found_by_name_or_given():
    other = ParamInfo("my_learning_rate_peak", "nuisance", "float", log=True, low=1e-4, high=1.0)
    beta = ParamInfo("beta1", "nuisance", "float", low=0.8, high=0.99)
    assert learning_rate_param(study((beta, LR), [])) == "learning_rate"
    assert learning_rate_param(study((beta, other), [])) == "my_learning_rate_peak"
    assert learning_rate_param(study((beta,), [])) is None
    s = study((beta,), [trial(1, {"beta1": 0.9}, 0.1)])
    assert instability(s).verdict == "n/a"
    assert instability(s, lr_param="beta1").evidence["lr_param"] == "beta1"


def test_an_unknown_or_categorical_lr_param_is_not_applicable():
    s = study((LR, WIDTH), sweep(32, 0, best_lr=0.01, diverge_above=0.01))
    assert instability(s, lr_param="width").verdict == "n/a"
    assert instability(s, lr_param="nope").verdict == "n/a"


def test_a_next_lr_that_failed_to_train_is_the_edge_too():
    # No NaN above the best lr, but the next lr is stuck at the loss of a dead network.
    trials = [trial(i, {"learning_rate": lr, "width": 32}, v) for i, (lr, v) in enumerate(
        [(0.001, 1.1), (0.002, 0.9), (0.004, 0.8), (0.006, 0.7), (0.01, 2.87), (0.05, 2.87)])]
    check = instability(study((LR, WIDTH), trials))
    assert check.verdict == "warning"
    assert check.evidence["groups"][0]["next_reason"] == "failed to train"
    trained = [t if t.best_value < 2 else trial(t.number, t.params, 0.75) for t in trials]
    assert instability(study((LR, WIDTH), trained)).verdict == "ok"
