"""The runner with real subprocesses, real files and a real SQLite database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import store
from runner.cli import main as cli
from store import metrics, studies, trials

BASE = """
[study]
name = "{name}"
command = "python trainer.py --lr {{lr}} --steps {{max_train_steps}} --mode {{mode}} --sleep {{sleep}}"
max_train_steps = {steps}
objective = {{ metric = "val_loss", mode = "min" }}
trials = {trials}
concurrency = {concurrency}
timeout = {timeout}

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"

[params.mode]
role = "scientific"
values = {modes}

[params.sleep]
role = "fixed"
value = {sleep}
"""


def study_text(name="s", steps=30, trials=2, concurrency=4, timeout=60, modes='["ok"]', sleep=0.0):
    return BASE.format(name=name, steps=steps, trials=trials, concurrency=concurrency,
                       timeout=timeout, modes=modes, sleep=sleep)


def runner_cli(db_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), *args],
                          capture_output=True, text=True, timeout=timeout)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group; an orphaned zombie is already dead."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def lines_in(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.exists() else 0


def test_study_runs_end_to_end_and_every_point_is_stored(make_study, db_path, capsys):
    path = make_study(study_text(trials=3, steps=40))
    assert cli(["--db", str(db_path), "run", str(path), "--cpu-slots", "2"]) == 0
    out = capsys.readouterr()
    assert f"database: {db_path}" in out.err
    assert "[s] 3/3 finished: 3 completed" in out.out
    db = store.connect(db_path)
    study = studies.by_name(db, "s")
    rows = trials.list_for_study(db, study.id)
    assert [t.state.value for t in rows] == ["completed"] * 3
    for t in rows:
        assert metrics.count_points(db, t.id) == 40 * 3  # train_loss, val_loss, grad_norm each step
        assert t.last_step == 39 and t.best_value is not None and t.feasible == 1
        params = json.loads((Path(t.trial_dir) / "params.json").read_text())
        assert params == t.params
    assert not study.active or studies.get(db, study.id).active == 0


def test_failures_are_classified(make_study, db_path):
    path = make_study(study_text(steps=8, trials=1, timeout=3, sleep=0.05,
                                 modes='["crash", "nan", "hang", "segv", "cuda_oom"]'))
    assert cli(["--db", str(db_path), "run", str(path), "--grace", "1"]) == 0
    db = store.connect(db_path)
    study = studies.by_name(db, "s")
    got = {t.params["mode"]: t for t in trials.list_for_study(db, study.id)}
    assert (got["crash"].reason, got["crash"].feasible) == ("exit", 0)
    assert "exit code 3" in got["crash"].detail and "ValueError: bad batch shape" in got["crash"].detail
    assert (got["nan"].reason, got["nan"].feasible) == ("diverged", 0)
    assert (got["hang"].reason, got["hang"].feasible) == ("timeout", None)
    assert (got["segv"].reason, got["segv"].detail) == ("signal", "killed by SIGSEGV")
    assert (got["cuda_oom"].reason, got["cuda_oom"].feasible) == ("oom", 0)
    assert all(t.state.value == "failed" for t in got.values())


def test_parameters_reach_the_script_as_literal_argv(make_study, db_path):
    text = study_text(trials=0) + '\n[[trial]]\nlr = 0.1\nmode = "ok"\n'
    text = text.replace('values = ["ok"]', 'values = ["ok", "1; touch pwned"]')
    text += '\n[[trial]]\nlr = 0.1\nmode = "1; touch pwned"\n'
    path = make_study(text)
    cli(["--db", str(db_path), "run", str(path)])
    db = store.connect(db_path)
    t = trials.list_for_study(db, studies.by_name(db, "s").id)[-1]
    argv = json.loads((Path(t.trial_dir) / "argv.json").read_text())
    assert argv[argv.index("--mode") + 1] == "1; touch pwned"
    assert not (path.parent / "pwned").exists() and not Path("pwned").exists()


def test_runner_sigkill_midway_loses_nothing_and_leaves_nothing_running(make_study, db_path):
    path = make_study(study_text(steps=60, trials=3, concurrency=3, sleep=0.03))
    cmd = [sys.executable, "-m", "runner", "--db", str(db_path), "run", str(path)]
    for _ in range(2):  # kill it twice at different points
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            time.sleep(0.3)
            if db_path.exists():
                db = store.connect(db_path)
                row = metrics.count_points(db)
                db.conn.close()
                if row > 40:
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
    # A fresh runner adopts or settles every trial and finishes the study.
    done = runner_cli(db_path, "run", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    db = store.connect(db_path)
    study = studies.by_name(db, "s")
    rows = trials.list_for_study(db, study.id)
    assert not [t for t in rows if t.state.value in ("running", "starting", "queued")]
    for t in rows:
        written = lines_in(Path(t.trial_dir) / "metrics.jsonl")
        if written:
            assert metrics.count_points(db, t.id) == written * 3, t
    assert all(t.state.value in ("completed", "lost") for t in rows)
    assert sum(t.state.value == "completed" for t in rows) >= 1


def test_stop_escalates_to_sigkill_and_reaches_forked_children(make_study, db_path):
    path = make_study(study_text(steps=5, trials=1, modes='["ignore_term", "hang"]'))
    started = runner_cli(db_path, "run", str(path), "--detach", "--grace", "1")
    assert started.returncode == 0 and "runner started in the background" in started.stdout
    db = store.connect(db_path)
    study = studies.by_name(db, "s")
    deadline = time.time() + 20
    while time.time() < deadline and trials.state_counts(db, study.id).get("running", 0) < 2:
        time.sleep(0.2)
    pids = [t.pid for t in trials.list_for_study(db, study.id)]
    stop = runner_cli(db_path, "stop", "s")
    assert stop.returncode == 0 and "asked runner pid" in stop.stdout
    deadline = time.time() + 20
    while time.time() < deadline and trials.state_counts(db, study.id).get("stopped", 0) < 2:
        time.sleep(0.2)
    assert [t.state.value for t in trials.list_for_study(db, study.id)] == ["stopped", "stopped"]
    for pid in pids:
        assert group_members(pid) == []


def test_stop_without_a_runner_still_stops_the_processes(make_study, db_path):
    path = make_study(study_text(steps=5, trials=1, modes='["hang"]'))
    proc = subprocess.Popen([sys.executable, "-m", "runner", "--db", str(db_path), "run", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = store.connect(db_path)
    deadline = time.time() + 20
    while time.time() < deadline and not db.execute(
            "SELECT 1 FROM trials WHERE state = 'running'").fetchone():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop = runner_cli(db_path, "stop", "s/1", "--grace", "1")
    assert stop.returncode == 0, stop.stderr
    t = trials.list_for_study(db, studies.by_name(db, "s").id)[0]
    assert t.state.value == "stopped"
    assert group_members(t.pid) == []


def test_regex_capture_status_json_and_export(make_study, db_path, capsys, tmp_path):
    text = study_text(trials=1, steps=12, modes='["print"]').replace(
        'objective = { metric = "val_loss", mode = "min" }',
        'objective = { metric = "acc", mode = "max" }\n'
        "metrics = ['step (?P<step>\\d+) loss=(?P<loss>\\S+) acc=(?P<acc>\\S+)']")
    path = make_study(text)
    assert cli(["--db", str(db_path), "run", str(path)]) == 0
    capsys.readouterr()
    assert cli(["--db", str(db_path), "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (trial,) = report["studies"][0]["trials"]
    last_line = (Path(trial["trial_dir"]) / "stdout.log").read_text().splitlines()[-1]
    assert trial["state"] == "completed" and trial["best_step"] == 11  # acc rises every step
    assert last_line.endswith(f"acc={trial['best_value']:.4f}")
    out = tmp_path / "out.csv"
    assert cli(["--db", str(db_path), "export", "s", "--format", "csv", "-o", str(out)]) == 0
    header, row = out.read_text().splitlines()[:2]
    assert "param.lr" in header and "param.mode" in header and ",completed," in row
    assert cli(["--db", str(db_path), "export", "s", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["best_step"] == 11


def test_export_metrics_writes_every_stored_point_long_format(make_study, db_path, tmp_path, capsys):
    path = make_study(study_text(trials=2, steps=7))
    assert cli(["--db", str(db_path), "run", str(path)]) == 0
    db = store.connect(db_path)
    stored = {(t.number, name, step, value) for t in trials.list_for_study(db, 1)
              for _, name, step, value, _ in metrics.points(db, t.id)}
    db.conn.close()
    out = tmp_path / "points.csv"
    assert cli(["--db", str(db_path), "export", "s", "--metrics", "-o", str(out)]) == 0
    header, *lines = out.read_text().splitlines()
    assert header == "study,trial,metric,step,value,wall_time"
    got = {(int(t), m, int(st), float(v)) for _, t, m, st, v, _ in (ln.split(",") for ln in lines)}
    assert got == stored and len(lines) == len(stored) > 2 * 7  # every point, each once
    capsys.readouterr()
    assert cli(["--db", str(db_path), "export", "s", "--metrics", "val_loss", "--format", "json"]) == 0
    points = json.loads(capsys.readouterr().out)
    assert {p["metric"] for p in points} == {"val_loss"}
    assert len(points) == len([x for x in stored if x[1] == "val_loss"])
    assert cli(["--db", str(db_path), "export", "s", "--metrics", "val_loss", "nope"]) == 2
    assert "no stored points of nope; stored metrics: " in capsys.readouterr().err


def test_bad_study_file_fails_before_anything_runs(make_study, db_path, capsys):
    path = make_study(study_text().replace('role = "nuisance"', 'role = "nuisense"'))
    assert cli(["--db", str(db_path), "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "params.lr.role" in err
    assert not db_path.exists() or store.connect(db_path).execute(
        "SELECT COUNT(*) FROM trials").fetchone()[0] == 0


def test_vanished_trials_are_requeued_when_the_study_asks(make_study, db_path):
    text = study_text(steps=40, trials=2, sleep=0.05).replace("timeout = 60", "timeout = 60\nrequeue_lost = true")
    path = make_study(text)
    proc = subprocess.Popen([sys.executable, "-m", "runner", "--db", str(db_path), "run", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = store.connect(db_path)
    deadline = time.time() + 20
    while time.time() < deadline and metrics.count_points(db) < 20:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # the runner dies...
    proc.wait()
    running = [t for t in trials.list_for_study(db, studies.by_name(db, "s").id) if t.pid]
    for t in running:  # ...and so does the machine's view of its trials
        os.killpg(t.pid, signal.SIGKILL)
    time.sleep(0.3)
    done = runner_cli(db_path, "run", str(path))
    assert done.returncode == 0 and "re-queued lost trial" in done.stdout, done.stdout + done.stderr
    rows = trials.list_for_study(db, studies.by_name(db, "s").id)
    assert [t.state.value for t in rows] == ["completed"] * 2
    for t in rows:  # one clean attempt per curve; the killed attempt's files are archived
        assert metrics.count_points(db, t.id) == lines_in(Path(t.trial_dir) / "metrics.jsonl") * 3
    assert any((Path(t.trial_dir) / "attempt-1" / "metrics.jsonl").exists() for t in running)


def test_each_gpu_trial_gets_its_own_device(make_study, db_path):
    """Scheduling against two GPU indices (this machine has no GPU: the indices are given, the
    processes, environment and slot bookkeeping are real)."""
    from runner.service import Runner

    text = study_text(steps=20, trials=4, sleep=0.02).replace("timeout = 60", "timeout = 60\ngpus_per_trial = 1")
    path = make_study(text)
    from runner import launch
    from runner.spec import load

    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(path))
    studies.set_active(db, study.id, True)
    runner = Runner(db_path, gpu_indices=[0, 1], cpu_slots=4, log=lambda m: None)
    runner.start()
    seen_busy = set()
    try:
        def done():
            seen_busy.add(tuple(sorted(g for lt in runner.live.values() for g in lt.slot.gpus)))
            return runner.idle()
        runner.serve(until=done)
    finally:
        runner.close()
    rows = trials.list_for_study(db, study.id)
    envs = [json.loads((Path(t.trial_dir) / "env.json").read_text()) for t in rows]
    assert {e["CUDA_VISIBLE_DEVICES"] for e in envs} == {"0", "1"}
    assert all(t.slot in ("gpu:0", "gpu:1") and t.state.value == "completed" for t in rows)
    # Both GPUs were used at once, and never one GPU by two trials.
    assert (0, 1) in seen_busy and all(len(set(b)) == len(b) for b in seen_busy)
    assert all(e["PLAYBOOK_MAX_TRAIN_STEPS"] == "20" and e["PLAYBOOK_STUDY"] == "s" for e in envs)


def test_added_trials_continue_the_quasi_random_sequence(make_study, db_path, capsys):
    from runner.search import nuisance_samples
    from runner.spec import load

    path = make_study(study_text(trials=2, steps=5, modes='["ok", "crash"]'))
    assert cli(["--db", str(db_path), "run", str(path)]) == 0
    assert cli(["--db", str(db_path), "add-trials", "s", "3"]) == 0
    assert "queued 6 new trial(s)" in capsys.readouterr().out
    assert cli(["--db", str(db_path), "run", str(path)]) == 0  # the same file resumes and runs them
    db = store.connect(db_path)
    rows = trials.list_for_study(db, studies.by_name(db, "s").id)
    assert [t.number for t in rows] == list(range(1, 11)) and all(t.state.is_finished() for t in rows)
    # 5 samples in all, each crossed with both modes, equal to a study planned with 5 from the start
    expected = [v["lr"] for v in nuisance_samples(load(path), 5)]
    assert [t.params["lr"] for t in rows if t.params["mode"] == "ok"] == expected


def test_ctrl_c_stops_the_running_trials_and_the_study(make_study, db_path):
    path = make_study(study_text(steps=5, trials=2, modes='["hang"]'))
    proc = subprocess.Popen([sys.executable, "-m", "runner", "--db", str(db_path), "run", str(path),
                             "--grace", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    db = store.connect(db_path)
    deadline = time.time() + 20
    while time.time() < deadline and not db.execute(
            "SELECT 1 FROM trials WHERE state = 'running'").fetchone():
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted: stopping running trials" in out
    study = studies.by_name(db, "s")
    rows = trials.list_for_study(db, study.id)
    assert {t.state.value for t in rows if t.pid} == {"stopped"}
    assert not studies.get(db, study.id).active
    assert all(group_members(t.pid) == [] for t in rows if t.pid)


def test_halt_on_failure_stops_the_queue_before_the_next_trial_starts(make_study, db_path):
    """A probe of growing sizes: once one fails (here a CUDA OOM), no later trial may start."""
    body = study_text(steps=6, trials=1, concurrency=1, modes='["ok", "cuda_oom", "crash", "nan"]')
    path = make_study(body.replace("timeout = 60", "timeout = 60\nhalt_on_failure = true"))
    assert cli(["--db", str(db_path), "run", str(path)]) == 0
    db = store.connect(db_path)
    got = trials.list_for_study(db, studies.by_name(db, "s").id)
    assert [(t.state.value, t.reason) for t in got] == [
        ("completed", None), ("failed", "oom"), ("stopped", None), ("stopped", None)]
    assert all(t.started_at is None for t in got[2:])  # stopped before they ever ran
    assert got[2].detail == "not run: trial 2 failed (oom)"
