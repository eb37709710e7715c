"""Study files that validated on older versions and then broke planning or every trial: each is now
one line (exit 2) naming the file, the field and the bound, and nothing is stored."""

from __future__ import annotations

import json
import resource
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from fault_helpers import ROOT, read_db, run_cli, runner_argv, study_trials

from runner.limits import MAX_NAME_CHARS, MAX_PLANNED_TRIALS
from runner.spec import SpecError, load
from store import studies

MEMORY_LIMIT = 3 * 2**30  # bytes of address space: a runaway plan fails fast instead of swapping the box

ARGV_SCRIPT = """
import json, os, sys
with open(os.path.join(os.environ["PLAYBOOK_TRIAL_DIR"], "argv.json"), "w") as f:
    json.dump(sys.argv[1:], f)
with open(os.environ["PLAYBOOK_METRICS_FILE"], "a") as f:  # its objective: a clean exit without one fails
    f.write('{"step": 1, "m": {"x": 0.5}}\\n')
"""


def study_toml(folder: Path, body: str, *, name: str = "sf", command: str = "python argv.py --lr {lr}",
               trials: int = 1) -> Path:
    """A study running argv.py (which writes its argv to argv.json) with `body` appended."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "argv.py").write_text(ARGV_SCRIPT)
    path = folder / "study.toml"
    path.write_text(
        f"[study]\nname = {json.dumps(name)}\ncommand = {json.dumps(command)}\nmax_train_steps = 1\n"
        f'objective = {{ metric = "x", mode = "min" }}\ntrials = {trials}\nconcurrency = 4\n{body}')
    return path


LR = '[params.lr]\nrole = "nuisance"\nlow = 0.001\nhigh = 0.1\nscale = "log"\n'


def limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(db_path: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """The real CLI with its memory capped, so a plan that would exhaust it fails instead."""
    return subprocess.run(runner_argv(db_path, *args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, preexec_fn=limited_memory)


def assert_rejected(result: subprocess.CompletedProcess, path: Path, *fragments: str) -> str:
    """Exit 2, no traceback, one `error:` line naming the file, a problem line holding every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.stderr
    assert any(all(f in line for f in fragments) for line in result.stderr.splitlines()), result.stderr
    return result.stderr


def no_study_stored(db_path: Path, name: str = "sf") -> bool:
    return read_db(db_path, lambda db: studies.by_name(db, name)) is None


