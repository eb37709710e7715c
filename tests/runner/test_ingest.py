import json
import math

import pytest

from runner.ingest import TailTarget, collect, decode_common
from runner.report import Reporter
from runner.spec import MetricPattern


def target(tmp_path, **kw):
    base = dict(trial_id=1, metrics_path=str(tmp_path / "m.jsonl"), stdout_path=str(tmp_path / "out.log"),
                metrics_offset=0, stdout_offset=0, objective="val_loss", mode="min")
    return TailTarget(**{**base, **kw})


def test_reads_whole_lines_only_and_resumes_from_offset(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 0, "t": 1.0, "m": {"val_loss": 2.0}}\n{"step": 1, "m": {"val_lo')
    u = collect(target(tmp_path), now=0)
    assert [(r[1], r[2], r[3]) for r in u.points()] == [("val_loss", 0, 2.0)]
    assert u.metrics_offset == path.read_text().index("\n") + 1
    with open(path, "a") as f:
        f.write('ss": 1.5}}\n')
    u2 = collect(target(tmp_path, metrics_offset=u.metrics_offset), now=0)
    assert [(r[2], r[3]) for r in u2.points()] == [(1, 1.5)]
    assert u2.best == (1.5, 1)


def test_malformed_lines_are_counted_not_fatal(tmp_path):
    lines = [
        "not json",
        '{"step": "x", "m": {"a": 1}}',
        '{"step": -1, "m": {"a": 1}}',
        '{"step": 3, "m": {"a": true}}',
        '{"step": 4, "m": {"a": 1e999}}',  # inf: kept
        '{"step": 5, "m": {"a": 1}, "extra": "ignored"}',
        '{"step": 6, "m": {"a": ' + "9" * 400 + "}}",  # beyond float range
        "[1, 2]",
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    u = collect(target(tmp_path), now=0)
    assert [(r[2], r[3]) for r in u.points()] == [(4, math.inf), (5, 1.0)]
    assert u.bad_lines == 6


def test_nan_loss_marks_divergence_and_is_stored_as_missing(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"step": 7, "m": {"train_loss": NaN, "acc": 0.5}}\n')
    u = collect(target(tmp_path), now=0)
    assert u.diverged
    assert ("train_loss", 7, None) in [(r[1], r[2], r[3]) for r in u.points()]


def test_nan_in_a_non_loss_metric_is_not_divergence(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"step": 7, "m": {"grad_norm": NaN}}\n')
    assert not collect(target(tmp_path), now=0).diverged


def test_checkpoints_and_reporter_format(tmp_path):
    r = Reporter(tmp_path / "m.jsonl", flush_every=1000)
    for step in range(5):
        r.log(step, val_loss=1.0 / (step + 1), lr=0.1)
    r.checkpoint(4, "/ckpt/4.pt", objective=0.2)
    r.flush()
    u = collect(target(tmp_path), now=0)
    assert len(u.points()) == 10 and u.best == (0.2, 4) and u.last_step == 4
    assert [c[1:4] for c in u.checkpoints] == [(4, "/ckpt/4.pt", 0.2)]


def test_reporter_is_a_noop_outside_the_runner(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAYBOOK_METRICS_FILE", raising=False)
    r = Reporter()
    r.log(0, loss=1.0)
    r.flush()
    assert not r.enabled and list(tmp_path.iterdir()) == []


def test_stdout_regex_capture(tmp_path):
    import re

    (tmp_path / "out.log").write_text("epoch 1\nstep 10 loss=0.5 acc=0.8\nstep 20 loss=nan acc=0.1\n")
    pattern = MetricPattern(re.compile(r"step (?P<step>\d+) loss=(?P<loss>\S+) acc=(?P<acc>\S+)"),
                            ("acc", "loss"))
    u = collect(target(tmp_path, patterns=(pattern,)), now=123.0)
    assert sorted((r[1], r[2], r[3]) for r in u.points() if r[3] is not None) == [
        ("acc", 10, 0.8), ("acc", 20, 0.1), ("loss", 10, 0.5)]
    assert u.diverged and u.stdout_offset == len((tmp_path / "out.log").read_bytes())


def test_sigterm_during_a_flush_still_flushes_and_exits(tmp_path):
    """The runner stops trials with SIGTERM; one landing mid-flush must not deadlock or lose points."""
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parents[2])!r})
        from runner import report
        r = report.Reporter({str(tmp_path / 'm.jsonl')!r}, flush_every=10**9, flush_interval_s=1e9)
        for step in range(100):
            r.log(step, train_loss=1.0)
        real_write = r._write_buffered
        def write_then_signal():
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the flush holds its lock
            real_write()
        r._write_buffered = write_then_signal
        r.flush()
        print("survived SIGTERM", flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert "survived" not in proc.stdout
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 100


def test_reporter_lines_round_trip_special_values(tmp_path):
    import numpy as np

    r = Reporter(tmp_path / "m.jsonl", flush_every=1000)
    r.log(2, train_loss=float("nan"), grad_norm=float("inf"), lr=np.float32(0.5), steps_seen=7,
          note="not a number", **{'odd "name"\\': 1.25})
    r.flush()
    u = collect(target(tmp_path), now=0)
    got = {r[1]: r[3] for r in u.points()}
    assert got == {"train_loss": None, "grad_norm": math.inf, "lr": 0.5, "steps_seen": 7.0,
                   'odd "name"\\': 1.25}  # the non-number is skipped, not stored
    assert u.diverged and u.bad_lines == 0


def slow_path(lines, tgt):
    """What line-by-line parsing stores: the reference the msgspec path must equal."""
    from runner.ingest import add_record, decode_lines
    from store.metrics import TrialUpdate

    update = TrialUpdate(trial_id=tgt.trial_id)
    for record in decode_lines(lines):
        update.bad_lines += not add_record(record, tgt, update)
    return update


def test_common_lines_store_exactly_what_line_by_line_parsing_stores(tmp_path):
    import json
    import random

    rng = random.Random(5)
    lines = []
    for step in range(300):
        names = ["val_loss", "lr"] if step % 50 else ["val_loss", "lr", "eval_acc"]  # the set changes
        m = {k: rng.choice([rng.random(), 3, -0.0, 1e300]) for k in names}
        record = {"step": step, "m": m} if step % 7 else {"step": step, "t": 1e9 + step, "m": m}
        lines.append(json.dumps(record))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    tgt = target(tmp_path)
    assert decode_common([ln.encode() for ln in lines]) is not None  # the fast path takes this pass
    fast, slow = collect(tgt, now=0), slow_path([ln.encode() for ln in lines], tgt)
    assert fast.points() == slow.points() and len(fast.points()) == 300 * 2 + 6
    assert (fast.best, fast.last_step, fast.bad_lines) == (slow.best, slow.last_step, 0)


def test_one_odd_line_in_a_pass_is_judged_line_by_line(tmp_path):
    good = '{"step": %d, "m": {"val_loss": 0.5}}'
    odd = [
        '{"step": 2, "m": {"val_loss": NaN}}',  # non-finite: stored as missing, marks divergence
        '{"step": 2, "m": {"val_loss": true}}',  # a boolean is not a number: bad
        '{"step": 2, "m": {"val_loss": 0.1}}, {"step": 3, "m": {"val_loss": 0.1}}',  # two in one: bad
        '{"step": 2, "m": {"%s": 0.1}}' % ("x" * 300),  # a name too long: bad
        '{"step": 2, "checkpoint": "/c.pt", "objective": 0.1}',
    ]
    for line in odd:
        lines = [good % 0, good % 1, line, good % 3]
        (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
        tgt = target(tmp_path)
        fast, slow = collect(tgt, now=0), slow_path([ln.encode() for ln in lines], tgt)
        assert (fast.points(), fast.bad_lines, fast.diverged, fast.checkpoints) == \
            (slow.points(), slow.bad_lines, slow.diverged, slow.checkpoints), line
        assert [p[2] for p in fast.points()][:2] == [0, 1] and fast.points()[-1][2] == 3


# Each of these lines once raised out of the runner pass (in collect() or in the store's write),
# on every pass and every restart. Now each is dropped, counted, and kept as the trial's sample.
POISON = {
    "step 2**63": b'{"step": 9223372036854775808, "m": {"val_loss": 0.5}}',
    "step 2**64": b'{"step": 18446744073709551616, "m": {"val_loss": 0.5}}',
    "lone surrogate name": b'{"step": 1, "m": {"val_loss\\ud800": 0.5}}',
    "not UTF-8": b'{"step": 1, "m": {"val_loss\xff": 0.5}}',
    "encoded surrogate": b'{"step": 1, "m": {"val_loss\xed\xa0\x80": 0.5}}',
    "checkpoint step 2**63": b'{"step": 9223372036854775808, "checkpoint": "/c.pt"}',
    "checkpoint path surrogate": b'{"step": 1, "checkpoint": "/c\\udfff.pt"}',
}


def _store_with_trial(db_path):
    import store
    from store import studies, trials
    from store.trials import NewTrial

    db = store.connect(db_path)
    study = studies.upsert(db, dict(
        name="s", goal="", notes="", config_path="/x/study.toml", config_text="", config_hash="h",
        command_template="python t.py", objective_metric="val_loss", objective_mode="min",
        max_train_steps=100, run_dir="/tmp/runs", reproduce_command="x"))
    trials.insert_new(db, study.id, [NewTrial(i, "manual", {}, {}, ["python"], f"/tmp/t{i}") for i in (1, 2)])
    return db, trials.list_for_study(db, study.id)


@pytest.mark.parametrize("case", sorted(POISON))
def test_a_line_the_store_cannot_hold_is_dropped_counted_and_sampled(tmp_path, case):
    from store import metrics, trials

    db, (trial, _) = _store_with_trial(tmp_path / "pb.db")
    lines = [b'{"step": 0, "m": {"val_loss": 2.0}}', POISON[case], b'{"step": 2, "m": {"val_loss": 1.0}}']
    (tmp_path / "m.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    update = collect(target(tmp_path, trial_id=trial.id), now=0)
    metrics.write_updates(db, [update], {trial.id: "min"})
    stored = trials.get(db, trial.id)
    assert [(p[2], p[3]) for p in metrics.points(db, trial.id)] == [(0, 2.0), (2, 1.0)]
    assert metrics.checkpoints(db, trial.id) == []
    assert (stored.bad_lines, stored.metrics_offset) == (1, len(b"\n".join(lines)) + 1)
    assert stored.bad_line_sample.endswith(": " + POISON[case].decode("utf-8", "backslashreplace")), \
        stored.bad_line_sample


def test_a_wall_time_beyond_float_range_keeps_the_point_without_it(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"step": 3, "t": 1' + "0" * 400 + ', "m": {"val_loss": 0.5}}\n')
    u = collect(target(tmp_path), now=0)
    assert (u.points(), u.bad_lines) == ([(1, "val_loss", 3, 0.5, None)], 0)


def test_a_captured_step_beyond_the_store_is_dropped_and_counted(tmp_path):
    import re

    (tmp_path / "out.log").write_bytes(b"step 9223372036854775808 loss=0.1\nstep 5 loss=0.2 \xed\xa0\x80\xff\n")
    pattern = MetricPattern(re.compile(r"step (?P<step>\d+) loss=(?P<loss>\S+)"), ("loss",))
    u = collect(target(tmp_path, patterns=(pattern,)), now=1.0)
    assert [(p[1], p[2], p[3]) for p in u.points()] == [("loss", 5, 0.2)]
    capture = json.loads(u.capture_json)  # a printed line's drop is counted with the capture's own
    assert capture["dropped"] == 1 and capture["samples"]["dropped"] == "step 9223372036854775808 loss=0.1"
    assert "64-bit" in capture["drop_reason"]


def test_the_store_skips_one_trials_refused_batch_and_writes_the_others(tmp_path):
    """The last guard behind ingest's checks: data the store refuses costs only that trial's batch."""
    from store import metrics, trials
    from store.metrics import TrialUpdate

    db, (bad, good) = _store_with_trial(tmp_path / "pb.db")
    refused = TrialUpdate(bad.id, rows=[(bad.id, "loss", 2**63, 1.0, None), (bad.id, "loss\ud800", 1, 1.0, None)],
                          metrics_offset=100, lines=2)
    fine = TrialUpdate(good.id, rows=[(good.id, "loss", 1, 0.5, None)], metrics_offset=50, lines=1)
    metrics.write_updates(db, [refused, fine], {})
    assert metrics.points(db, good.id) == [(good.id, "loss", 1, 0.5, None)]
    assert trials.get(db, good.id).metrics_offset == 50
    stored = trials.get(db, bad.id)
    assert (metrics.points(db, bad.id), stored.metrics_offset, stored.bad_lines) == ([], 100, 2)
    assert stored.bad_line_sample.startswith("the store refused this batch (OverflowError")
    assert refused.bad_lines == 2 and not refused.series  # the update now says what was written


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_metrics_path_that_is_not_a_file_is_read_as_nothing(tmp_path, kind):
    """A trial can put anything in its metrics file's place: a folder raised out of the runner
    pass, and opening a FIFO would block the runner until someone wrote to it."""
    import os

    path = tmp_path / "m.jsonl"
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    u = collect(target(tmp_path), now=0, final=True)
    assert u.is_empty(), u


def test_an_unforeseen_failure_skips_the_batch_and_says_why(tmp_path, monkeypatch):
    """The last guard in ingest itself: whatever a line makes parsing raise costs that batch only."""
    import runner.ingest

    def broken(lines):
        raise RuntimeError("a check nobody wrote")

    (tmp_path / "m.jsonl").write_text('{"step": 0, "m": {"val_loss": 1.0}}\n{"step": 1, "m": {"val_loss": 0.5}}\n')
    monkeypatch.setattr(runner.ingest, "decode_common", broken)
    u = collect(target(tmp_path), now=0)
    assert (u.series, u.bad_lines, u.metrics_offset) == ({}, 2, (tmp_path / "m.jsonl").stat().st_size)
    assert u.bad_sample == "ingest failed on this batch (RuntimeError: a check nobody wrote)"


def _ingest_pass(db, trial_id: int, tmp_path, **kw):
    """One ingest pass as the runner makes it: from the stored offsets, written in one transaction."""
    from store import capture, metrics, trials

    stored = trials.get(db, trial_id)
    update = collect(target(tmp_path, trial_id=trial_id, metrics_offset=stored.metrics_offset,
                            stdout_offset=stored.stdout_offset, capture_json=capture.load(db, trial_id), **kw),
                     now=0)
    metrics.write_updates(db, [update], {trial_id: "min"})
    return trials.get(db, trial_id)


@pytest.mark.parametrize("path", ["msgspec", "line by line"])
def test_reported_points_that_repeat_or_go_back_in_step_are_merged_and_counted(tmp_path, path):
    """A resumed run logs steps 6-10 again: the last value wins, and the trial says so (across passes,
    across a runner restart), with one sample; a checkpoint line sends a pass down the line-by-line path."""
    import store
    from store import metrics

    db, (trial, _) = _store_with_trial(tmp_path / "pb.db")
    extra = '{"step": 0, "checkpoint": "/c.pt"}\n' if path == "line by line" else ""
    log = tmp_path / "m.jsonl"
    log.write_text(extra + "".join(f'{{"step": {s}, "m": {{"val_loss": {1 / s}, "lr": 0.1}}}}\n'
                                   for s in range(1, 11)))
    assert _ingest_pass(db, trial.id, tmp_path).out_of_order == 0
    with open(log, "a") as f:  # the next pass: the resumed attempt logs from step 6 on, twice at step 7
        f.write(extra + "".join(f'{{"step": {s}, "m": {{"val_loss": {2 / s}}}}}\n' for s in (6, 7, 7, 8)))
    stored = _ingest_pass(db, trial.id, tmp_path)
    assert stored.out_of_order == 4
    assert stored.out_of_order_sample.startswith("val_loss at step 6 after step 10 (value 0.333333")
    assert stored.out_of_order_sample.endswith('): {"step": 6, "m": {"val_loss": 0.3333333333333333}}')

    db = store.connect(tmp_path / "pb.db")  # a restarted runner carries on counting
    with open(log, "a") as f:
        f.write(extra + '{"step": 3, "m": {"lr": 0.2}}\n{"step": 11, "m": {"lr": 0.3}}\n')
    stored = _ingest_pass(db, trial.id, tmp_path)
    assert stored.out_of_order == 5 and stored.out_of_order_sample.startswith("val_loss at step 6 after step 10")
    assert [(p[2], p[3]) for p in metrics.points(db, trial.id, "val_loss")] == \
        [(s, 1 / s) for s in range(1, 6)] + [(6, 2 / 6), (7, 2 / 7), (8, 2 / 8), (9, 1 / 9), (10, 1 / 10)]


def test_printed_points_out_of_order_are_counted_by_the_capture_not_twice(tmp_path):
    import re

    db, (trial, _) = _store_with_trial(tmp_path / "pb.db")
    (tmp_path / "out.log").write_text("step 1 loss=0.5\nstep 2 loss=0.4\nstep 1 loss=0.3\n")
    pattern = MetricPattern(re.compile(r"step (?P<step>\d+) loss=(?P<loss>\S+)"), ("loss",))
    stored = _ingest_pass(db, trial.id, tmp_path, patterns=(pattern,))
    from store import capture

    assert json.loads(capture.load(db, trial.id))["out_of_order"] == 1 and stored.out_of_order == 0


def test_a_line_longer_than_a_pass_is_counted_as_dropped_not_lost_unseen(tmp_path):
    # A trial printed one 9 MiB line (a tensor dumped by mistake) between two good points: both good
    # points are stored, and the user sees the long line counted with why it was dropped.
    from runner.ingest import MAX_BYTES_PER_PASS

    path = tmp_path / "m.jsonl"
    huge = b'{"step": 1, "m": {"val_loss": [' + b"0.5, " * (MAX_BYTES_PER_PASS // 5 + 1000) + b"0.5]}}\n"
    path.write_bytes(b'{"step": 0, "m": {"val_loss": 2.0}}\n' + huge + b'{"step": 2, "m": {"val_loss": 1.0}}\n')
    tgt, points, bad, samples = target(tmp_path), [], 0, []
    while tgt.metrics_offset < path.stat().st_size:
        u = collect(tgt, now=0)
        points += [(r[2], r[3]) for r in u.points()]
        bad += u.bad_lines
        samples.append(u.bad_sample)
        tgt = target(tmp_path, metrics_offset=u.metrics_offset)
    assert points == [(0, 2.0), (2, 1.0)]
    assert bad >= 1 and any(s and "longer than 8 MiB" in s for s in samples)
