"""The training-length wizard's start checks and plans, on a real store with the length_demo study."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import store
from runner import launch
from runner.spec import load
from runner.wizards.length import parse_vary, start_length
from runner.wizards.substudy import StagePlan, WizardError, derive_config
from store import wizards as wizard_store

SAMPLE = Path(__file__).resolve().parents[2] / "sample_studies" / "length_demo" / "study.toml"


@pytest.fixture
def db_path(tmp_path) -> Path:
    path = tmp_path / "pb" / "playbook.db"
    launch.register(store.connect(path), path, load(SAMPLE))
    return path


def test_configurations_become_exactly_the_substudys_trials(tmp_path):
    base = load(SAMPLE)
    configs = ({"learning_rate": 0.1, "width": 32}, {"learning_rate": 0.01, "width": 128},
               {"learning_rate": 0.1, "width": 128})
    plan = StagePlan("length-demo.length.round-2", "round 2", ("learning_rate", (0.1, 0.01, 0.1)),
                     {"schedule": "linear", "decay_steps": 50, "width": 128, "weight_decay": 0.0, "seed": 0},
                     max_train_steps=400, configurations=configs)
    assert plan.trial_count == 3
    path = tmp_path / "r2.toml"
    path.write_text(derive_config(base, plan, ""))
    spec = load(path)
    assert spec.trials == 0 and spec.param("width").values == (32, 128)
    new = launch.new_trials(spec, tmp_path / "runs")
    assert [(t.params["learning_rate"], t.params["width"]) for t in new] == [(0.1, 32), (0.01, 128), (0.1, 128)]
    argv = new[0].argv
    assert argv[argv.index("--decay-steps") + 1] == "50" and argv[argv.index("--steps") + 1] == "400"


def test_defaults_come_from_the_study(db_path):
    db = store.connect(db_path)
    o = start_length(db, db_path, study="length-demo").options
    assert (o["low"], o["high"], o["horizon"]) == (0.003, 0.3, 400)  # the study's lr range and length
    assert (o["round2_steps"], o["round1_steps"], o["schedule"], o["decay_steps"]) == (400, 100, "linear", 50)
    cosine = start_length(db, db_path, study="length-demo", name="c", schedule="cosine").options
    assert cosine["decay_steps"] == 100  # cosine: its period is all of round 1


def test_the_plans_run_the_sweep_at_constant_lr_and_stretch_round_two(db_path):
    db = store.connect(db_path)
    kind = start_length(db, db_path, study="length-demo", sweep_overrides={"weight_decay": 0.0},
                        round1_steps=100, round2_steps=400, decay_steps=40, vary={"width": [32, 128]})
    (sweep,) = kind.plans("sweep", {})
    assert sweep.fixed["schedule"] == "constant" and sweep.fixed["weight_decay"] == 0.0
    assert sweep.max_train_steps == 400 and len(sweep.vary[1]) == 5
    (r1,) = kind.plans("round-1", {})
    assert r1.trial_count == 6 * 2 and r1.fixed["decay_steps"] == 40 and r1.fixed["weight_decay"] == 0.0005
    chosen = [{"learning_rate": 0.03, "width": 128}, {"learning_rate": 0.1, "width": 32}]
    (r2,) = kind.plans("round-2", {"round-1": {"chosen": chosen}})
    assert r2.configurations == tuple(chosen) and r2.max_train_steps == 400
    assert (r2.fixed["schedule"], r2.fixed["decay_steps"]) == ("linear", 40)  # 360 steps at the peak now


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule_param": "sched"}, "has no parameter 'sched' for the lr schedule"),
    ({"vary": {"depth": [1, 2]}}, "has no parameter 'depth' for the round-1 grid"),
    ({"vary": {"learning_rate": [0.1]}}, "--vary learning_rate: a parameter other than the lr"),
    ({"keep": 1}, "--keep 1: round 2 needs at least 2"),
    ({"round1_steps": 400, "round2_steps": 400}, "round 2 must be longer than round 1"),
    ({"target": 0.0}, "--target 0.0: a training loss above 0"),
    ({"low": 0.5, "high": 0.1}, "need 0 < --low < --high"),
    ({"sweep_overrides": {"dropout": 0.0}}, "--sweep-set names no parameter of 'length-demo': dropout"),
])
def test_bad_options_are_refused_and_nothing_is_stored(db_path, kwargs, message):
    db = store.connect(db_path)
    with pytest.raises(WizardError, match=re.escape(message)):
        start_length(db, db_path, study="length-demo", **kwargs)
    assert wizard_store.list_all(db) == []


def test_vary_reads_comma_separated_toml_values():
    assert parse_vary(["width=32, 128", "optimizer=adam,sgd"]) == {"width": [32, 128], "optimizer": ["adam", "sgd"]}
    with pytest.raises(WizardError, match="expected NAME=V1,V2"):
        parse_vary(["width"])
