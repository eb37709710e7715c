"""A trial's lifecycle under kill -9 and signals: nothing lost, nothing run twice, and a signal acts
on what the command that received it owns.

The real CLI in subprocesses, real trials (tests/fault/scripts/faulty.py), a real database file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from fault_helpers import (
    ROOT,
    file_points,
    pid_alive,
    read_db,
    run_cli,
    runner_argv,
    stored_points,
    study_file,
    study_trials,
    wait_for,
)

from runner.service import PAUSE_BEFORE_RUNNING_ENV
from store import lease, metrics


def launch_cli(db_path: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The real CLI in the background, output to `log`, with SIGINT at its default disposition
    (a shell's background job would hand it SIGINT ignored, and Ctrl-C could not reach it)."""
    with open(log, "ab") as out:
        return subprocess.Popen(runner_argv(db_path, *args), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def steps_in(metrics_path: Path) -> list[int]:
    """The step of every complete line of a metrics file, in file order."""
    if not metrics_path.exists():
        return []
    return [json.loads(line)["step"] for line in metrics_path.read_text().split("\n")[:-1] if line.strip()]


def last_report_time(metrics_path: Path) -> float:
    return max(json.loads(line)["t"] for line in metrics_path.read_text().splitlines() if line.strip())


def running(db_path: Path, n: int, study: str = "f") -> list:
    """The study's trials once `n` of them are running with a pid, else []."""
    rows = study_trials(db_path, study)
    return rows if sum(t.state.value == "running" and bool(t.pid) for t in rows) >= n else []


def command_pid(shim_pid: int) -> int:
    """The training command's pid: the shim's only child."""
    children = Path(f"/proc/{shim_pid}/task/{shim_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def kill_groups(pids) -> None:
    """Clean-up: end trials a test left running on purpose."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, TypeError):
            pass


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def lease_row(db_path: Path):
    return read_db(db_path, lease.current)


# -- item 1: the runner dies between spawning a trial and recording it as running ----------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("requeue_lost", "ended_first"), [(False, False), (True, False), (True, True)],
                         ids=["alive-at-restart", "alive-at-restart-requeue-lost", "ended-before-restart"])
def test_runner_killed_before_recording_a_started_trial(tmp_path, db_path, requeue_lost, ended_first):
    # Trial 1 is slow (6 s), trial 2 quick; one CPU slot, so they must never run at once.
    params = [{"mode": "steady", "sleep": 0.1, "tag": 1}, {"mode": "steady", "sleep": 0.01, "tag": 2}]
    study = study_file(tmp_path / "study", params, steps=60,
                       extra="requeue_lost = true" if requeue_lost else "")
    log = tmp_path / "runner.log"
    # The test hook holds the runner between the spawn and the 'running' mark: the kill lands there.
    proc = launch_cli(db_path, "run", str(study), "--cpu-slots", "1", log=log,
                      env={PAUSE_BEFORE_RUNNING_ENV: "300"})
    try:
        def started_unrecorded():
            rows = study_trials(db_path)
            metrics_file = Path(rows[0].trial_dir) / "metrics.jsonl" if rows else None
            return rows[0] if rows and rows[0].state.value == "starting" and len(steps_in(metrics_file)) >= 3 \
                else None

        first = wait_for(started_unrecorded, 60, "trial 1 to report while its row still says starting")
        first_metrics = Path(first.trial_dir) / "metrics.jsonl"
        if ended_first:
            wait_for((Path(first.trial_dir) / "exit.json").exists, 60, "trial 1 to end")
    finally:
        stop_process(proc)  # SIGKILL: the runner never records trial 1 as running
    assert study_trials(db_path)[0].state.value == "starting"
    done = run_cli(db_path, "run", str(study), "--cpu-slots", "1", timeout=180)
    assert done.returncode == 0, log.read_text() + done.stdout + done.stderr
    one, two = study_trials(db_path)
    assert (one.state.value, two.state.value) == ("completed", "completed"), (one, two, done.stdout)
    assert one.attempt == 1, done.stdout  # it ran once: adopted or settled, never lost or run again
    assert steps_in(first_metrics) == list(range(60))  # one run's series, not two mixed
    assert stored_points(db_path, one.id) == file_points(first_metrics)
    assert not (Path(one.trial_dir) / "attempt-1").exists()
    # One slot: trial 2 started only after trial 1's last report.
    assert two.started_at >= last_report_time(first_metrics)


# -- item 2: the shim is killed with no runner alive, its command lives on ------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("requeue_lost", [False, True], ids=["lost", "requeue-lost"])
def test_shim_killed_while_no_runner_watches(tmp_path, db_path, requeue_lost):
    steps = 60 if requeue_lost else 400  # not requeued: long enough to outlive the test on its own
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0.1}], steps=steps,
                       extra="requeue_lost = true" if requeue_lost else "")
    log = tmp_path / "runner.log"
    proc = launch_cli(db_path, "run", str(study), log=log)
    command = None
    try:
        (trial,) = wait_for(lambda: running(db_path, 1), 60, "the trial to run")
        metrics_file = Path(trial.trial_dir) / "metrics.jsonl"
        wait_for(lambda: len(steps_in(metrics_file)) >= 5, 60, "a few reports")  # noqa: B023
        stop_process(proc)  # no runner alive from here on
        command = command_pid(trial.pid)
        os.kill(trial.pid, signal.SIGKILL)  # only the shim: the command goes on writing
        wait_for(lambda: not pid_alive(trial.pid), 10, "the shim to die")  # noqa: B023
        assert pid_alive(command)
        done = run_cli(db_path, "run", str(study), timeout=180)
        assert done.returncode == 0, log.read_text() + done.stdout + done.stderr
        # Settling the lost attempt killed what was left of it.
        wait_for(lambda: not pid_alive(command), 10, "the orphaned command to be killed")
    finally:
        if command and pid_alive(command):
            os.kill(command, signal.SIGKILL)
    (row,) = study_trials(db_path)
    if not requeue_lost:
        assert row.state.value == "lost"
        return
    assert (row.state.value, row.attempt) == ("completed", 2)
    assert steps_in(metrics_file) == list(range(steps))  # the re-run's file holds the re-run alone
    assert stored_points(db_path, row.id) == file_points(metrics_file)
    earlier = steps_in(Path(row.trial_dir) / "attempt-1" / "metrics.jsonl")
    assert earlier == list(range(len(earlier))) and 5 <= len(earlier) < steps  # cut short, not mixed in


# -- item 4: Ctrl-C on one `run` acts on its own study only --------------------------------------


@pytest.mark.timeout(240)
def test_ctrl_c_on_one_run_leaves_another_runs_study_running(tmp_path, db_path):
    study_a = study_file(tmp_path / "a", [{"mode": "steady", "sleep": 0.1, "tag": i} for i in range(2)],
                         name="a", steps=400)
    study_b = study_file(tmp_path / "b", [{"mode": "steady", "sleep": 0.05, "tag": i} for i in range(2)],
                         name="b", steps=100)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    run_a = launch_cli(db_path, "run", str(study_a), "--cpu-slots", "4", "--grace", "2", log=log_a)
    run_b = None
    try:
        a_rows = wait_for(lambda: running(db_path, 2, "a"), 60, "study a's trials to run")
        run_b = launch_cli(db_path, "run", str(study_b), log=log_b)  # follows: run a owns the database
        wait_for(lambda: running(db_path, 2, "b"), 60, "study b's trials to run")
        run_a.send_signal(signal.SIGINT)
        assert run_a.wait(timeout=60) == 130, log_a.read_text()
        assert [t.state.value for t in study_trials(db_path, "a")] == ["stopped", "stopped"]
        assert not any(pid_alive(t.pid) for t in a_rows)
        # Study b's trials were not touched, and run b goes on (it takes the database over).
        assert {t.state.value for t in study_trials(db_path, "b")} <= {"running", "completed"}
        assert run_b.wait(timeout=120) == 0, log_b.read_text()
    finally:
        stop_process(run_a)
        if run_b is not None:
            stop_process(run_b)
    b_rows = study_trials(db_path, "b")
    assert [t.state.value for t in b_rows] == ["completed", "completed"], log_b.read_text()
    for t in b_rows:
        assert stored_points(db_path, t.id) == file_points(Path(t.trial_dir) / "metrics.jsonl")
    assert "takes over" in log_b.read_text()


# -- item 5: `stop S/1` with no runner waits for S/1 alone ----------------------------------------


@pytest.mark.timeout(240)
def test_stop_with_no_runner_returns_once_its_own_trial_is_settled(tmp_path, db_path):
    # Long trials (40 s): a stop that waited for all of them would find them completed.
    study_s = study_file(tmp_path / "s", [{"mode": "steady", "sleep": 0.1, "tag": i} for i in range(2)],
                         name="s", steps=400)
    study_t = study_file(tmp_path / "t", [{"mode": "steady", "sleep": 0.1}], name="t", steps=400)
    run_s = launch_cli(db_path, "run", str(study_s), "--cpu-slots", "4", log=tmp_path / "s.log")
    run_t = None
    pids = []
    try:
        pids += [t.pid for t in wait_for(lambda: running(db_path, 2, "s"), 60, "study s's trials to run")]
        run_t = launch_cli(db_path, "run", str(study_t), log=tmp_path / "t.log")
        pids += [t.pid for t in wait_for(lambda: running(db_path, 1, "t"), 60, "study t's trial to run")]
        stop_process(run_t)  # the follower first (it would take over), then the runner
        stop_process(run_s)
        stop = run_cli(db_path, "stop", "s/1", "--grace", "2", timeout=180)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        s1, s2 = study_trials(db_path, "s")
        (t1,) = study_trials(db_path, "t")
        assert s1.state.value == "stopped" and not pid_alive(s1.pid)
        # The others were left running, and the database is free for the next runner.
        assert (s2.state.value, t1.state.value) == ("running", "running"), stop.stdout
        assert pid_alive(s2.pid) and pid_alive(t1.pid)
        assert lease_row(db_path) is None
    finally:
        for proc in (run_s, run_t):
            if proc is not None:
                stop_process(proc)
        kill_groups(pids)


# -- item 10: SIGTERM, Ctrl-C while starting, --detach with an owner --------------------------


@pytest.mark.timeout(120)
def test_sigterm_ends_a_foreground_run_and_releases_the_database(tmp_path, db_path):
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0.1}], steps=400)
    log = tmp_path / "runner.log"
    proc = launch_cli(db_path, "run", str(study), log=log)
    pids = []
    try:
        (trial,) = wait_for(lambda: running(db_path, 1), 60, "the trial to run")
        pids.append(trial.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143, log.read_text()
        assert "terminated (SIGTERM)" in log.read_text()
        assert lease_row(db_path) is None  # the next runner does not wait for a heartbeat to expire
        (row,) = study_trials(db_path)
        assert row.state.value == "running" and pid_alive(row.pid)  # left for the next runner to adopt
    finally:
        stop_process(proc)
        kill_groups(pids)


@pytest.mark.timeout(240)
def test_ctrl_c_while_a_run_recovers_is_one_line_and_loses_nothing(tmp_path, db_path):
    lines = 300_000  # written at once after the runner is gone: recovery has seconds of catching up
    study = study_file(tmp_path / "study", [{"mode": "burst", "sleep": 3}], steps=lines)
    first = launch_cli(db_path, "run", str(study), log=tmp_path / "first.log")
    try:
        (trial,) = wait_for(lambda: running(db_path, 1), 60, "the trial to run")
    finally:
        stop_process(first)
    wait_for((Path(trial.trial_dir) / "exit.json").exists, 60, "the trial to write its lines and end")
    log = tmp_path / "second.log"
    second = launch_cli(db_path, "run", str(study), log=log)
    try:
        wait_for(lambda: "database:" in log.read_text(), 60, "the run to start")
        second.send_signal(signal.SIGINT)
        code = second.wait(timeout=60)
    finally:
        stop_process(second)
    text = log.read_text()
    assert code == 130 and "Traceback" not in text, text
    held = lease_row(db_path)  # the killed first runner's row may remain; the interrupted run's may not
    assert "interrupted" in text and (held is None or held.pid != second.pid), text
    done = run_cli(db_path, "run", str(study), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = study_trials(db_path)
    assert row.state.value == "completed"
    assert read_db(db_path, lambda db: metrics.count_points(db, row.id)) == lines


@pytest.mark.timeout(120)
def test_run_detach_returns_when_another_runner_owns_the_database(tmp_path, db_path):
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0.1}], steps=300)
    owner = launch_cli(db_path, "run", str(study), log=tmp_path / "owner.log")
    try:
        wait_for(lambda: running(db_path, 1), 60, "the trial to run")
        detached = run_cli(db_path, "run", str(study), "--detach", timeout=100)
        assert detached.returncode == 0, detached.stdout + detached.stderr
        assert "owns this database" in detached.stdout and "watch f" in detached.stdout
        (row,) = study_trials(db_path)
        assert row.state.value == "running"  # it returned at once, not when the study was done
    finally:
        stop_process(owner)
        kill_groups([t.pid for t in study_trials(db_path)])


# -- item 1 without a hook: kill -9 the runner at random moments of a study of short trials --------

RANDOM_KILLS = 12
KILL_SEED = 11  # fixed: the same kill points every run, so a failure can be replayed


@pytest.mark.timeout(280)
def test_random_runner_kills_never_lose_or_rerun_a_trial(tmp_path, db_path):
    """Short trials launch all the time, so kills land in claims, spawns and settles too; only the
    runner dies, so every trial must run exactly once and end completed, whatever was requeued."""
    import random

    # Half are quick (settled from exit.json after a restart), half outlive a restart (adopted).
    params = [{"mode": "steady", "sleep": 0.4 if i % 2 else 0.01, "tag": i} for i in range(24)]
    study = study_file(tmp_path / "study", params, steps=15, concurrency=2, extra="requeue_lost = true")
    rng = random.Random(KILL_SEED)
    log = tmp_path / "runner.log"
    for _ in range(RANDOM_KILLS):
        started = sum(t.state.value != "queued" for t in study_trials(db_path))
        proc = launch_cli(db_path, "run", str(study), "--cpu-slots", "2", log=log)
        try:
            wait_for(lambda: sum(t.state.value != "queued" for t in study_trials(db_path)) > started  # noqa: B023
                     or proc.poll() is not None, 60, "the runner to launch something")  # noqa: B023
            time_left = rng.uniform(0.0, 1.5)
            try:
                proc.wait(timeout=time_left)
            except subprocess.TimeoutExpired:
                pass
        finally:
            stop_process(proc)
    done = run_cli(db_path, "run", str(study), "--cpu-slots", "2", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = study_trials(db_path)
    assert [(t.state.value, t.attempt) for t in rows] == [("completed", 1)] * len(params), log.read_text()
    for t in rows:
        metrics_file = Path(t.trial_dir) / "metrics.jsonl"
        assert steps_in(metrics_file) == list(range(15)), t.number
        assert stored_points(db_path, t.id) == file_points(metrics_file)
        assert not (Path(t.trial_dir) / "attempt-1").exists()
