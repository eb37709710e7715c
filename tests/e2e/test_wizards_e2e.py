"""The guided wizards end to end: the real CLI in subprocesses, real trials, a real SQLite file.

The digits sample (sample_studies/digits) trains for 40 steps per trial here (about 2 s on
CPU); the warmup wizard runs the tiny transformer for 20 steps. Stdin is never a tty, so a
wizard that must ask pauses with exit status 3, as it would under cron or nohup.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import store
from runner.cli import main as cli_main
from runner.launch import register
from runner.spec import load
from runner.wizard_cli import drive
from runner.wizards.start import start_warmup
from store import studies
from store import wizards as wizard_store
from tests.sample_copies import small_digits

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "sample_studies" / "tiny_transformer"

PAUSED = 3  # wizard_cli: a question went unanswered
USAGE = 2  # runner.cli.EXIT_USAGE

# The digits sample cut to 40 steps, with two hand-placed trials far apart: trial 1 barely
# learns (lr 0.003: val_error about 0.89 at step 40), trial 2 trains (lr 0.2: about 0.21).
HAND_PLACED = ({"width": 32, "learning_rate": 0.003, "weight_decay": 1e-4},
               {"width": 128, "learning_rate": 0.2, "weight_decay": 1e-4})

# A stand-in training command: exact throughput (1000 examples/s per example in the batch,
# so every doubling doubles it), and CUDA's out-of-memory message above a batch-size limit.
FAKE_TRAIN = """
import sys
import time

from runner.report import Reporter

batch, steps, limit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if batch > limit:
    print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
    sys.exit(1)
report = Reporter()
for step in range(1, steps + 1):
    time.sleep(0.002)
    report.log(step, examples_per_s=1000.0 * batch * (1 + 0.01 * (step % 3)), train_loss=1.0 / step)