@pytest.mark.timeout(120)
def test_a_conditional_flag_drop_keeps_a_negative_neighbour(tmp_path, db_path):
    body = (
        '[params.optimizer]\nrole = "nuisance"\nvalues = ["sgd", "adam"]\nin_command = false\n'
        '[params.shift]\nrole = "nuisance"\nvalues = [-1, 2]\n'
        '[params.beta2]\nrole = "nuisance"\nlow = 0.9\nhigh = 0.999\nwhen = { optimizer = "adam" }\n'
        '[[trial]]\noptimizer = "sgd"\nshift = -1\n'
        '[[trial]]\noptimizer = "sgd"\nshift = 2\n'
        '[[trial]]\noptimizer = "adam"\nshift = -1\nbeta2 = 0.99\n'
    )
    path = study_toml(tmp_path / "study", body, trials=0,
                      command="python argv.py --shift {shift} --beta2={beta2} --out {trial_dir}")
    done = run_cli(db_path, "run", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    argvs = [(t.params, json.loads((Path(t.trial_dir) / "argv.json").read_text()), t.trial_dir)
             for t in study_trials(db_path, "sf")]
    assert [argv for _, argv, _ in argvs] == [
        ["--shift", "-1", "--out", argvs[0][2]],
        ["--shift", "2", "--out", argvs[1][2]],
        ["--shift", "-1", "--beta2=0.99", "--out", argvs[2][2]],
    ]


def test_a_binary_study_file_is_one_line(tmp_path, db_path):
    path = tmp_path / "study.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    stderr = assert_rejected(run_cli(db_path, "run", str(path)), path, "not UTF-8 text")
    assert "byte 0x89 at offset 0" in stderr
    assert no_study_stored(db_path)


HUGE_ASKS = [
    ("a billion trials", LR, {"trials": 10**9}, ("study.trials", "at most 10,000")),
    ("a billion grid points", LR + '[params.width]\nrole = "scientific"\nlow = 1\nhigh = 100\n'
     "points = 1000000000\n", {"command": "python argv.py --lr {lr} --width {width}"},
     ("params.width.points", "at most 1,000")),
    ("a format width of 10^11", LR, {"command": "python argv.py --lr {lr:>99999999999}"},
     ("study.command", "{lr:>99999999999}", "width or precision of 99,999,999,999", "at most 1,000")),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label,body,options,fragments", HUGE_ASKS, ids=[c[0] for c in HUGE_ASKS])
def test_huge_asks_are_refused_at_validation(tmp_path, db_path, label, body, options, fragments):
    path = study_toml(tmp_path / "study", body, **options)
    assert_rejected(run_limited(db_path, "run", str(path)), path, *fragments)
    assert no_study_stored(db_path)


def grid_of(values: int, trials: int, folder: Path) -> Path:
    body = LR + f'[params.width]\nrole = "scientific"\nvalues = {list(range(values))}\n'
    return study_toml(folder, body, trials=trials, command="python argv.py --lr {lr} --width {width}")


@pytest.mark.timeout(120)
def test_3000_values_by_3000_trials_is_refused_with_the_bound_named(tmp_path, db_path):
    path = grid_of(3000, 3000, tmp_path / "study")
    started = time.perf_counter()
    with pytest.raises(SpecError) as err:
        load(path)
    elapsed = time.perf_counter() - started
    print(f"3,000 values x 3,000 trials rejected in {elapsed:.3f} s (in process)")
    assert any("9,000,000 trials" in p and f"at most {MAX_PLANNED_TRIALS:,}" in p for p in err.value.problems)
    # The real CLI, its memory capped: refused in one line, not planned.
    assert_rejected(run_limited(db_path, "run", str(path)), path, "study.trials", "9,000,000 trials",
                    "MAX_PLANNED_TRIALS")
    assert no_study_stored(db_path)


@pytest.mark.timeout(120)
def test_a_planning_failure_stores_nothing_and_the_fixed_file_runs(tmp_path, db_path):
    folder = tmp_path / "study"
    broken = study_toml(folder, LR, trials=2, command="python argv.py --lr {lr:d}")  # 'd' takes no float
    assert_rejected(run_cli(db_path, "run", str(broken)), broken, "study.command", "{lr:d}",
                    "cannot be filled with lr = 0.001")
    assert no_study_stored(db_path)
    fixed = study_toml(folder, LR, trials=2, command="python argv.py --lr {lr:.3g}")
    done = run_cli(db_path, "run", str(fixed))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [t.state.value for t in study_trials(db_path, "sf")] == ["completed"] * 2


@pytest.mark.timeout(60)
def test_a_300_character_name_is_refused_with_the_limit(tmp_path, db_path):
    path = study_toml(tmp_path / "study", LR, name="n" * 300)
    assert_rejected(run_cli(db_path, "run", str(path)), path, "study.name", "300 characters",
                    f"at most {MAX_NAME_CHARS}")
    assert no_study_stored(db_path, "n" * 300)
    ok = study_toml(tmp_path / "study", LR, name="n" * MAX_NAME_CHARS)
    done = run_cli(db_path, "run", str(ok))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [t.state.value for t in study_trials(db_path, "n" * MAX_NAME_CHARS)] == ["completed"]


@pytest.mark.timeout(120)
def test_more_gpus_than_the_machine_has_fails_with_the_count_not_on_cpu(tmp_path, db_path):
    path = study_toml(tmp_path / "study", "gpus_per_trial = 999\n" + LR, trials=2)
    done = run_cli(db_path, "run", str(path))
    assert done.returncode == 0, done.stdout + done.stderr  # failures are results; nothing queued is left
    rows = study_trials(db_path, "sf")
    assert [(t.state.value, t.reason) for t in rows] == [("failed", "config")] * 2
    assert all(t.detail.startswith("asks for 999 GPUs; this machine has ") for t in rows), rows[0].detail
    assert not any((Path(t.trial_dir) / "argv.json").exists() for t in rows)  # never launched


@pytest.mark.timeout(120)
def test_printed_hints_survive_paths_with_spaces_and_quotes(tmp_path):
    """A hint is a command to paste into a shell: it must split back into the same paths."""
    db_path = tmp_path / "my runs" / "it's.db"
    path = study_toml(tmp_path / "study dir; rm -rf x", LR, trials=1)
    assert run_cli(db_path, "run", str(path)).returncode == 0
    added = run_cli(db_path, "add-trials", "sf", "1")
    assert added.returncode == 0, added.stderr
    hint = added.stdout.strip().split("run them with: ", 1)[1]
    assert shlex.split(hint) == ["playbook-runner", "--db", str(db_path), "run", str(path.resolve())]
