"""A database that is locked, read-only, not a database, or on a full disk: clear errors, nothing lost."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_helpers import (
    ROOT,
    file_points,
    pid_alive,
    read_db,
    run_cli,
    runner_argv,
    start_runner,
    stored_points,
    study_file,
    study_trials,
    wait_for,
)

from store import metrics

LOCK_HOLD_S = 5.0  # well past several runner passes, well under the store's busy timeout


def point_count(db_path: Path) -> int:
    return read_db(db_path, lambda db: metrics.count_points(db)) or 0


def assert_one_clear_line(result: subprocess.CompletedProcess, path: Path) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.stderr


@contextlib.contextmanager
def small_fs(folder: Path, size: str):
    """A tmpfs of `size` mounted at `folder` (needs root and mount rights)."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        print(reason)
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.timeout(30)
def test_garbage_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "runs.db"
    bad.write_bytes(os.urandom(64 * 1024))
    before = bad.read_bytes()
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0}], steps=3)
    for args in (["status"], ["run", str(study)]):
        assert_one_clear_line(run_cli(bad, *args), bad)
    assert bad.read_bytes() == before  # never "repaired" into an empty database


@pytest.mark.timeout(40)
def test_read_only_database_is_one_clear_line_and_unchanged(tmp_path):
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0}], steps=5)
    with small_fs(tmp_path / "ro", "8m") as disk:
        db_path = disk / "playbook.db"
        assert run_cli(db_path, "run", str(study)).returncode == 0
        rows = point_count(db_path)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for args in (["status"], ["run", str(study)]):
            assert_one_clear_line(run_cli(db_path, *args), db_path)
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert point_count(db_path) == rows == 15


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE studies SET notes = 'held' WHERE 0")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@pytest.mark.timeout(60)
def test_runner_waits_out_a_write_lock_and_loses_nothing(tmp_path, db_path):
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0.02}] * 2, steps=250)
    log = tmp_path / "runner.log"
    proc = start_runner(db_path, study, log=log)
    try:
        wait_for(lambda: point_count(db_path) > 60, 30, "ingest to start")
        holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db_path), str(LOCK_HOLD_S)],
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "locked"
        held_from = point_count(db_path)
        time.sleep(1.0)
        assert point_count(db_path) == held_from and holder.poll() is None  # the runner is held up
        status = run_cli(db_path, "status")  # readers are not blocked by a writer (WAL)
        assert status.returncode == 0 and "f  [" in status.stdout, status.stderr
        assert holder.wait(timeout=30) == 0
        assert proc.wait(timeout=40) == 0
    finally:
        proc.kill()
    rows = study_trials(db_path)
    assert [t.state.value for t in rows] == ["completed"] * 2
    for t in rows:
        assert stored_points(db_path, t.id) == file_points(Path(t.trial_dir) / "metrics.jsonl")
    assert "store error" not in log.read_text()  # waited, did not fail


