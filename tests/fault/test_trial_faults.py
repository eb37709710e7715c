"""Trials that die, freeze, refuse to stop, fork, or flood stdout, under the real runner."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from fault_helpers import (
    file_points,
    pid_alive,
    run_cli,
    start_runner,
    stored_points,
    study_file,
    study_trials,
    wait_for,
)

from runner.shim import COPY_CHUNK, LOG_ROTATE_BYTES

STOP_GRACE_S = 1.5


def command_pid(shim_pid: int) -> int:
    """The training command's pid: the shim's only child."""
    children = Path(f"/proc/{shim_pid}/task/{shim_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def running(db_path: Path, n: int) -> list:
    rows = study_trials(db_path)
    live = [t for t in rows if t.state.value == "running" and t.pid]
    return rows if len(live) >= n else []


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed between the listing and the stat
        return 0


def points_so_far(db_path: Path, trial_id: int) -> int:
    return len(stored_points(db_path, trial_id))


@pytest.mark.timeout(60)
def test_killed_and_frozen_trials(tmp_path, db_path):
    params = [{"mode": "steady", "sleep": 0.05, "tag": tag} for tag in ("kill_cmd", "kill_group", "freeze")]
    study = study_file(tmp_path / "study", params, steps=60)
    proc = start_runner(db_path, study, "--cpu-slots", "3")
    try:
        rows = wait_for(lambda: running(db_path, 3), 30, "three running trials")
        by_tag = {t.params["tag"]: t for t in rows}
        wait_for(lambda: points_so_far(db_path, by_tag["freeze"].id) > 15, 20, "some points")
        os.kill(command_pid(by_tag["kill_cmd"].pid), signal.SIGKILL)  # like the OOM killer
        os.killpg(by_tag["kill_group"].pid, signal.SIGKILL)  # the shim goes too: no exit file
        os.killpg(by_tag["freeze"].pid, signal.SIGSTOP)
        frozen_file = Path(by_tag["freeze"].trial_dir) / "metrics.jsonl"
        time.sleep(0.5)
        frozen_size = frozen_file.stat().st_size
        time.sleep(2.0)  # ten runner passes with a stopped (not dead) process
        frozen = {t.params["tag"]: t for t in study_trials(db_path)}["freeze"]
        assert frozen.state.value == "running" and frozen_file.stat().st_size == frozen_size
        assert stored_points(db_path, frozen.id) == file_points(frozen_file)  # caught up, no more
        os.killpg(by_tag["freeze"].pid, signal.SIGCONT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    got = {t.params["tag"]: t for t in study_trials(db_path)}
    assert (got["kill_cmd"].state.value, got["kill_cmd"].reason, got["kill_cmd"].detail) == (
        "failed", "signal", "killed by SIGKILL")
    assert (got["kill_group"].state.value, got["kill_group"].reason) == ("failed", "signal")
    assert got["freeze"].state.value == "completed" and got["freeze"].last_step == 59
    for t in got.values():  # whatever a killed trial wrote before it died is kept
        assert stored_points(db_path, t.id) == file_points(Path(t.trial_dir) / "metrics.jsonl")


@pytest.mark.timeout(60)
def test_stop_escalates_and_takes_forked_children(tmp_path, db_path):
    params = [{"mode": "stubborn", "sleep": 0}, {"mode": "forker", "sleep": 0}]
    study = study_file(tmp_path / "study", params, steps=5)
    proc = start_runner(db_path, study, "--cpu-slots", "2", "--grace", str(STOP_GRACE_S))
    try:
        rows = wait_for(lambda: running(db_path, 2), 30, "two running trials")
        forker = next(t for t in rows if t.params["mode"] == "forker")
        children_file = Path(forker.trial_dir) / "children.json"
        wait_for(children_file.exists, 20, "the forked children's pids")
        children = json.loads(children_file.read_text())
        assert all(pid_alive(pid) for pid in children)
        asked = time.monotonic()
        stop = run_cli(db_path, "stop", "f")
        assert stop.returncode == 0, stop.stderr
        stubborn = next(t for t in rows if t.params["mode"] == "stubborn")
        wait_for(lambda: not pid_alive(stubborn.pid), 20, "the SIGTERM-ignoring trial to be killed")
        took = time.monotonic() - asked
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    # It ignored SIGTERM, so only the SIGKILL after the grace period ended it.
    assert STOP_GRACE_S <= took < STOP_GRACE_S + 10
    assert [t.state.value for t in study_trials(db_path)] == ["stopped", "stopped"]
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.timeout(90)
def test_stdout_flood_is_bounded_and_does_not_stall_other_trials(tmp_path, db_path):
    params = [{"mode": "flood", "sleep": 0}, {"mode": "steady", "sleep": 0.02}]
    study = study_file(tmp_path / "study", params, steps=400,
                       command="python faulty.py {mode} --steps {max_train_steps} --sleep {sleep} --seconds 4")
    proc = start_runner(db_path, study, "--cpu-slots", "2")
    try:
        rows = wait_for(lambda: running(db_path, 2), 30, "two running trials")
        flood = next(t for t in rows if t.params["mode"] == "flood")
        steady = next(t for t in rows if t.params["mode"] == "steady")
        log = Path(flood.trial_dir) / "stdout.log"
        seen = []  # (flood bytes written so far, steady points stored so far), while it floods
        while proc.poll() is None and pid_alive(flood.pid):
            written = sum(size(p) for p in log.parent.glob("stdout.log*"))
            current = size(log)  # absent for a moment while rotating
            seen.append((written, points_so_far(db_path, steady.id), current))
            time.sleep(0.2)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    got = {t.params["mode"]: t for t in study_trials(db_path)}
    assert got["flood"].state.value == "completed" and got["steady"].state.value == "completed"
    during = [points for _, points, _ in seen]
    print(f"flood samples (bytes on disk, steady points, stdout.log bytes): {seen}")
    # The other trial's metrics kept arriving while the flood ran.
    assert len(set(during)) >= 3, seen
    logs = sorted(log.parent.glob("stdout.log*"))
    sizes = {p.name: p.stat().st_size for p in logs}
    bound = LOG_ROTATE_BYTES + COPY_CHUNK  # a file may pass the limit to finish its last line
    assert max(size for *_, size in seen) <= bound, sizes
    assert sum(sizes.values()) <= 2 * bound, sizes
    assert stored_points(db_path, got["steady"].id) == file_points(Path(got["steady"].trial_dir) / "metrics.jsonl")
