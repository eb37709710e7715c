"""The refined space (runner.playbook.refine): the good trials' region, in each parameter's scale."""

from __future__ import annotations

from runner.playbook.data import ParamInfo, StudyData, TrialResult
from runner.playbook.refine import propose_space

PARAMS = (
    ParamInfo("lr", "nuisance", "float", log=True, low=1e-4, high=1.0),
    ParamInfo("layers", "nuisance", "int", low=1, high=20),
    ParamInfo("act", "nuisance", "choice", values=("relu", "gelu", "tanh")),
    ParamInfo("width", "scientific", "choice", values=(32, 64)),
)


def trial(n: int, lr: float, layers: int, act: str, value: float, feasible: bool = True) -> TrialResult:
    return TrialResult(n, "completed" if feasible else "failed", {"lr": lr, "layers": layers, "act": act, "width": 32},
                       feasible=feasible, best_value=value if feasible else None, last_step=99)


def study(trials) -> StudyData:
    return StudyData("s", "val_loss", "min", 100, PARAMS, tuple(trials))


def test_ranges_narrow_to_the_best_quarter_in_the_parameters_scale():
    good = [trial(i, lr, layers, "gelu", 0.1 + i / 100) for i, (lr, layers) in
            enumerate([(1e-2, 5), (2e-2, 7), (5e-3, 6)])]
    bad = [trial(10 + i, 10 ** (-4 + i * 0.4), 1 + i % 20, "tanh", 1.0 + i) for i in range(9)]
    crashed = [trial(30, 0.9, 19, "relu", 0, feasible=False)]
    proposals = {p.param: p.new for p in propose_space(study(good + bad + crashed))}
    lr, layers = proposals["lr"], proposals["layers"]
    assert 1e-3 < lr["low"] < 5e-3 and 2e-2 < lr["high"] < 0.1  # padded in log space, not linear
    assert layers == {"low": 4, "high": 8}  # whole numbers, rounded outward
    assert proposals["act"] == {"values": ["gelu"]}
    assert "width" not in proposals  # scientific values stay as they were


def test_never_past_the_old_bounds():
    at_edges = [trial(i, 1.0, 20, "relu", 0.1 * i) for i in range(1, 5)]
    proposals = {p.param: p.new for p in propose_space(study(at_edges))}
    assert proposals["lr"]["high"] == 1.0 and proposals["layers"]["high"] == 20