def fill(folder: Path) -> Path:
    """Write a file in `folder` until the file system is full."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: close() has nothing left to fail on
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.timeout(90)
def test_full_disk_is_a_clear_error_and_loses_nothing_stored(tmp_path):
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0.02}] * 2, steps=400)
    with small_fs(tmp_path / "disk", "24m") as disk:
        db_path = disk / "playbook.db"
        (tmp_path / "runs").mkdir()
        (disk / "runs").symlink_to(tmp_path / "runs")  # only the database is on the small disk
        log = tmp_path / "runner.log"
        proc = start_runner(db_path, study, log=log)
        try:
            wait_for(lambda: point_count(db_path) > 300, 30, "ingest to start")
            before = read_db(db_path, lambda db: set(metrics.points(db)))
            filler = fill(disk)
            wait_for(lambda: "store error" in log.read_text(), 20, "the runner to hit the full disk")
            time.sleep(1.0)
            assert proc.poll() is None and pid_alive(proc.pid)  # it keeps retrying
            full_status = run_cli(db_path, "status")
            filler.unlink()
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()
        after = read_db(db_path, lambda db: set(metrics.points(db)))
        rows = study_trials(db_path)
        stored = {t.id: stored_points(db_path, t.id) for t in rows}
        written = {t.id: file_points(Path(t.trial_dir) / "metrics.jsonl") for t in rows}  # via the link
    message = next(line for line in log.read_text().splitlines() if "store error" in line)
    print(f"runner said: {message!r}; status on the full disk: rc {full_status.returncode}, "
          f"{full_status.stderr.strip().splitlines()[-1]!r}")
    assert "full" in message
    assert before <= after  # nothing stored before the disk filled was lost
    assert [t.state.value for t in rows] == ["completed"] * 2, log.read_text()
    for t in rows:  # and what the trials wrote meanwhile was caught up
        assert stored[t.id] == written[t.id] and len(written[t.id]) == 400 * 3


FSIZE_LIMIT = 1 * 2**20  # bytes: passed by the WAL within seconds, far above any trial's own files


def limit_file_size(limit: int) -> Callable[[], None]:
    """A preexec_fn: files this process writes stop at `limit` bytes (writes fail with EFBIG).

    SIGXFSZ is ignored, else the first write past the limit kills the process instead of failing.
    The hard limit stays unlimited, so the test can lift the soft one later (resource.prlimit).
    """
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


@pytest.mark.timeout(90)
def test_file_size_limit_is_a_clear_error_and_loses_nothing_stored(tmp_path, db_path):
    """The full-disk case without a tmpfs: RLIMIT_FSIZE on the runner, which holds the database."""
    steps = 3000
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0.002}] * 2, steps=steps)
    log = tmp_path / "runner.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(runner_argv(db_path, "run", str(study)), cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=limit_file_size(FSIZE_LIMIT))
    try:
        wait_for(lambda: "store error" in log.read_text(), 40, "the runner to reach the file size limit")
        before = read_db(db_path, lambda db: set(metrics.points(db)))
        time.sleep(1.5)  # more passes against the limit
        assert proc.poll() is None and pid_alive(proc.pid)  # it keeps retrying, it did not die
        assert read_db(db_path, lambda db: set(metrics.points(db))) == before
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        proc.kill()
    after = read_db(db_path, lambda db: set(metrics.points(db)))
    rows = study_trials(db_path)
    message = next(line for line in log.read_text().splitlines() if "store error" in line)
    print(f"runner said: {message!r}; {len(before)} points stored before the limit, {len(after)} after")
    assert "full" in message or "I/O" in message, message
    assert before and before <= after  # nothing stored before the limit was lost
    assert [t.state.value for t in rows] == ["completed"] * 2, log.read_text()
    for t in rows:  # and what the trials wrote meanwhile was caught up
        written = file_points(Path(t.trial_dir) / "metrics.jsonl")
        assert stored_points(db_path, t.id) == written and len(written) == steps * 3


@pytest.mark.timeout(120)
def test_a_write_lock_held_past_the_busy_timeout_is_one_clear_line(tmp_path, db_path):
    """A real BEGIN IMMEDIATE held by another process for longer than the (shortened) busy timeout:
    commands that must write say so in one line naming the database; once it is released they work."""
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0}], steps=3)
    assert run_cli(db_path, "run", str(study)).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db_path), "600"],
                              stdout=subprocess.PIPE, text=True)
    env = {**os.environ, "PLAYBOOK_BUSY_TIMEOUT": "1"}
    try:
        assert holder.stdout.readline().strip() == "locked"
        for args in (["run", str(study)], ["add-trials", "f", "1"]):
            result = subprocess.run(runner_argv(db_path, *args), capture_output=True, text=True,
                                    timeout=60, cwd=ROOT, env=env)
            assert_one_clear_line(result, db_path)
            assert "database is locked" in result.stderr and "PLAYBOOK_BUSY_TIMEOUT" in result.stderr
        print(result.stderr.splitlines()[-1])
        assert run_cli(db_path, "status").returncode == 0  # readers are not blocked meanwhile
    finally:
        holder.kill()
        holder.wait()
    added = subprocess.run(runner_argv(db_path, "add-trials", "f", "1"), capture_output=True, text=True,
                           timeout=60, cwd=ROOT, env=env)
    assert added.returncode == 0, added.stderr
    assert run_cli(db_path, "run", str(study)).returncode == 0
    assert [t.state.value for t in study_trials(db_path)] == ["completed"] * 2


def corrupt_table(db_path: Path, table: str) -> None:
    """Overwrite the root page of `table` with garbage (the file's header and schema stay intact)."""
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
    conn.close()
    with open(db_path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(bytes([0x0D]) + os.urandom(page_size - 1))  # 0x0D: a leaf page, then nonsense


@pytest.mark.timeout(120)
def test_a_database_damaged_mid_study_is_one_clear_line(tmp_path, db_path):
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0}] * 2, steps=3)
    assert run_cli(db_path, "run", str(study)).returncode == 0
    corrupt_table(db_path, "trials")
    for args in (["status"], ["run", str(study)], ["export", "f"]):
        result = run_cli(db_path, *args)
        assert_one_clear_line(result, db_path)
        assert "damaged" in result.stderr and ".recover" in result.stderr, result.stderr
    print(result.stderr.splitlines()[-1])


@pytest.mark.timeout(120)
def test_the_tui_refuses_a_damaged_database_in_one_line(tmp_path, db_path):
    study = study_file(tmp_path / "study", [{"mode": "steady", "sleep": 0}], steps=3)
    assert run_cli(db_path, "run", str(study)).returncode == 0
    corrupt_table(db_path, "trials")
    result = subprocess.run([sys.executable, "-c", "import sys, tui.app; sys.exit(tui.app.main())",
                             "--db", str(db_path)], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, stdin=subprocess.DEVNULL)
    assert_one_clear_line(result, db_path)
    assert "damaged" in result.stderr
