"""Step rules for printed lines (runner.printed), their study-file form (runner.spec), and
the capture state carried from one ingest pass to the next."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runner.ingest import TailTarget, collect
from runner.printed import CaptureState, capture_notes, capture_record
from runner.spec import SpecError, capture_warnings, epoch_steps, parse

HEAD = """
[study]
name = "s"
command = "python train.py"
max_train_steps = 100
objective = { metric = "val_loss", mode = "min" }
"""
LSTM_TRAIN = r"\| epoch +(?P<epoch>\d+) \| +(?P<batch>\d+)/ *(?P<batches>\d+) batches .*\| loss +(?P<train_loss>\S+)"
LSTM_VALID = r"\| end of epoch +(?P<epoch>\d+) \|.*\| valid loss +(?P<val_loss>\S+)"


def spec_of(tmp_path: Path, metrics_toml: str):
    import tomllib

    text = textwrap.dedent(HEAD) + textwrap.dedent(metrics_toml)
    return parse(tomllib.loads(text), path=tmp_path / "study.toml", text=text)


def problems_of(tmp_path: Path, metrics_toml: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        spec_of(tmp_path, metrics_toml)
    return err.value.problems


def ingest(tmp_path: Path, spec, lines: list[str], saved: str | None = None, offset: int = 0,
           epoch_steps: int | None = None):
    """One ingest pass over the lines appended to stdout.log; returns the update."""
    tmp_path.mkdir(exist_ok=True)
    log = tmp_path / "stdout.log"
    with open(log, "a") as f:
        f.writelines(line + "\n" for line in lines)
    target = TailTarget(trial_id=1, metrics_path=str(tmp_path / "m.jsonl"), stdout_path=str(log),
                        metrics_offset=0, stdout_offset=offset, objective=spec.objective_metric,
                        mode="min", patterns=spec.metric_patterns, capture_json=saved, epoch_steps=epoch_steps)
    return collect(target, now=0.0)


def stored(update, name: str) -> list[tuple[int, float]]:
    steps, values, _ = update.series.get(name, ([], [], []))
    return list(zip(steps, values, strict=True))


def lstm_line(epoch: int, batch: int, batches: int, loss: float) -> str:
    return (f"| epoch {epoch:3d} | {batch:5d}/{batches:5d} batches | lr 20.00 | ms/batch 50.1 | "
            f"loss {loss:5.2f} | ppl {2.0:8.1f}")


def end_line(epoch: int, loss: float) -> str:
    return f"| end of epoch {epoch:3d} | time: 12.3s | valid loss {loss:5.2f} | valid ppl   972.4"


RULES = f"""
[[study.metrics]]
pattern = '{LSTM_TRAIN}'
step = "epoch_batch"

