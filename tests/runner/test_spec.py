import textwrap
from pathlib import Path

import pytest

from runner.spec import SpecError, load

VALID = """
[study]
name = "s1"
goal = "does width matter"
command = "python trainer.py --lr {lr} --steps {max_train_steps} --tag {opt}"
max_train_steps = 100
objective = { metric = "val_loss", mode = "min" }
trials = 4
metrics = ['step (?P<step>\\d+) loss=(?P<loss>\\S+)']

[params.opt]
role = "scientific"
values = ["sgd", "adam"]

[params.lr]
role = "nuisance"
low = 1e-4
high = 1e-1
scale = "log"

[params.beta2]
role = "nuisance"
low = 0.9
high = 0.999
when = { opt = "adam" }
in_command = false

[params.width]
role = "fixed"
value = 64
in_command = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_study_parses_with_roles(tmp_path):
    spec = load(write(tmp_path, VALID))
    assert spec.name == "s1"
    assert spec.roles == {"opt": "scientific", "lr": "nuisance", "beta2": "nuisance", "width": "fixed"}
    assert spec.param("lr").is_log
    assert spec.param("beta2").when == (("opt", ("adam",)),)
    assert spec.metric_patterns[0].metrics == ("loss",)
    assert spec.workdir == tmp_path.resolve()


def _replace(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


BAD_CASES = [
    ("unknown role", _replace('role = "scientific"', 'role = "science"'),
     "params.opt.role: expected one of scientific, nuisance, fixed, got 'science'"),
    ("low > high", _replace("low = 1e-4\nhigh = 1e-1", "low = 1e-1\nhigh = 1e-4"),
     "params.lr: low (0.1) > high (0.0001)"),
    ("log with zero bound", _replace("low = 1e-4", "low = 0"),
     "params.lr.low: a log-scale range needs bounds > 0"),
    ("placeholder without parameter", _replace("--tag {opt}", "--tag {opt} --wd {weight_decay}"),
     "study.command: placeholder {weight_decay} has no parameter"),
    ("parameter never used", _replace("--tag {opt}", ""),
     "params.opt: never used in study.command"),
    ("bad regex", _replace("loss=(?P<loss>\\S+)", "loss=(?P<loss>\\S+"), "study.metrics[0]: bad regex"),
    ("regex without step", _replace("(?P<step>\\d+)", "(\\d+)"), "needs a named group (?P<step>...)"),
    ("unknown study field", _replace("trials = 4", "trials = 4\nmax_steps = 3"),
     "study.max_steps: unknown field"),
    ("bad objective mode", _replace('mode = "min"', 'mode = "lowest"'),
     "study.objective.mode: expected 'min' or 'max', got 'lowest'"),
    ("missing max_train_steps", _replace("max_train_steps = 100\n", ""),
     "study.max_train_steps: missing"),
    ("condition on unknown parent", _replace('when = { opt = "adam" }', 'when = { optimizer = "adam" }'),
     "params.beta2.when.optimizer: no parameter named 'optimizer'"),
    ("condition on a value the parent lacks", _replace('when = { opt = "adam" }', 'when = { opt = "lamb" }'),
     "'lamb' is not one of the parent's values"),
    ("fixed without value", _replace("value = 64", "values = [64]"),
     "params.width.value: missing"),
    ("scientific range without points", _replace('values = ["sgd", "adam"]', "low = 1\nhigh = 4"),
     "params.opt.points: missing"),
    ("string where a number belongs", _replace("trials = 4", 'trials = "four"'),
     "study.trials: expected an integer, got 'four'"),
]


@pytest.mark.parametrize("label,text,message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_invalid_files_name_file_field_and_expectation(tmp_path, label, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load(path)
    assert str(path) in str(err.value)
    assert any(message in p for p in err.value.problems), err.value.problems


def test_not_toml_and_missing_file(tmp_path):
    path = write(tmp_path, "[study\nname=")
    with pytest.raises(SpecError, match="not valid TOML"):
        load(path)
    with pytest.raises(SpecError, match="cannot read the file"):
        load(tmp_path / "nope.toml")


def test_all_problems_reported_at_once(tmp_path):
    text = _replace('role = "scientific"', 'role = "bogus"').replace('mode = "min"', 'mode = "x"')
    with pytest.raises(SpecError) as err:
        load(write(tmp_path, text))
    assert len(err.value.problems) >= 2


def test_manual_trial_values_are_checked(tmp_path):
    text = VALID + '\n[[trial]]\nopt = "rmsprop"\nlr = 0.01\n'
    with pytest.raises(SpecError) as err:
        load(write(tmp_path, text))
    assert any("trial[0].opt: 'rmsprop' is not one of ['sgd', 'adam']" in p for p in err.value.problems)
