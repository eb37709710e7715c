"""Reporter's background writer: log() never waits on the disk, points still arrive whole, in order,
on time, at exit and on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from runner.report import Reporter

ROOT = Path(__file__).resolve().parents[2]


def steps_in(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.mark.timeout(120)
def test_a_stalled_disk_never_stalls_the_training_loop(tmp_path):
    """A write that hangs (an NFS server gone away, which this machine cannot have: the append is
    held on a gate) blocks the writer thread, not log(); once it returns, every point arrives in order."""
    path = tmp_path / "metrics.jsonl"
    rep = Reporter(path, flush_every=10, flush_interval_s=1e9)
    rep.max_queued_points = 100  # and log() encodes points itself while the writer is that far behind
    gate = threading.Event()
    real_append = rep._append

    def hung_append(data: bytes) -> None:
        gate.wait()
        real_append(data)

    rep._append = hung_append
    done = threading.Event()

    def training_loop() -> None:
        for step in range(1000):
            rep.log(step, train_loss=1.0 / (step + 1), lr=0.1)
        done.set()

    loop = threading.Thread(target=training_loop, daemon=True)
    loop.start()
    try:
        assert done.wait(60), "log() waited on the hung write"
    finally:
        gate.set()
    rep.close()
    assert steps_in(path) == list(range(1000))


@pytest.mark.timeout(60)
def test_points_reach_the_file_within_the_interval_without_another_log_call(tmp_path):
    """A slow loop (one step a minute) still sees its points stored about flush_interval_s later."""
    path = tmp_path / "metrics.jsonl"
    rep = Reporter(path, flush_every=10**6, flush_interval_s=0.05)
    for step in range(3):
        rep.log(step, val_loss=0.5)
    assert wait_for(lambda: steps_in(path) == [0, 1, 2]), steps_in(path)
    rep.log(3, val_loss=0.4)
    assert wait_for(lambda: steps_in(path) == [0, 1, 2, 3]), steps_in(path)
    rep.close()
    assert steps_in(path) == [0, 1, 2, 3]


@pytest.mark.timeout(120)
def test_the_writer_taking_the_buffer_while_log_runs_loses_and_repeats_nothing(tmp_path):
    """The writer takes the buffer every millisecond while log() appends and hands over batches."""
    path = tmp_path / "metrics.jsonl"
    rep = Reporter(path, flush_every=7, flush_interval_s=1e-3)
    for step in range(50_000):
        rep.log(step, train_loss=float(step))
        if step % 997 == 0:
            rep.checkpoint(step, f"ckpt-{step}.pt", objective=float(step))
    rep.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    points = [line["step"] for line in lines if "m" in line]
    marks = [line["step"] for line in lines if "checkpoint" in line]
    assert points == list(range(50_000)) and marks == list(range(0, 50_000, 997))


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    prelude = f"import os, signal, sys, threading, time\nsys.path.insert(0, {str(ROOT)!r})\n" \
              "from runner.report import Reporter\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(90)
def test_sigterm_while_the_writer_thread_writes_waits_for_it_and_writes_the_rest(tmp_path):
    path = tmp_path / "metrics.jsonl"
    done = run_script("""
        rep = Reporter(sys.argv[1], flush_every=100, flush_interval_s=1e9)
        in_write = threading.Event()
        real_append = rep._append
        def slow_append(data):
            in_write.set()
            time.sleep(0.5)  # a slow disk: the SIGTERM arrives during this write
            real_append(data)
        rep._append = slow_append
        for step in range(100):  # one batch for the writer thread
            rep.log(step, train_loss=1.0)
        in_write.wait(30)
        for step in range(100, 150):  # still in the buffer
            rep.log(step, train_loss=1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        print("survived SIGTERM")
    """, str(path))
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert "survived" not in done.stdout
    assert steps_in(path) == list(range(150))


@pytest.mark.timeout(60)
def test_exit_writes_what_the_writer_thread_has_not(tmp_path):
    """A script that ends right after logging: atexit writes the queued and buffered points."""
    path = tmp_path / "metrics.jsonl"
    done = run_script("""
        rep = Reporter(sys.argv[1], flush_every=64, flush_interval_s=1e9)
        for step in range(10_000):
            rep.log(step, train_loss=1.0, grad_norm=2.0)
    """, str(path))
    assert done.returncode == 0, done.stderr
    assert steps_in(path) == list(range(10_000))


@pytest.mark.timeout(60)
def test_close_ends_the_writer_thread_and_a_later_log_still_arrives(tmp_path):
    """A script that makes a Reporter per epoch and closes it leaves no thread behind."""
    path = tmp_path / "metrics.jsonl"
    threads = []
    for epoch in range(5):
        rep = Reporter(path, flush_every=4, flush_interval_s=1e9)
        threads.append(rep._writer)
        for step in range(epoch * 10, epoch * 10 + 10):
            rep.log(step, train_loss=1.0)
        rep.close()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    rep.log(50, train_loss=0.5)  # after close: written by a new writer at the next flush
    rep.flush()
    assert steps_in(path) == list(range(51))


@pytest.mark.timeout(60)
def test_a_forked_child_that_exits_normally_does_not_write_the_parents_points_again(tmp_path):
    """os.fork() workers (a DataLoader's, a script's own) inherit the buffer; only the parent writes it."""
    path = tmp_path / "metrics.jsonl"
    done = run_script("""
        rep = Reporter(sys.argv[1], flush_every=1000, flush_interval_s=1e9)
        for step in range(10):
            rep.log(step, train_loss=1.0)
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # a normal exit: atexit runs in the child
        _, status = os.waitpid(pid, 0)
        rep.log(10, train_loss=0.5)
        rep.close()
        print("child exit", os.waitstatus_to_exitcode(status))
    """, str(path))
    assert done.returncode == 0 and "child exit 0" in done.stdout, done.stderr
    assert steps_in(path) == list(range(11))
