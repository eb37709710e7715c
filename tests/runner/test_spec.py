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


# -- bounds on what a file may ask for: refused at validation, the bound named ------------

BOUND_CASES = [
    ("a billion trials", _replace("trials = 4", "trials = 1000000000"),
     "study.trials: 1,000,000,000 is too large; expected at most 10,000"),
    ("a billion grid points", _replace('values = ["sgd", "adam"]', "low = 1\nhigh = 4\npoints = 1000000000"),
     "params.opt.points: 1,000,000,000 is too large; expected at most 1,000"),
    ("a values list past its bound", _replace('values = ["sgd", "adam"]', f"values = {list(range(10_001))}"),
     "params.opt.values: 10,001 given; expected at most 10,000 (MAX_VALUES)"),
    ("a 5,000-character value", _replace('values = ["sgd", "adam"]', f'values = ["sgd", "{"a" * 5000}"]'),
     "params.opt.values[1]: a string of 5,000 characters; expected at most 4,096 (MAX_TEXT_CHARS)"),
    ("a huge format width", _replace("--lr {lr}", "--lr {lr:>99999999999}"),
     "study.command: {lr:>99999999999} asks for a width or precision of 99,999,999,999; expected at most"),
    ("a huge precision", _replace("--lr {lr}", "--lr {lr:.5000f}"), "width or precision of 5,000"),
    ("a placeholder inside a format", _replace("--lr {lr}", "--lr {lr:>{max_train_steps}}"),
     "has a placeholder inside its format"),
    ("a format the values cannot take", _replace("--lr {lr}", "--lr {lr:d}"),
     "study.command: '{lr:d}' cannot be filled with lr = 0.0001: Unknown format code 'd'"),
    ("a negative seed", _replace("trials = 4", "trials = 4\nseed = -1"),
     "study.seed: expected an integer >= 0, got -1"),
    ("a 101-character name", _replace('name = "s1"', f'name = "{"n" * 101}"'),
     "study.name: 101 characters; expected at most 100 (MAX_NAME_CHARS"),
    ("a trial that is not a table", "trial = [1, 2]\n" + VALID,
     "trial[0]: expected a table [[trial]] of parameter values, got 1"),
    ("sixty million trials", _replace('values = ["sgd", "adam"]', f"values = {list(range(3000))}")
     .replace("trials = 4", "trials = 10000").replace("[params.beta2]", "[params.unused]")
     .replace('when = { opt = "adam" }\n', ""),
     "study.trials: the file plans 30,000,000 trials (10000 trials x 3000 opt); expected at most 10,000"),
]


@pytest.mark.parametrize("label,text,message", BOUND_CASES, ids=[c[0] for c in BOUND_CASES])
def test_bounds_are_checked_before_planning(tmp_path, label, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load(path)
    assert str(path) in str(err.value)
    assert any(message in p for p in err.value.problems), err.value.problems


def test_the_largest_integer_sqlite_holds_is_the_bound(tmp_path):
    largest = _replace("max_train_steps = 100", f"max_train_steps = {2**63 - 1}")
    assert load(write(tmp_path, largest)).max_train_steps == 2**63 - 1
    with pytest.raises(SpecError, match="study.max_train_steps: 9,223,372,036,854,775,808 is too large"):
        load(write(tmp_path, _replace("max_train_steps = 100", f"max_train_steps = {2**63}")))


def test_binary_and_oversized_files_are_refused_unread(tmp_path):
    binary = tmp_path / "photo.toml"
    binary.write_bytes(b"[study]\nname = \"\xff\xfe\"\n")
    with pytest.raises(SpecError, match=r"not UTF-8 text \(byte 0xff at offset 16\)"):
        load(binary)
    huge = tmp_path / "huge.toml"
    huge.write_text(VALID + "#" * (1 << 20))
    with pytest.raises(SpecError, match="larger than 1,048,576 bytes"):
        load(huge)
