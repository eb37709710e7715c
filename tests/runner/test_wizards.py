"""The wizards' engine, sub-studies and start functions on a real SQLite file and real trial processes."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from runner import launch
from runner.cli import main as cli_main
from runner.service import Runner
from runner.spec import load
from runner.wizard_cli import drive
from runner.wizards.decide import resolve_side
from runner.wizards.probe import batch_sizes
from runner.wizards.start import start_decide, start_probe
from runner.wizards.substudy import (
    StagePlan,
    WizardError,
    derive_config,
    parse_assignments,
    reference_values,
)
from store import studies, trials
from store.trials import TrialState
from store.wizards import WizardConflict

DIGITS = Path(__file__).resolve().parents[2] / "sample_studies" / "digits" / "study.toml"

# Exact throughput (1000 examples/s per example in the batch), CUDA's OOM message above a limit.
FAKE_TRAIN = """
import sys
import time

from runner.report import Reporter

batch, steps, limit, sleep = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if batch > limit:
    print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
    sys.exit(1)
report = Reporter()
for step in range(1, steps + 1):
    time.sleep(sleep)
    report.log(step, examples_per_s=1000.0 * batch, train_loss=1.0 / step)
"""

FAKE_STUDY = """
[study]
name = "fake"
command = "python fake_train.py {batch_size} {max_train_steps} {limit} {sleep}"
max_train_steps = 20
objective = { metric = "train_loss", mode = "min" }
trials = 0

[params.batch_size]
role = "fixed"
value = 8

[params.limit]
role = "fixed"
value = 1000

[params.sleep]
role = "fixed"
value = 0.01
"""

# Quick trials of the test trainer; `tag` takes values a side can be chosen by.
SIDES_STUDY = """
[study]
name = "s"
command = "python trainer.py --lr {lr} --steps {max_train_steps} --tag {tag}"
max_train_steps = 5
objective = { metric = "val_loss", mode = "min" }
trials = 0

[params.tag]
role = "scientific"
values = ["a", "b"]

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"

[[trial]]
tag = "a"
lr = 0.05

[[trial]]
tag = "b"
lr = 0.3