"""

PROBE_ARGS = ("--steps", "12", "--skip", "2", "--start", "16", "--cap", "64")


def cli(db_path: Path, *args: str, cwd: Path | None = None, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def as_json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def study_rows(db_path: Path) -> dict[str, dict]:
    return {s["name"]: s for s in as_json(cli(db_path, "status", "--json"))["studies"]}


def by_batch(study: dict) -> dict[int, dict]:
    return {t["params"]["batch_size"]: t for t in study["trials"]}


@pytest.fixture(scope="module")
def digits_db(tmp_path_factory) -> Path:
    """A database holding the two finished trials of the cut-down digits study."""
    folder = tmp_path_factory.mktemp("digits")
    path = small_digits(folder / "dg.toml", name="dg", max_train_steps=40, trials=0, manual=HAND_PLACED)
    db_path = folder / "pb" / "playbook.db"
    run = cli(db_path, "run", str(path), "--cpu-slots", "2")
    assert run.returncode == 0, run.stderr
    assert "[dg] 2/2 finished: 2 completed" in run.stdout
    return db_path


@pytest.mark.timeout(120)
def test_probe_batch_on_the_digits_study_recommends_stores_and_resumes(digits_db):
    first = cli(digits_db, "probe-batch", "dg", *PROBE_ARGS, "--yes")
    assert first.returncode == 0, first.stderr
    table = [line.split() for line in first.stdout.splitlines()]
    assert {int(row[0]) for row in table if len(row) > 2 and row[0].isdigit() and row[1] == "ok"} == {16, 32, 64}
    assert "examples/s" in first.stdout and "recommended batch size" in first.stdout

    shown = as_json(cli(digits_db, "wizards", "dg.probe-batch", "--json"))
    result = shown["result"]
    assert shown["stage"] == "done"
    assert [r["batch_size"] for r in result["rows"]] == [16, 32, 64]
    assert all(r["examples_per_s"] > 0 and r["measured_steps"] == 10 for r in result["rows"])  # 12 - 2 skipped
    assert result["recommended"] in (16, 32, 64)
    assert result["stopped_by"] == "cap"
    assert shown["verdict"] == f"batch size {result['recommended']}"
    assert f"verdict: batch size {result['recommended']}" in first.stdout

    rows = study_rows(digits_db)
    probe = rows["dg.probe-batch.probe"]
    assert sorted(by_batch(probe)) == [16, 32, 64]
    assert {t["state"] for t in probe["trials"]} == {"completed"}
    # The fixed values come from the base study's best trial (trial 2: width 128, lr 0.2).
    best = next(t for t in rows["dg"]["trials"] if t["number"] == rows["dg"]["best_trial"])
    assert all(t["params"]["learning_rate"] == best["params"]["learning_rate"] == 0.2 for t in probe["trials"])
    assert all(t["params"]["width"] == 128 for t in probe["trials"])

    again = cli(digits_db, "probe-batch", "dg", *PROBE_ARGS, "--yes")
    assert again.returncode == 0, again.stderr
    assert "started" not in again.stdout
    assert f"verdict: batch size {result['recommended']}" in again.stdout
    after = study_rows(digits_db)["dg.probe-batch.probe"]
    assert [(t["id"], t["started_at"]) for t in after["trials"]] == [(t["id"], t["started_at"]) for t in probe["trials"]]


@pytest.mark.timeout(60)
def test_probe_stops_at_the_first_size_that_runs_out_of_memory(tmp_path):
    (tmp_path / "fake_train.py").write_text(FAKE_TRAIN)
    db_path = tmp_path / "pb" / "playbook.db"
    command = "python fake_train.py {batch_size} {max_train_steps} 16"
    shown = as_json(cli(db_path, "probe-batch", "--command", command, "--start", "4", "--cap", "64",
                        "--steps", "12", "--skip", "2", "--yes", "--json", cwd=tmp_path))
    result = shown["result"]
    assert result["stopped_by"] == "oom"
    outcomes = {r["batch_size"]: r["outcome"] for r in result["rows"]}
    assert outcomes == {4: "ok", 8: "ok", 16: "ok", 32: "oom"}
    assert result["recommended"] == 16  # every doubling doubled throughput up to the last size that fit
    assert [n["batch_size"] for n in result["not_run"]] == [64]

    probe = by_batch(study_rows(db_path)["probe-batch.probe"])
    assert probe[32]["state"] == "failed" and probe[32]["reason"] == "oom"
    assert probe[64]["state"] == "stopped" and probe[64]["started_at"] is None
    assert probe[64]["detail"] == "not run: trial 4 failed (oom)"  # 4, 8, 16, 32: trial 4

    text = cli(db_path, "wizards", "probe-batch")
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in text.stdout.splitlines()
            if line.split() and line.split()[0].isdigit()}
    assert rows["32"] == ["oom", "-"] and rows["64"] == ["not", "run"]
    assert "verdict: batch size 16" in text.stdout


@pytest.mark.timeout(120)
def test_decide_pauses_for_the_complexity_then_adopts_from_the_stored_seeds(digits_db):
    args = ("decide", "dg/1", "dg/2", "--seeds", "2", "--yes", "--name", "wider")
    paused = cli(digits_db, *args)
    assert paused.returncode == PAUSED, paused.stderr
    assert "paused: How much complexity does the candidate add?" in paused.stderr
    assert "--complexity none|some|'a lot'" in paused.stderr
    rows = study_rows(digits_db)
    for side, width in (("baseline", 32), ("candidate", 128)):
        seeds = rows[f"wider.{side}"]["trials"]
        assert sorted(t["params"]["seed"] for t in seeds) == [1, 2]
        assert {t["state"] for t in seeds} == {"completed"}
        assert {t["params"]["width"] for t in seeds} == {width}
    db = store.connect(digits_db)
    assert wizard_store.get_by_name(db, "wider").verdict is None
    assert wizard_store.current_baseline(db, "dg") is None

    done = cli(digits_db, *args, "--complexity", "none", "--json")
    shown = as_json(done)
    assert "started" not in done.stderr
    result = shown["result"]
    # val_error about 0.89 vs 0.21, each within about 0.01 over seeds: every baseline seed is worse
    # than every candidate seed, so even two seeds a side leave no doubt.
    assert result["verdict"] == "adopt"
    for side in ("baseline", "candidate"):
        stored = sorted(t["best_value"] for t in rows[f"wider.{side}"]["trials"])
        assert len(result[side]["values"]) == 2
        assert sorted(result[side]["values"]) == pytest.approx(stored)
    assert result["candidate"]["mean"] < result["baseline"]["mean"]
    again = study_rows(digits_db)
    assert [t["started_at"] for t in again["wider.candidate"]["trials"]] == \
        [t["started_at"] for t in rows["wider.candidate"]["trials"]]

    baseline = wizard_store.current_baseline(db, "dg")
    assert baseline is not None
    assert baseline.params == next(t["params"] for t in rows["dg"]["trials"] if t["number"] == 2)
    assert baseline.source == "dg/2"
    assert baseline.objective_mean == pytest.approx(result["candidate"]["mean"])
    text = cli(digits_db, "wizards", "wider")
    assert "verdict: adopt: dg/2 vs dg/1" in text.stdout
    assert "recorded as the new baseline of dg" in text.stdout
    shown = study_rows(digits_db)["dg"]["baseline"]  # status --json carries it
    assert shown["source"] == "dg/2" and shown["params"] == baseline.params
    status = cli(digits_db, "status", "dg")
    said = " ".join(status.stdout.split())  # rich wraps long lines at the terminal's width
    assert "baseline: " in said and " from dg/2, mean " in said, status.stdout
    db.conn.close()


def tiny_study(folder: Path) -> Path:
    """The tiny transformer with no trials of its own (the wizard plans them), 100 steps."""
    text = (TINY / "study.toml").read_text()
    text = text.replace("max_train_steps = 200", "max_train_steps = 100").replace("trials = 6 ", "trials = 0 ")
    text = text.replace("[study]\n", f'[study]\nworkdir = "{TINY}"\n', 1)
    path = folder / "tiny.toml"
    path.write_text(text)
    return path


@pytest.mark.timeout(120)
def test_warmup_pauses_after_planning_then_stores_its_lr_sweep(tmp_path):
    db_path = tmp_path / "pb" / "playbook.db"
    registered = cli(db_path, "run", str(tiny_study(tmp_path)))
    assert registered.returncode == 0, registered.stderr
    sweep = ("--low", "0.003", "--high", "0.05", "--points", "3", "--horizon", "20", "--concurrency", "2")

    paused = cli(db_path, "warmup", "tiny-transformer", *sweep)
    assert paused.returncode == PAUSED, paused.stderr
    assert "paused: Run learning-rate sweep without warmup?" in paused.stderr and "--yes" in paused.stderr
    assert "tiny-transformer.warmup.lr-sweep: 3 trial(s) of 20 steps, learning_rate = 0.003, 0.0122, 0.05" \
        in paused.stdout
    assert "tiny-transformer.warmup.lr-sweep" not in study_rows(db_path)  # planned, nothing ran

    # Confirm stage 1 only, then stop at the next question (as a user answering in the TUI would).
    db = store.connect(db_path)
    kind = start_warmup(db, db_path, study="tiny-transformer", low=0.003, high=0.05, points=3, horizon=20,
                        concurrency=2)
    assert kind.wizard.stage == "lr-sweep"
    status = drive(kind, db_path, answer=lambda q, s: "run" if q.key == "confirm:lr-sweep" else None,
                   say=lambda _: None, cpu_slots=2)
    assert status.stage != "lr-sweep"
    db.conn.close()

    shown = as_json(cli(db_path, "wizards", "tiny-transformer.warmup", "--json"))
    stage1 = shown["stages"]["lr-sweep"]
    assert [row["learning_rate"] for row in stage1["rows"]] == [0.003, 0.0122, 0.05]
    assert stage1["lr_star"] in (0.003, 0.0122)  # 0.05 kills this post-LN network without warmup
    assert stage1["rows"][-1]["stability"]["verdict"] != "stable"
    assert stage1["unstable_lr"] == 0.05
    assert set(stage1["trials"]) == {"0.003", "0.0122", "0.05"}
    ran = study_rows(db_path)["tiny-transformer.warmup.lr-sweep"]
    assert len(ran["trials"]) == 3 and all(t["params"]["warmup_steps"] == 0 for t in ran["trials"])
    assert {t["state"] for t in ran["trials"]} <= {"completed", "failed"}


BAD_INPUT = [
    (("probe-batch", "nosuch", "--yes"), "no study named 'nosuch'"),
    (("probe-batch", "dg", "--batch-param", "bs", "--yes"), "has no parameter 'bs' for the batch size"),
    (("probe-batch", "--command", "python fake_train.py 12 16", "--yes"), "add {batch_size} to the command"),
    (("probe-batch", "dg", "--set", "learning_rate", "--yes"), "expected NAME=VALUE"),
    (("probe-batch", "dg", "--set", "lr=0.1", "--yes"), "--set names no parameter of 'dg': lr"),
    (("probe-batch", "--command", "python fake_train.py {batch_size} 12 16", "--set", "lr=1", "--yes"),
     "a --command has no parameter but 'batch_size'"),
    (("decide", "dg/1", "dg/9", "--yes"), "study 'dg' has no trial 9"),
    (("warmup", "nosuch", "--yes"), "no study named 'nosuch'"),
]


def stored(db_path: Path) -> tuple[list[str], list[str]]:
    db = store.connect(db_path)
    try:
        return [s.name for s in studies.list_all(db)], [w.name for w in wizard_store.list_all(db)]
    finally:
        db.conn.close()


def test_bad_input_is_one_clear_line_and_stores_nothing(tmp_path, digits_db, monkeypatch, capsys):
    (tmp_path / "fake_train.py").write_text(FAKE_TRAIN)
    before = stored(digits_db)
    # One through a real process: the message, the exit status, and no traceback.
    r = cli(digits_db, "probe-batch", "dg", "--start", "128", "--cap", "64", "--yes", cwd=tmp_path)
    assert r.returncode == USAGE
    assert r.stderr.splitlines()[1:] == ["error: --start must be >= 1 and <= --cap, got start 128, cap 64"]
    assert r.stdout == ""
    # The rest in this process: an exception escaping main() fails the test as a traceback would.
    monkeypatch.chdir(tmp_path)
    for args, message in BAD_INPUT:
        assert cli_main(["--db", str(digits_db), *args]) == USAGE, args
        err = capsys.readouterr().err.splitlines()
        errors = [line for line in err if not line.startswith("database: ")]
        assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], (args, err)
    assert stored(digits_db) == before


@pytest.mark.timeout(240)
def test_warmup_wizard_finds_the_warmup_that_trains_at_10x_the_unstable_lr(tmp_path):
    """The issue's demonstration, the whole procedure on the sample that dies without warmup."""
    db_path = tmp_path / "pb" / "playbook.db"
    db = store.connect(db_path)
    register(db, db_path, load(Path(__file__).parents[2] / "sample_studies" / "warmup_demo" / "study.toml"))
    db.conn.close()  # registered only: the wizard plans and runs its own trials

    shown = as_json(cli(db_path, "warmup", "warmup-demo", "--low", "0.01", "--high", "1", "--points", "5",
                        "--horizon", "200", "--yes", "--json", timeout=220))
    sweep, at_10x = shown["stages"]["lr-sweep"], shown["stages"]["warmup-10x"]
    assert sweep["lr_star"] == pytest.approx(0.0316, rel=0.01)
    assert sweep["unstable_lr"] == pytest.approx(0.1)
    assert at_10x["base_learning_rate"] == pytest.approx(1.0)
    verdicts = {row["warmup_steps"]: row["stability"]["verdict"] for row in at_10x["rows"]}
    assert verdicts[10] == "unstable"  # too short a ramp: dead as without warmup
    assert at_10x["recommended"] == 100 and verdicts[100] == "stable"
    assert at_10x["clipping"]["threshold"] > 0
    assert shown["verdict"] == "warmup 100 steps trains stably at lr 1 (unstable without: 0.1)"
    assert "warmup-100x" not in shown["stages"]  # the second pass is offered, not run, without --also-100x
