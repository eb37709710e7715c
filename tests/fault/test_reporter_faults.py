"""Storage faults under a real training process: the Reporter never raises into the loop, keeps the
points through the fault, warns once, and writes them once the fault clears."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fault_helpers import ROOT, run_cli, stored_points, study_file, study_trials

from runner.ingest import TailTarget, collect


def train(script: str, *args: str) -> subprocess.CompletedProcess:
    """A training script in a child process, with runner.report importable."""
    prelude = f"import os, resource, shutil, sys, time\nsys.path.insert(0, {str(ROOT)!r})\nfrom runner.report import Reporter\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script), *args],
                          capture_output=True, text=True, timeout=60)


def steps_in(path: Path) -> tuple[list[int], int]:
    """The steps a metrics file holds, as the runner's ingest reads them, and its bad lines."""
    update = collect(TailTarget(1, str(path), "", 0, 0, "loss", "min"), now=0)
    steps = [p[2] for p in update.points()]
    return steps, update.bad_lines


@pytest.mark.timeout(60)
def test_the_trial_folder_removed_under_training(tmp_path):
    folder = tmp_path / "trial"
    folder.mkdir()
    done = train("""
        folder = sys.argv[1]
        report = Reporter(os.path.join(folder, "metrics.jsonl"), flush_every=10, flush_interval_s=1e9)
        for step in range(50):
            report.log(step, loss=1.0 / (step + 1))
        report.flush()
        shutil.move(folder, folder + ".gone")  # the folder removed: every flush now fails
        for step in range(50, 150):
            report.log(step, loss=1.0 / (step + 1))
        report.flush()
        os.mkdir(folder)  # the fault clears
        time.sleep(1.1)  # past the Reporter's retry interval: the next flush writes
        for step in range(150, 160):
            report.log(step, loss=1.0 / (step + 1))
        deadline = time.monotonic() + 30  # the writer thread writes it, not close()
        while not os.path.exists(os.path.join(folder, "metrics.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.01)
        print("written before exit:", os.path.exists(os.path.join(folder, "metrics.jsonl")))
        report.close()
        print("training finished")
    """, str(folder))
    assert done.returncode == 0 and "training finished" in done.stdout, done.stderr
    assert "written before exit: True" in done.stdout  # a later flush, not only the one at exit
    assert done.stderr.count("cannot write metrics to") == 1, done.stderr
    assert "again (110 lines kept through the fault)" in done.stderr, done.stderr
    assert steps_in(tmp_path / "trial.gone" / "metrics.jsonl") == (list(range(50)), 0)
    assert steps_in(folder / "metrics.jsonl") == (list(range(50, 160)), 0)


@pytest.mark.timeout(60)
def test_a_folder_that_cannot_be_written_then_can(tmp_path):
    """Unwritable where root is concerned too: the folder's name is taken by a regular file (ENOTDIR)."""
    folder = tmp_path / "trial"
    folder.write_text("not a folder")
    done = train("""
        folder = sys.argv[1]
        report = Reporter(os.path.join(folder, "metrics.jsonl"), flush_every=5, flush_interval_s=1e9)
        for step in range(40):
            report.log(step, loss=1.0 / (step + 1))
        report.flush()  # the writer thread's writes may not have come yet: one now, under the fault
        os.remove(folder)
        os.mkdir(folder)
        report.log(40, loss=0.1)
        report.close()
    """, str(folder))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot write metrics to") == 1 and "Not a directory" in done.stderr, done.stderr
    assert steps_in(folder / "metrics.jsonl") == (list(range(41)), 0)


@pytest.mark.timeout(60)
def test_a_file_size_limit_keeps_the_newest_lines_up_to_the_bound(tmp_path):
    path = tmp_path / "metrics.jsonl"
    done = train("""
        report = Reporter(sys.argv[1], flush_every=10, flush_interval_s=1e9)
        report.max_pending_lines = 30
        for step in range(20):
            report.log(step, loss=1.0 / (step + 1))
        report.flush()
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(sys.argv[1]) + 300, hard))  # EFBIG
        for step in range(20, 120):
            report.log(step, loss=1.0 / (step + 1))
        report.flush()  # whatever the writer thread has not written yet: under the limit
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        report.log(120, loss=0.5)
        report.close()
        print("training finished")
    """, str(path))
    assert done.returncode == 0 and "training finished" in done.stdout, done.stderr
    assert done.stderr.count("cannot write metrics to") == 1, done.stderr
    assert "File too large" in done.stderr and "oldest lost past the bound" in done.stderr, done.stderr
    steps, bad = steps_in(path)
    assert bad == 0  # a write cut short by the limit was taken back off the file
    # Before the fault; what fit under the limit; the newest 30 kept through it; after it.
    assert steps[:20] == list(range(20)) and steps[-31:] == list(range(90, 121)), steps
    assert steps == sorted(set(steps))


EFBIG_TRIAL = """
import os, resource, sys
sys.path.insert(0, os.environ["PLAYBOOK_ROOT"])
from runner.report import Reporter
report = Reporter(flush_every=25, flush_interval_s=1e9)
path = os.environ["PLAYBOOK_METRICS_FILE"]
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the metrics file may not pass 4 KiB
for step in range(400):
    report.log(step, train_loss=1.0 / (step + 1))
report.flush()  # what the writer thread has not written yet: under the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the fault clears
for step in range(400, 410):
    report.log(step, train_loss=1.0 / (step + 1))
report.close()
"""


@pytest.mark.timeout(90)
def test_a_trial_past_a_file_size_limit_completes_with_every_point_stored(tmp_path, db_path, monkeypatch):
    folder = tmp_path / "study"
    study = study_file(folder, [{"mode": "x"}], steps=410, command="python efbig.py")
    (folder / "efbig.py").write_text(EFBIG_TRIAL)
    monkeypatch.setenv("PLAYBOOK_ROOT", str(ROOT))
    done = run_cli(db_path, "run", str(study), "--grace", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(db_path)
    assert (trial.state.value, trial.exit_code, trial.bad_lines) == ("completed", 0, 0), trial
    assert {step for _, step, _ in stored_points(db_path, trial.id)} == set(range(410))
    stderr = (Path(trial.trial_dir) / "stderr.log").read_text()
    assert stderr.count("cannot write metrics to") == 1, stderr