[[trial]]
tag = "a"
lr = 0.2
"""


@pytest.fixture
def fake(tmp_path, db, db_path):
    """The fake-training study registered (no trials of its own)."""
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "fake_train.py").write_text(FAKE_TRAIN)
    (folder / "study.toml").write_text(FAKE_STUDY)
    return launch.register(db, db_path, load(folder / "study.toml"))[0]


def run_study(db_path: Path, timeout: float = 60) -> None:
    """Run every launched trial to its end with a real runner in this process."""
    runner = Runner(db_path, cpu_slots=2)
    runner.start()
    deadline = time.monotonic() + timeout
    try:
        runner.serve(until=lambda: runner.idle() or time.monotonic() > deadline)
    finally:
        runner.close()


@pytest.fixture
def sides(make_study, db, db_path):
    """Study `s` with three finished trials: 1 (a, lr 0.05), 2 (b, lr 0.3), 3 (a, lr 0.2)."""
    study, _ = launch.register(db, db_path, load(make_study(SIDES_STUDY)))
    studies.set_active(db, study.id, True)
    run_study(db_path)
    assert {t.state for t in trials.list_for_study(db, study.id)} == {TrialState.COMPLETED}
    return study


# -- sub-study files ---------------------------------------------------------------------


def test_derive_config_round_trips_through_the_study_loader(tmp_path):
    base = load(DIGITS)
    plan = StagePlan("digits.probe", "probe", ("batch_size", (16, 32)),
                     {"width": 128, "learning_rate": 0.2, "weight_decay": 1e-4, "momentum": 0.9,
                      "eval_every": 50},
                     max_train_steps=12, concurrency=1, objective=("examples_per_s", "max"), gpus_per_trial=0,
                     extra_params={"seed": {"role": "scientific", "values": [1], "in_command": False}})
    path = tmp_path / "digits.probe.toml"
    path.write_text(derive_config(base, plan, "planned by a test"))
    spec = load(path)
    assert (spec.name, spec.max_train_steps, spec.notes) == ("digits.probe", 12, "planned by a test")
    assert (spec.objective_metric, spec.objective_mode, spec.gpus_per_trial) == ("examples_per_s", "max", 0)
    assert spec.workdir == base.workdir  # the copy beside the database still runs in the sample's folder
    assert spec.param("batch_size").role == "scientific" and spec.param("batch_size").values == (16, 32)
    assert {p.name: p.value for p in spec.params if p.role == "fixed"} == plan.fixed
    assert spec.command == base.command
    # One trial per batch size: the argv carries the size, the seed stays out of it.
    new = launch.new_trials(spec, tmp_path / "runs")
    assert len(new) == 2
    argv = new[1].argv
    assert argv[argv.index("--batch-size") + 1] == "32" and argv[argv.index("--lr") + 1] == "0.2"
    assert new[1].params["seed"] == 1 and argv.count("--seed") == 1  # the script seeds from its number


def test_derive_config_keeps_conditions_and_drops_the_base_files_manual_trials(tmp_path):
    folder = tmp_path / "cond"
    folder.mkdir()
    (folder / "study.toml").write_text(textwrap.dedent("""
        [study]
        name = "cond"
        command = "python train.py --opt {opt} --lr {lr} --beta2 {beta2}"
        max_train_steps = 10
        objective = { metric = "loss", mode = "min" }

        [params.opt]
        role = "scientific"
        values = ["sgd", "adam"]

        [params.lr]
        role = "nuisance"
        low = 0.001
        high = 0.1

        [params.beta2]
        role = "nuisance"
        low = 0.9
        high = 0.999
        when = { opt = "adam" }

        [[trial]]
        opt = "sgd"
        lr = 0.01
        """))
    base = load(folder / "study.toml")
    plan = StagePlan("cond.lr", "lr", ("lr", (0.01, 0.1)), {"opt": "sgd"}, max_train_steps=5)
    (tmp_path / "cond.lr.toml").write_text(derive_config(base, plan, ""))
    spec = load(tmp_path / "cond.lr.toml")
    assert spec.manual == ()
    assert spec.param("beta2").when == (("opt", ("adam",)),)
    new = launch.new_trials(spec, tmp_path / "runs")
    assert [t.argv[-4:] for t in new] == [["--opt", "sgd", "--lr", "0.01"], ["--opt", "sgd", "--lr", "0.1"]]


# -- reference values, --set, batch sizes ------------------------------------------------------


def test_reference_values_come_from_the_best_trial_a_named_trial_or_set(sides, db):
    spec = load(Path(sides.config_path))
    best = reference_values(db, sides, spec, from_trial=None, overrides={}, varied=set())
    assert best == {"tag": "b", "lr": 0.3}  # trial 2: the highest lr trains this trainer furthest
    assert reference_values(db, sides, spec, from_trial=3, overrides={}, varied=set()) == {"tag": "a", "lr": 0.2}
    assert reference_values(db, sides, spec, from_trial=1, overrides={"lr": 0.5}, varied=set())["lr"] == 0.5


def test_reference_values_say_what_is_wrong(sides, db, db_path):
    spec = load(Path(sides.config_path))
    with pytest.raises(WizardError, match="study 's' has no trial 9"):
        reference_values(db, sides, spec, from_trial=9, overrides={}, varied=set())
    with pytest.raises(WizardError, match=r"--set names no parameter of 's': momentum \(parameters: tag, lr\)"):
        reference_values(db, sides, spec, from_trial=None, overrides={"momentum": 0.9}, varied=set())
    cond = load(DIGITS)
    digits = launch.register(db, db_path, cond)[0]  # registered, never run: no trial to copy
    with pytest.raises(WizardError) as exc:
        reference_values(db, digits, cond, from_trial=None, overrides={"width": 32}, varied={"batch_size"})
    assert "no finished trial to take values from; set learning_rate (nuisance), weight_decay (nuisance)" \
        in str(exc.value)


def test_parse_assignments_reads_toml_literals_and_falls_back_to_text():
    assert parse_assignments(["lr=0.01", "width = 64", "nesterov=true", 'opt="adam"', "name=resnet-50"]) == {
        "lr": 0.01, "width": 64, "nesterov": True, "opt": "adam", "name": "resnet-50"}
    assert parse_assignments([]) == {}
    for bad in ("lr", "=0.1", " =3"):
        with pytest.raises(WizardError, match="expected NAME=VALUE"):
            parse_assignments([bad])


def test_batch_sizes_double_from_start_up_to_the_cap():
    assert batch_sizes(8, 64) == [8, 16, 32, 64]
    assert batch_sizes(8, 100) == [8, 16, 32, 64]
    assert batch_sizes(3, 20) == [3, 6, 12]
    assert batch_sizes(5, 5) == [5]
    for start, cap in ((0, 8), (16, 8), (-2, 8)):
        with pytest.raises(WizardError, match="--start must be >= 1 and <= --cap"):
            batch_sizes(start, cap)


# -- decide's sides ----------------------------------------------------------------------------


def test_resolve_side_takes_the_best_trial_a_numbered_one_or_the_best_with_a_value(sides, db):
    assert resolve_side(db, "s")["label"] == "s/2"
    assert resolve_side(db, "s/3")["params"] == {"tag": "a", "lr": 0.2}
    side = resolve_side(db, "s:tag=a")
    assert (side["label"], side["trial"]) == ("s/3", 3)  # of the two "a" trials, lr 0.2 beat lr 0.05
    assert side["best_value"] == trials.get_by_number(db, sides.id, 3).best_value


@pytest.mark.parametrize(("text", "message"), [
    ("s/x", "expected STUDY/NUMBER"),
    ("s:tag", "expected STUDY:PARAM=VALUE"),
    ("nosuch", "no study named 'nosuch' in this database \\(studies: s\\)"),
    ("s/7", "study 's' has no trial 7"),
    ("s:tag=c", "study 's' has no finished trial with tag=c"),
])
def test_resolve_side_errors_name_the_fix(sides, db, text, message):
    with pytest.raises(WizardError, match=message):
        resolve_side(db, text)


def test_decide_with_the_same_name_and_other_options_conflicts_and_keeps_the_first(sides, db, db_path):
    first = start_decide(db, db_path, baseline="s/1", candidate="s/2", name="d", seeds=3)
    again = start_decide(db, db_path, baseline="s/1", candidate="s/2", name="d", seeds=3, complexity="some")
    assert again.wizard.id == first.wizard.id
    assert again.wizard.state["answers"] == {"complexity": "some"}
    with pytest.raises(WizardConflict, match="a decide wizard named 'd' already exists with other options"):
        start_decide(db, db_path, baseline="s/1", candidate="s/3", name="d", seeds=3)
    with pytest.raises(WizardConflict):
        start_probe(db, db_path, study="s", name="d", batch_param="lr")
    with pytest.raises(WizardError, match="--seeds 1: at least 2 seeds"):
        start_decide(db, db_path, baseline="s/1", candidate="s/2", seeds=1)


# -- the probe through the engine ---------------------------------------------------------------


def probe(db, db_path, **options):
    args = {"study": "fake", "start": 4, "cap": 32, "steps": 12, "skip": 2, "gpus_per_trial": 0} | options
    return start_probe(db, db_path, **args)


def test_probe_asks_before_it_registers_anything_and_conflicts_on_other_options(fake, db, db_path):
    kind = probe(db, db_path)
    status = kind.advance()
    assert status.question is not None and status.question.key == "confirm:probe"
    assert status.plan_lines == ("fake.probe-batch.probe: 4 trial(s) of 12 steps, batch_size = 4, 8, 16, 32; "
                                 "time unknown (no trial of this command has finished on this machine yet)",)
    assert studies.by_name(db, "fake.probe-batch.probe") is None
    assert probe(db, db_path).wizard.id == kind.wizard.id
    with pytest.raises(WizardConflict, match="pass --name to start another"):
        probe(db, db_path, steps=20)


def test_probe_interrupted_midway_resumes_from_the_store(fake, db, db_path):
    kind = probe(db, db_path, overrides={"sleep": 0.1})
    seen: list[str] = []

    def say(line: str) -> None:
        seen.append(line)
        if line.startswith("[fake.probe-batch.probe] 1/4 finished") and line.endswith("1 running"):
            raise KeyboardInterrupt  # Ctrl-C while the second size runs

    with pytest.raises(SystemExit) as exc:
        drive(kind, db_path, answer=lambda q, s: "run", say=say, poll_s=0.05)
    assert exc.value.code == 130
    assert any("1 running trial(s) keep running" in line for line in seen)
    study = studies.by_name(db, "fake.probe-batch.probe")
    first = {t.number: t for t in trials.list_for_study(db, study.id)}
    assert first[1].state is TrialState.COMPLETED
    assert first[2].state in (TrialState.RUNNING, TrialState.COMPLETED)  # not stopped: adopted on resume
    assert first[3].state is TrialState.QUEUED

    resumed = probe(db, db_path, overrides={"sleep": 0.1})
    assert resumed.wizard.id == kind.wizard.id
    status = drive(resumed, db_path, answer=lambda q, s: pytest.fail(f"asked again: {q.key}"),
                   say=lambda _: None, poll_s=0.05)
    assert status.done
    after = {t.number: t for t in trials.list_for_study(db, study.id)}
    assert sorted(after) == [1, 2, 3, 4]
    assert {t.state for t in after.values()} == {TrialState.COMPLETED}
    assert after[1].started_at == first[1].started_at and after[2].started_at == first[2].started_at
    assert status.result["recommended"] == 32
    assert [r["batch_size"] for r in status.result["rows"]] == [4, 8, 16, 32]


def test_a_trial_stopped_by_hand_runs_again_when_its_wizard_resumes(fake, db, db_path):
    kind = probe(db, db_path, overrides={"sleep": 0.3})

    def say(line: str) -> None:
        if line.startswith("[fake.probe-batch.probe] 1/4 finished") and line.endswith("1 running"):
            raise KeyboardInterrupt  # Ctrl-C while the second size runs

    with pytest.raises(SystemExit):
        drive(kind, db_path, answer=lambda q, s: "run", say=say, poll_s=0.05)
    assert cli_main(["--db", str(db_path), "stop", "fake.probe-batch.probe/2", "--grace", "1"]) == 0
    study = studies.by_name(db, "fake.probe-batch.probe")
    stopped = {t.number: t for t in trials.list_for_study(db, study.id)}[2]
    assert stopped.state is TrialState.STOPPED and stopped.started_at is not None

    resumed = probe(db, db_path, overrides={"sleep": 0.3})
    status = drive(resumed, db_path, answer=lambda q, s: pytest.fail(f"asked again: {q.key}"),
                   say=lambda _: None, poll_s=0.05)
    after = {t.number: t for t in trials.list_for_study(db, study.id)}
    assert after[2].state is TrialState.COMPLETED and after[2].started_at > stopped.started_at
    assert [r["batch_size"] for r in status.result["rows"]] == [4, 8, 16, 32]  # size 8 measured, not lost
    assert status.result["not_run"] == []


def test_probe_stops_the_sizes_above_an_oom_before_they_start(fake, db, db_path):
    kind = probe(db, db_path, cap=64, overrides={"limit": 8, "sleep": 0.0})
    status = drive(kind, db_path, answer=lambda q, s: "run", say=lambda _: None, poll_s=0.05)
    assert status.done
    study = studies.by_name(db, "fake.probe-batch.probe")
    got = {t.params["batch_size"]: t for t in trials.list_for_study(db, study.id)}
    assert (got[16].state, got[16].reason) == (TrialState.FAILED, "oom")
    for size in (32, 64):  # a fast trial: the next size would start in the pass that reaped 16
        assert got[size].state is TrialState.STOPPED and got[size].started_at is None
    assert status.result["recommended"] == 8 and status.result["stopped_by"] == "oom"
    assert [n["batch_size"] for n in status.result["not_run"]] == [32, 64]
