"""64 trials reporting fast into one database, with the TUI open on it and a second reader polling.

Nothing may see "database is locked" (the runner's log, the TUI, the reader), and every line
every trial wrote must be stored. Prints the aggregate points/s achieved (pytest -s) and records
it in the test report (record_property): on a 2-core machine 64 trials at 1k points/s each is
more than the CPUs give, so the test asserts correctness and reports what it reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import ROOT, read_db, start_runner, study_file, study_trials, wait_for
from textual.notifications import Notify

from store import metrics
from tui.app import StoreFailed, make_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))
from tui_helpers import cell, open_study, run  # noqa: E402
from tui_helpers import wait_for as ui_wait

TRIALS = 64
RATE = 1000  # points/s each trial aims at
SECONDS = 10  # each trial's run time: 640k points in all, if the CPUs keep up
READER_POLL_S = 0.5  # like the TUI's poller (tui.app.POLL_S is 0.75)
RUN_LIMIT_S = 90  # runner start to its exit, catch-up included

# A second reader in its own process, polling the way the TUI does: PRAGMA data_version, then the
# trial table. Every error it meets is recorded, not raised, and written out when told to stop.
READER = """
import json, sqlite3, sys, time
from pathlib import Path
import store
db_path, stop, out, every = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
db = store.connect(db_path)
polls, changes, errors, slowest, version = 0, 0, [], 0.0, None
while not stop.exists():
    began = time.monotonic()
    try:
        now = db.execute("PRAGMA data_version").fetchone()[0]
        rows = db.execute("SELECT id, state, last_step, best_value, bad_lines FROM trials").fetchall()
        changes += now != version
        version = now
        polls += 1
    except sqlite3.Error as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    slowest = max(slowest, time.monotonic() - began)
    time.sleep(every)
out.write_text(json.dumps({"polls": polls, "changes": changes, "errors": errors, "slowest_s": slowest}))
"""


class Heard(list):
    """What reached the TUI's user as an error: failed store reads, error notifications."""

    def __call__(self, message) -> None:
        if isinstance(message, StoreFailed):
            self.append(f"store read failed: {message.error}")
        elif isinstance(message, Notify) and message.notification.severity == "error":
            self.append(f"notification: {message.notification.message}")


def line_counts(db_path: Path) -> dict[int, tuple[int, int]]:
    """Per trial id: (complete lines in its metrics file, metric rows stored)."""
    stored = dict(read_db(db_path, lambda db: db.execute(  # points per trial: the blocks' counts
        "SELECT trial_id, SUM(n) FROM metric_blocks GROUP BY trial_id").fetchall()))
    return {t.id: (len([ln for ln in (Path(t.trial_dir) / "metrics.jsonl").read_text().split("\n")[:-1] if ln]),
                   stored.get(t.id, 0)) for t in study_trials(db_path)}


@pytest.mark.timeout(120)
def test_64_fast_trials_with_the_tui_and_a_reader_open(tmp_path, db_path, record_property):
    params = [{"mode": "fast", "sleep": 0, "tag": i} for i in range(TRIALS)]
    study = study_file(tmp_path / "study", params, concurrency=TRIALS, objective="loss",  # what `fast` reports
                       command=f"python faulty.py {{mode}} --rate {RATE} --seconds {SECONDS}")
    log, stop, reader_out = tmp_path / "runner.log", tmp_path / "stop", tmp_path / "reader.json"
    began = time.monotonic()
    proc = start_runner(db_path, study, "--cpu-slots", str(TRIALS), log=log)
    reader = None
    heard = Heard()
    try:
        wait_for(lambda: len(study_trials(db_path)) == TRIALS, 30, "the study to be registered")
        reader = subprocess.Popen([sys.executable, "-c", READER, str(db_path), str(stop), str(reader_out),
                                   str(READER_POLL_S)], cwd=ROOT)

        async def scenario():
            app = make_app(db_path)
            async with app.run_test(size=(120, 40), message_hook=heard) as pilot:
                table = await open_study(pilot, app, rows=TRIALS)
                while proc.poll() is None and time.monotonic() - began < RUN_LIMIT_S:
                    await pilot.pause(0.5)  # the app polls and repaints meanwhile
                states = lambda: {cell(table, k.value, "state") for k in table.rows}  # noqa: E731
                await ui_wait(pilot, lambda: states() == {"completed"}, timeout=10)  # it kept up to the end

        run(scenario())
        assert proc.wait(timeout=5) == 0, log.read_text()[-2000:]
        ran_s = time.monotonic() - began
    finally:
        proc.kill()
        stop.touch()
        if reader is not None:
            reader.wait(timeout=10)
    polled = json.loads(reader_out.read_text())
    counts = line_counts(db_path)
    total = sum(stored for _, stored in counts.values())
    walls = read_db(db_path, lambda db: [p[4] for p in metrics.points(db)])
    span = max(walls) - min(walls)
    produced = total / span  # what the trials reported, over the time they were reporting
    ingested = total / ran_s  # runner start to every point stored
    print(f"\n{TRIALS} trials: {total} points; {produced:,.0f} points/s reported over {span:.1f} s "
          f"(target {TRIALS * RATE:,}); {ingested:,.0f} points/s from runner start to all stored "
          f"({ran_s:.1f} s); reader: {polled['polls']} polls, {polled['changes']} changes, "
          f"slowest {polled['slowest_s'] * 1000:.0f} ms; TUI errors: {len(heard)}")
    record_property("points_total", total)
    record_property("points_per_s_reported", round(produced))
    record_property("points_per_s_runner_start_to_stored", round(ingested))
    record_property("reader_slowest_poll_ms", round(polled["slowest_s"] * 1000))
    assert [t.state.value for t in study_trials(db_path)] == ["completed"] * TRIALS
    assert all(lines == stored for lines, stored in counts.values()), counts  # every line stored, once
    assert total > TRIALS * SECONDS * 50  # they did report fast (at least 5% of the target)
    text = log.read_text()
    assert "locked" not in text and "OperationalError" not in text and "store error" not in text, text[-2000:]
    assert polled["errors"] == [] and polled["polls"] >= 10 and polled["changes"] >= 5, polled
    assert heard == []
