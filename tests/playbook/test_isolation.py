from runner.playbook.data import ParamInfo, StudyData, TrialResult
from runner.playbook.isolation import axis_plot_data, best_per_scientific, isolation_data, varied_params

PARAMS = (
    ParamInfo("width", "scientific", "choice", values=(32, 128)),
    ParamInfo("lr", "nuisance", "float", log=True, low=1e-3, high=1.0),
    ParamInfo("bs", "fixed", "fixed"),
)


def trial(n, width, lr, best, feasible=True, reason=None):
    return TrialResult(n, "completed" if feasible else "failed", {"width": width, "lr": lr, "bs": 64},
                       reason=reason, feasible=feasible, best_value=best, best_step=10)


STUDY = StudyData("s", "val_error", "min", 100, PARAMS, (
    trial(1, 32, 0.01, 0.30), trial(2, 128, 0.01, 0.20),
    trial(3, 32, 0.1, 0.25), trial(4, 128, 0.1, 0.22),
    trial(5, 32, 0.9, None, feasible=False, reason="diverged"), trial(6, 128, 0.9, 0.05, feasible=False),
))


def test_isolation_takes_the_best_feasible_trial_per_scientific_value():
    rows = isolation_data(STUDY)
    assert [(r.value, r.best_trial, r.best_value, r.n_trials, r.n_feasible) for r in rows] == [
        (32, 3, 0.25, 3, 2), (128, 2, 0.20, 3, 2)]  # trial 6 is infeasible: never "best"
    assert {k: t.number for k, t in best_per_scientific(STUDY).items()} == {(32,): 3, (128,): 2}


def test_axis_data_covers_varied_params_and_keeps_infeasible_points():
    axes = {a.param: a for a in axis_plot_data(STUDY)}
    assert set(axes) == {"width", "lr"} == set(varied_params(STUDY))
    assert axes["lr"].log and not axes["lr"].categorical and axes["width"].categorical
    infeasible = [p for p in axes["lr"].points if not p.feasible]
    assert [(p.trial, p.y, p.reason) for p in infeasible] == [(5, None, "diverged"), (6, 0.05, None)]


def test_max_mode_and_bucketed_continuous_scientific():
    params = (ParamInfo("wd", "scientific", "float", log=True, low=1e-4, high=1e-0),)
    trials = tuple(TrialResult(i, "completed", {"wd": 10 ** (-4 + i * 4 / 11)}, feasible=True,
                               best_value=float(i)) for i in range(12))
    study = StudyData("m", "acc", "max", 10, params, trials)
    rows = isolation_data(study, buckets=4)
    assert len(rows) == 4 and sum(r.n_trials for r in rows) == 12
    assert rows[-1].best_trial == 11 and rows[0].best_trial in (0, 1, 2)


def test_isolation_check_names_the_best_trial_of_each_scientific_value():
    from runner.playbook.isolation import isolation_check

    check = isolation_check(STUDY)
    assert check.verdict == "ok" and "width = 128" in check.summary
    rows = check.evidence["isolation"]["width"]
    assert [(r["value"], r["best_trial"]) for r in rows] == [(32, 3), (128, 2)]
    lr_axis = next(a for a in check.evidence["axis_plots"] if a["param"] == "lr")
    assert sum(1 for p in lr_axis["points"] if not p["feasible"]) == 2  # infeasible points kept


def test_isolation_check_warns_when_a_scientific_value_has_no_feasible_trial():
    from runner.playbook.isolation import isolation_check

    only_failures = StudyData("s", "val_error", "min", 100, PARAMS, (
        trial(1, 32, 0.01, 0.30), trial(2, 128, 0.9, None, feasible=False, reason="diverged")))
    check = isolation_check(only_failures)
    assert check.verdict == "warning" and "width=128" in check.summary
    no_scientific = StudyData("s", "val_error", "min", 100, PARAMS[1:], (
        TrialResult(1, "completed", {"lr": 0.1}, feasible=True, best_value=0.2),))
    assert isolation_check(no_scientific).verdict == "n/a"