[[study.metrics]]
pattern = '{LSTM_VALID}'
step = "epoch"
"""


def test_epoch_batch_makes_one_global_step_and_the_epoch_end_lands_where_the_epoch_ends(tmp_path):
    spec = spec_of(tmp_path, RULES)
    lines = [lstm_line(1, 20, 50, 5.0), lstm_line(1, 40, 50, 4.0), end_line(1, 3.9),
             lstm_line(2, 20, 50, 3.0), lstm_line(2, 40, 50, 2.5), end_line(2, 2.4)]
    u = ingest(tmp_path, spec, lines)
    assert stored(u, "train_loss") == [(20, 5.0), (40, 4.0), (70, 3.0), (90, 2.5)]
    assert stored(u, "val_loss") == [(50, 3.9), (100, 2.4)]
    assert u.best == (2.4, 100)
    state = CaptureState(**json.loads(u.capture_json))
    assert (state.out_of_order, state.dropped, state.batches, state.matches) == (0, 0, 50, [4, 2])


def test_state_carries_over_passes_so_a_restarted_runner_goes_on_counting(tmp_path):
    spec = spec_of(tmp_path, "metrics = [{ pattern = 'valid loss (?P<val_loss>\\S+)', step = \"count\" }]\n")
    first = ingest(tmp_path, spec, ["valid loss 3.0", "valid loss 2.0"])
    second = ingest(tmp_path, spec, ["valid loss 1.0"], saved=first.capture_json, offset=first.stdout_offset)
    assert stored(first, "val_loss") == [(1, 3.0), (2, 2.0)]
    assert stored(second, "val_loss") == [(3, 1.0)]
    again = ingest(tmp_path, spec, [], saved=second.capture_json, offset=second.stdout_offset)
    assert again.capture_json is None and again.is_empty()  # nothing new: nothing to write


def test_patterns_naming_one_counter_share_it(tmp_path):
    spec = spec_of(tmp_path, """
        metrics = [{ pattern = 'train (?P<train_loss>\\S+)', step = "count", counter = "line" },
                   { pattern = 'valid (?P<val_loss>\\S+)', step = "count", counter = "line" }]
        """)
    u = ingest(tmp_path, spec, ["train 3", "train 2", "valid 2.5", "train 1"])
    assert stored(u, "train_loss") == [(1, 3.0), (2, 2.0), (4, 1.0)]
    assert stored(u, "val_loss") == [(3, 2.5)]


def test_zero_based_epochs_and_a_fixed_number_of_batches(tmp_path):
    spec = spec_of(tmp_path, """
        [[study.metrics]]
        pattern = 'ep (?P<epoch>\\d+) it (?P<batch>\\d+) loss (?P<train_loss>\\S+)'
        step = "epoch_batch"
        first_epoch = 0
        batches = 10

        [[study.metrics]]
        pattern = 'ep (?P<epoch>\\d+) done val (?P<val_loss>\\S+)'
        step = "epoch"
        first_epoch = 0
        """)
    u = ingest(tmp_path, spec, ["ep 0 it 5 loss 2", "ep 0 done val 1.5", "ep 1 it 5 loss 1"])
    assert stored(u, "train_loss") == [(5, 2.0), (15, 1.0)]
    assert stored(u, "val_loss") == [(10, 1.5)]


def test_a_study_without_batch_lines_counts_its_steps_in_epochs(tmp_path):
    """Progress then reads epochs/max_train_steps, not batches over epochs (never '80/2')."""
    spec = spec_of(tmp_path, "metrics = [{ pattern = 'Epoch (?P<epoch>\\d+)/\\d+ val_loss: (?P<val_loss>\\S+)', "
                             "step = \"epoch\" }]\n")
    u = ingest(tmp_path, spec, ["Epoch 1/2 val_loss: 0.5", "Epoch 2/2 val_loss: 0.4"])
    assert stored(u, "val_loss") == [(1, 0.5), (2, 0.4)] and u.last_step == 2


def test_an_epoch_end_before_any_batch_line_is_dropped_with_why(tmp_path):
    spec = spec_of(tmp_path, RULES)
    u = ingest(tmp_path, spec, [end_line(1, 3.9), "| epoch   0 |    20/   50 batches | x | loss  2.00 | y"])
    state = CaptureState(**json.loads(u.capture_json))
    assert state.dropped == 2 and not u.series
    assert state.drop_reason == "no batch line has printed the number of batches per epoch yet"
    assert state.samples["dropped"].startswith("| end of epoch   1")  # the first one: its line and why
    assert capture_notes(state, finished=False) == [
        "2 matched line(s) dropped, no usable step (no batch line has printed the number of batches per "
        f"epoch yet): {end_line(1, 3.9)}"]


def test_float_steps_are_whole_numbers_or_dropped(tmp_path):
    spec = spec_of(tmp_path, "metrics = ['step (?P<step>\\S+) val (?P<val_loss>\\S+)']\n")
    u = ingest(tmp_path, spec, ["step 50.00 val 1.0", "step 60 val 0.9", "step 60.5 val 0.8", "step nan val 1"])
    assert stored(u, "val_loss") == [(50, 1.0), (60, 0.9)]
    record = capture_record(u.capture_json, finished=True)
    assert record["dropped"] == 2 and record["samples"]["dropped"] == "step 60.5 val 0.8"
    assert record["drop_reason"] == "step '60.5' is not a whole number"


def test_a_repeated_or_backward_step_is_counted_with_a_sample(tmp_path):
    spec = spec_of(tmp_path, "metrics = ['it (?P<step>\\d+) loss (?P<train_loss>\\S+)']\n")
    u = ingest(tmp_path, spec, ["it 10 loss 3", "it 20 loss 2", "it 10 loss 1", "it 20 loss 0.5", "it 30 loss 0.4"])
    record = capture_record(u.capture_json, finished=False)
    assert record["out_of_order"] == 2 and record["samples"]["out_of_order"] == "it 10 loss 1"
    assert record["notes"][0].startswith("2 printed point(s) repeated or went back in step")


def test_a_pattern_that_matched_nothing_is_reported_once_the_trial_finished(tmp_path):
    spec = spec_of(tmp_path, "metrics = ['it (?P<step>\\d+) val (?P<val_loss>\\S+)', 'acc (?P<step>\\d+) (?P<acc>\\S+)']\n")
    u = ingest(tmp_path, spec, ["it 1 val 2"])
    assert capture_record(u.capture_json, finished=False)["notes"] == []
    finished = capture_record(u.capture_json, finished=True)
    assert finished["unmatched_patterns"] == ["acc (?P<step>\\d+) (?P<acc>\\S+)"]
    assert finished["notes"] == ["pattern matched no line: 'acc (?P<step>\\d+) (?P<acc>\\S+)'"]


def test_a_trial_that_printed_nothing_still_has_its_unmatched_patterns_known(tmp_path):
    spec = spec_of(tmp_path, "metrics = ['it (?P<step>\\d+) val (?P<val_loss>\\S+)']\n")
    u = ingest(tmp_path, spec, [])
    assert capture_record(u.capture_json, finished=True)["unmatched_patterns"] == [
        "it (?P<step>\\d+) val (?P<val_loss>\\S+)"]


def test_the_plain_string_form_is_unchanged(tmp_path):
    spec = spec_of(tmp_path, "metrics = ['step (?P<step>\\d+) loss=(?P<loss>\\S+) val=(?P<val_loss>\\S+)']\n")
    (p,) = spec.metric_patterns
    assert (p.step_rule, p.metrics, p.source) == ("group", ("loss", "val_loss"), p.regex.pattern)


@pytest.mark.parametrize("toml,message", [
    ("metrics = ['loss=(?P<loss>\\S+']\n", "study.metrics[0]: bad regex 'loss=(?P<loss>\\S+': missing )"),
    ("metrics = [{ pattern = 'e (?P<epoch>\\d+) (?P<batch>\\d+) (?P<l>\\S+)', step = 'epoch_batch' }]\n",
     "study.metrics[0]: the regex needs a named group (?P<batches>...) for step = \"epoch_batch\" "
     "(or give batches = N, the batches per epoch)"),
    ("metrics = [{ pattern = 'x (?P<l>\\S+)', step = 'per_line' }]\n",
     "study.metrics[0].step: expected one of group, epoch_batch, epoch, count, got 'per_line'"),
    ("metrics = [{ pattern = 'x (?P<l>\\S+)', step = 'group', counter = 'c' }]\n",
     "study.metrics[0].counter: only step = \"count\" patterns share a counter"),
    ("metrics = [{ pattern = 'x (?P<l>\\S+)', step = 'count', batches = 3 }]\n",
     "study.metrics[0].batches: only step = \"epoch_batch\" or \"epoch\" patterns use it"),
    ("metrics = [{ regex = 'x (?P<l>\\S+)' }]\n", "study.metrics[0].regex: unknown field"),
    ("metrics = [{ pattern = 'x (?P<step>\\d+)' }]\n", "study.metrics[0]: the regex needs a named group per metric"),
    ("metrics = [3]\n", "study.metrics[0]: expected a regex string or a table"),
])
def test_bad_metric_entries_say_what_was_expected(tmp_path, toml, message):
    problems = problems_of(tmp_path, toml)
    assert any(p.startswith(message) for p in problems), problems


def test_the_bad_regex_message_shows_the_pattern_as_written(tmp_path):
    (problem,) = problems_of(tmp_path, "metrics = ['step (?P<step>\\d+) loss=(?P<loss>\\S+']\n")
    assert "'step (?P<step>\\d+) loss=(?P<loss>\\S+'" in problem and "\\\\" not in problem


def test_registration_warns_when_no_pattern_can_produce_the_objective(tmp_path):
    spec = spec_of(tmp_path, "metrics = ['it (?P<step>\\d+) loss (?P<train_loss>\\S+)']\n")
    (warning,) = capture_warnings(spec)
    assert "study.objective: no pattern in study.metrics has a group named (?P<val_loss>...)" in warning
    assert "they capture train_loss" in warning and "no_objective" in warning
    assert capture_warnings(spec_of(tmp_path, "metrics = ['it (?P<step>\\d+) (?P<val_loss>\\S+)']\n")) == []
    assert capture_warnings(spec_of(tmp_path, "")) == []  # no patterns: the script uses Reporter


def test_with_max_train_steps_in_epochs_the_run_length_is_counted_in_the_rules_steps(tmp_path):
    spec = spec_of(tmp_path, 'step_unit = "epoch"\n' + RULES)
    assert (spec.step_unit, epoch_steps(spec)) == ("epoch", 100)
    before = ingest(tmp_path / "a", spec, [], epoch_steps=100)
    assert capture_record(before.capture_json, finished=False)["progress_total"] == 100  # no batch line yet
    u = ingest(tmp_path / "b", spec, [lstm_line(1, 20, 50, 5.0)], epoch_steps=100)
    assert capture_record(u.capture_json, finished=False)["progress_total"] == 100 * 50
    assert epoch_steps(spec_of(tmp_path, RULES)) is None
    assert "study.step_unit: expected 'step' or 'epoch', got 'batch'" in problems_of(tmp_path, 'step_unit = "batch"\n')
    (problem,) = problems_of(tmp_path, 'step_unit = "epoch"\nmetrics = [\'it (?P<step>\\d+) (?P<val_loss>\\S+)\']\n')
    assert problem.startswith('study.step_unit: "epoch" needs a study.metrics pattern with step = "epoch_batch"')
