"""runner.bayes planning: scientific values crossed, conditionals honoured, stored trials as the model's data."""

from __future__ import annotations

import textwrap

from runner.bayes import Observation, plan_asks
from runner.search import plan_values
from runner.spec import load

STUDY = """
[study]
name = "s"
command = "python trainer.py --lr {lr} --opt {opt} --beta2 {beta2} --wd {wd}"
max_train_steps = 10
objective = { metric = "val_loss", mode = "max" }
trials = 6
seed = 3
search = { kind = "bayes", startup_trials = 3 }

[params.opt]
role = "scientific"
values = ["sgd", "adam"]

[params.lr]
role = "nuisance"
low = 1e-5
high = 1e-1
scale = "log"

[params.beta2]
role = "nuisance"
low = 0.9
high = 0.999
when = { opt = "adam" }

[params.wd]
role = "fixed"
value = 0.01

[[trial]]
opt = "sgd"
lr = 0.5
"""


def spec(tmp_path):
    (tmp_path / "study.toml").write_text(textwrap.dedent(STUDY))
    return load(tmp_path / "study.toml")


def score(values: dict) -> Observation:
    return Observation(values, objective=-abs(values["lr"] - 0.01), feasible=True)


def test_registration_queues_only_the_quasi_random_start_and_the_manual_trials(tmp_path):
    planned = plan_values(spec(tmp_path))
    assert [source for source, _ in planned] == ["search"] * 6 + ["manual"]  # 3 points x 2 optimizers


def test_each_scientific_value_gets_its_budget_and_conditionals_follow_their_parent(tmp_path):
    study = spec(tmp_path)
    history = [(source, score(values)) for source, values in plan_values(study)]
    asks = plan_asks(study, history, free=100)
    assert len(asks) == 2 * (6 - 3)  # the manual trial (an lr outside the range) uses no budget
    assert sorted(a["opt"] for a in asks) == ["adam"] * 3 + ["sgd"] * 3
    assert [a["opt"] for a in asks[:2]] == ["sgd", "adam"]  # the scientific value with fewest goes first
    for a in asks:
        assert 1e-5 <= a["lr"] <= 1e-1 and a["wd"] == 0.01
        assert ("beta2" in a) == (a["opt"] == "adam")
        if a["opt"] == "adam":
            assert 0.9 <= a["beta2"] <= 0.999


def test_a_stream_of_only_unknown_outcomes_continues_the_quasi_random_points(tmp_path):
    study = spec(tmp_path)
    lost = [(source, Observation(values)) for source, values in plan_values(study)]  # feasibility unknown
    asks = plan_asks(study, lost, free=2)
    assert len(asks) == 2
    again = plan_asks(study, lost, free=2)
    assert asks == again  # no model yet: the Halton sequence, deterministic


def test_add_trials_refuses_a_bayes_study_and_stores_nothing(tmp_path, db, db_path):
    import pytest

    from runner.launch import add_trials, register
    from runner.spec import SpecError
    from store import trials

    study, added = register(db, db_path, spec(tmp_path))
    assert added == 7
    with pytest.raises(SpecError, match="add-trials extends quasi-random studies"):
        add_trials(db, study, 4)
    assert len(trials.list_for_study(db, study.id)) == 7
