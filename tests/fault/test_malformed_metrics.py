"""Malformed metric lines written by a real trial under the real runner: good lines kept, bad counted."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest
from fault_helpers import read_db, run_cli, start_runner, stored_points, study_file, study_trials, wait_for

from runner.ingest import MAX_BYTES_PER_PASS
from store import metrics


@pytest.mark.timeout(60)
def test_malformed_lines_are_counted_and_good_ones_kept(tmp_path, db_path):
    # faulty.py raw writes RAW_LINES: the bad ones, a torn line, a NaN loss, an unfinished last line.
    study = study_file(tmp_path / "study", [{"mode": "raw", "sleep": 5}], steps=10)
    done = run_cli(db_path, "run", str(study), "--grace", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(db_path)
    assert stored_points(db_path, trial.id) == {
        ("train_loss", 0, 2.0),
        ("train_loss", 1, 1.9), ("huge", 1, 1e308),
        ("train_loss", 3, 1.7),  # unknown fields beside the metrics are ignored
        ("train_loss", 4, 1.6), ("train_loss", 5, 1.45),  # out of order is fine; a repeat: last wins
        ("acc", 6, math.inf), ("gn", 6, -math.inf),
        ("train_loss", 7, 1.3),  # written in two pieces 0.6 s apart: read once it was whole
        ("train_loss", 8, None),  # NaN, stored as missing
    }
    # Bad: not JSON; a value beyond float range (10**400); the last line, never finished.
    assert trial.bad_lines == 3
    assert (trial.state.value, trial.reason) == ("failed", "diverged")  # stopped at the NaN loss
    assert (trial.last_step, trial.best_value, trial.best_step) == (8, 1.3, 7)


@pytest.mark.timeout(90)
def test_a_trial_that_ended_while_no_runner_watched_is_read_to_its_last_line(tmp_path, db_path):
    """More than one ingest pass's worth (MAX_BYTES_PER_PASS) written while the runner was dead."""
    steps = 250_000  # about 14 MiB of lines
    study = study_file(tmp_path / "study", [{"mode": "burst", "sleep": 2}], steps=steps)
    proc = start_runner(db_path, study)
    (trial,) = wait_for(lambda: [t for t in study_trials(db_path) if t.state.value == "running"], 30,
                        "the trial to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    metrics_file = Path(trial.trial_dir) / "metrics.jsonl"
    wait_for(lambda: (Path(trial.trial_dir) / "exit.json").exists(), 30, "the trial to end")
    assert metrics_file.stat().st_size > MAX_BYTES_PER_PASS
    done = run_cli(db_path, "run", str(study), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(db_path)
    count = read_db(db_path, lambda db: metrics.count_points(db))
    assert (trial.state.value, count, trial.last_step, trial.bad_lines) == ("completed", steps, steps - 1, 0)


# Lines a trial can write that SQLite cannot hold, each of which used to crash the runner on
# every pass and every restart (OverflowError, UnicodeEncodeError), leaving every trial unwatched.
POISON_SCRIPT = r'''
import os, sys, time
mode = sys.argv[1]
path = os.environ["PLAYBOOK_METRICS_FILE"]
if mode == "late":
    time.sleep(3.0)  # after the test has killed the runner that started it
if mode == "steady":
    for step in range(40):
        with open(path, "a") as f:
            f.write('{"step": %d, "m": {"train_loss": %r}}\n' % (step, 1.0 / (step + 1)))
        time.sleep(0.05)
    sys.exit(0)
lines = [
    b'{"step": 0, "m": {"train_loss": 1.0}}',
    b'{"step": 9223372036854775808, "m": {"train_loss": 0.5}}',  # 2**63: beyond SQLite INTEGER
    b'{"step": 1, "m": {"train_loss\\ud800": 0.5}}',  # a lone surrogate in a name
    b'{"step": 2, "m": {"train_loss\xff": 0.5}}',  # not UTF-8
    b'{"step": 3, "t": 1' + b'0' * 400 + b', "m": {"train_loss": 0.75}}',  # a wall time beyond float
    b'{"step": 9223372036854775808, "checkpoint": "/c.pt"}',
    b'{"step": 4, "checkpoint": "/c\\udc00.pt", "objective": 0.5}',
    b'{"step": 5, "m": {"train_loss": 0.6}}',
]
with open(path, "ab") as f:
    f.write(b"\n".join(lines) + b"\n")
time.sleep(1.0)  # metrics first: the first dropped line is the step 2**63 one
out = sys.stdout.buffer
out.write(b"step 9223372036854775808 loss=0.1\n")  # the same poison through the stdout regex
out.write(b"step 6 loss=0.55 \xed\xa0\x80 \\ud800\n")  # an encoded surrogate in a log line: harmless
out.flush()
time.sleep(1.0)
'''


@pytest.mark.timeout(90)
def test_poison_lines_are_dropped_and_shown_and_the_runner_keeps_every_trial(tmp_path, db_path):
    folder = tmp_path / "study"
    study = study_file(folder, [{"mode": "poison"}, {"mode": "steady"}], steps=40,
                       command="python poison.py {mode}",
                       extra='metrics = ["step (?P<step>\\\\d+) loss=(?P<train_loss>\\\\S+)"]')
    (folder / "poison.py").write_text(POISON_SCRIPT)
    done = run_cli(db_path, "run", str(study), "--grace", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    poison, steady = sorted(study_trials(db_path), key=lambda t: t.params["mode"])
    assert (poison.state.value, steady.state.value) == ("completed", "completed")
    assert len(stored_points(db_path, steady.id)) == 40  # the other trial was watched throughout
    assert stored_points(db_path, poison.id) == {
        ("train_loss", 0, 1.0), ("train_loss", 3, 0.75), ("train_loss", 5, 0.6), ("train_loss", 6, 0.55)}
    assert poison.bad_lines == 5  # the five metrics lines; the stdout capture's drop is the capture's own
    assert poison.bad_line_sample.startswith("step is not a whole number from 0 to 2**63-1: "
                                             '{"step": 9223372036854775808'), poison.bad_line_sample
    # The runner's log says so once for the trial, not once per line or per pass.
    assert done.stdout.count("dropping metric lines") == 1, done.stdout
    assert "f/0: dropping metric lines" in done.stdout or "f/1: dropping metric lines" in done.stdout
    status = run_cli(db_path, "status", "f")
    assert status.returncode == 0, status.stderr
    assert "5 metric line(s) dropped" in status.stdout and "9223372036854775808" in status.stdout, status.stdout
    assert "1 matched line(s) dropped, no usable step (captured step beyond" in status.stdout, status.stdout
    record = json.loads(run_cli(db_path, "status", "f", "--json").stdout)
    (shown,) = [t for t in record["studies"][0]["trials"] if t["id"] == poison.id]
    assert (shown["bad_lines"], shown["bad_line_sample"]) == (5, poison.bad_line_sample)
    assert shown["capture"]["dropped"] == 1, shown["capture"]


@pytest.mark.timeout(90)
def test_a_poison_line_written_while_no_runner_watched_does_not_stop_the_next_runner(tmp_path, db_path):
    folder = tmp_path / "study"
    study = study_file(folder, [{"mode": "late"}], steps=40, command="python poison.py {mode}")
    (folder / "poison.py").write_text(POISON_SCRIPT)
    proc = start_runner(db_path, study)
    (trial,) = wait_for(lambda: [t for t in study_trials(db_path) if t.state.value == "running"], 30,
                        "the trial to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: (Path(trial.trial_dir) / "exit.json").exists(), 30, "the trial to end")
    done = run_cli(db_path, "run", str(study), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(db_path)
    assert (trial.state.value, trial.bad_lines) == ("completed", 5), trial
    assert stored_points(db_path, trial.id) == {("train_loss", 0, 1.0), ("train_loss", 3, 0.75),
                                                ("train_loss", 5, 0.6)}
