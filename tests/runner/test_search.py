import math
import textwrap

from runner.plan import build_argv, new_trials
from runner.search import nuisance_samples, plan_values
from runner.spec import load

STUDY = """
[study]
name = "s"
command = "python trainer.py --lr {lr} --opt {opt} --beta2 {beta2} --layers {layers}"
max_train_steps = 10
objective = { metric = "val_loss" }
trials = 16
seed = 3

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

[params.layers]
role = "nuisance"
type = "int"
low = 2
high = 6

[[trial]]
opt = "sgd"
lr = 0.5
layers = 3
"""


def spec(tmp_path, text=STUDY):
    (tmp_path / "study.toml").write_text(textwrap.dedent(text))
    return load(tmp_path / "study.toml")


def test_same_file_gives_same_trials(tmp_path):
    first = plan_values(spec(tmp_path))
    second = plan_values(spec(tmp_path))
    assert first == second
    assert len(first) == 16 * 2 + 1  # nuisance samples x scientific values + manual


def test_another_seed_gives_other_trials(tmp_path):
    other = spec(tmp_path, STUDY.replace("seed = 3", "seed = 4"))
    assert plan_values(spec(tmp_path)) != plan_values(other)


def test_scientific_values_crossed_with_the_same_nuisance_samples(tmp_path):
    planned = [v for src, v in plan_values(spec(tmp_path)) if src == "search"]
    by_opt = {opt: [v["lr"] for v in planned if v["opt"] == opt] for opt in ("sgd", "adam")}
    assert by_opt["sgd"] == by_opt["adam"]
    assert len(set(by_opt["sgd"])) == 16


def test_log_scale_values_cover_the_range_in_log_space(tmp_path):
    s = spec(tmp_path)
    lrs = [v["lr"] for v in nuisance_samples(s, 64)]
    assert all(1e-5 <= lr <= 1e-1 for lr in lrs)
    # Quasi-random in log space: each decade holds about a quarter of the points.
    per_decade = [sum(1 for lr in lrs if 10 ** (k - 5) <= lr < 10 ** (k - 4)) for k in range(4)]
    assert all(12 <= n <= 20 for n in per_decade), per_decade
    layers = {v["layers"] for v in nuisance_samples(s, 64)}
    assert layers == {2, 3, 4, 5, 6}


def test_conditional_parameter_only_where_parent_matches(tmp_path):
    planned = [v for _, v in plan_values(spec(tmp_path))]
    assert all(("beta2" in v) == (v["opt"] == "adam") for v in planned)
    assert all(0.9 <= v["beta2"] <= 0.999 for v in planned if "beta2" in v)


def test_argv_drops_the_flag_of_an_absent_conditional(tmp_path):
    s = spec(tmp_path)
    trials = new_trials(s, tmp_path / "runs")
    sgd = next(t for t in trials if t.params["opt"] == "sgd")
    adam = next(t for t in trials if t.params["opt"] == "adam")
    assert "--beta2" not in sgd.argv
    assert sgd.argv[sgd.argv.index("--lr") + 1] == repr(sgd.params["lr"])
    assert adam.argv[adam.argv.index("--beta2") + 1] == repr(adam.params["beta2"])
    assert trials[-1].source == "manual" and trials[-1].params["lr"] == 0.5
    assert [t.number for t in trials] == list(range(1, len(trials) + 1))


def test_values_with_shell_metacharacters_stay_one_argument():
    argv = build_argv(("python", "t.py", "--name", "{name}", "--x={x}"),
                      {"name": "1; rm -rf ~", "x": "$(whoami)"})
    assert argv == ["python", "t.py", "--name", "1; rm -rf ~", "--x=$(whoami)"]


def test_dropping_a_conditional_never_takes_a_negative_value_for_its_flag():
    template = ("python", "t.py", "--shift", "{shift}", "--beta2={beta2}", "--wd", "{wd}", "-1", "{wd}")
    assert build_argv(template, {"shift": -1}) == ["python", "t.py", "--shift", "-1", "-1"]
    assert build_argv(template, {"shift": -1, "beta2": 0.9, "wd": -0.5}) == [
        "python", "t.py", "--shift", "-1", "--beta2=0.9", "--wd", "-0.5", "-1", "-0.5"]
    # A value on its own loses its flag; a literal number before it is not a flag.
    assert build_argv(("t", "--beta2", "{beta2}", "-x", "-3", "{beta2}"), {}) == ["t", "-x", "-3"]


def test_scientific_range_is_a_grid_in_its_scale(tmp_path):
    text = STUDY.replace('values = ["sgd", "adam"]', "low = 1e-4\nhigh = 1e-2\nscale = \"log\"\npoints = 3")
    text = text.replace('when = { opt = "adam" }\n', "").replace("[[trial]]\nopt = \"sgd\"\nlr = 0.5\nlayers = 3\n", "")
    values = sorted({v["opt"] for _, v in plan_values(spec(tmp_path, text))})
    assert [math.log10(v) for v in values] == [-4.0, -3.0, -2.0]
