"""The Ray executor's parts that need no cluster: shipping a rotated log, the study file's
executor fields, an unreachable cluster, Ray left unimported by read-only commands, and the
trial screen's header naming the node (tests/cluster/ holds the tests on a real cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.executors.ray import _append, _stream_position
from runner.executors.ray_actor import read_stream
from runner.spec import SpecError, load

REPO = Path(__file__).resolve().parents[2]

STUDY = """\
[study]
name = "r"
command = "python -c pass --lr {lr}"
max_train_steps = 5
objective = { metric = "val_loss", mode = "min" }
trials = 1
"""
PARAMS = """
[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"
"""


def write_log(path: Path, start: int, current: bytes, previous: bytes | None = None) -> None:
    """A log as the shim leaves it after a rotation: LOG.1, LOG from stream position `start`."""
    path.write_bytes(current)
    Path(f"{path}.start").write_text(f"{start}\n")
    if previous is not None:
        Path(f"{path}.1").write_bytes(previous)


def test_a_rotated_log_is_shipped_from_where_the_runner_stopped_across_the_rotation(tmp_path):
    node = tmp_path / "node.log"
    write_log(node, start=10, current=b"klmnop\n", previous=b"abcdefghij")  # stream: abcdefghijklmnop\n
    assert read_stream(node, 4, limit=100) == (4, b"efghij", True)  # the rest of LOG.1 first
    assert read_stream(node, 10, limit=3) == (10, b"klm", True)
    assert read_stream(node, 13, limit=100) == (13, b"nop\n", False)
    # Two rotations behind: what is gone is skipped, and the caller learns where the bytes begin.
    write_log(node, start=30, current=b"xyz\n", previous=b"0123456789")
    assert read_stream(node, 4, limit=100) == (20, b"0123456789", True)


def test_the_runners_copy_of_a_log_resumes_at_its_stream_position_after_its_own_rotation(tmp_path):
    local = tmp_path / "stdout.log"
    _append(local, b"hello\n", rotate=True)
    assert _stream_position(local) == 6
    write_log(local, start=6, current=b"")  # as after a rotation here: the position counts both files
    _append(local, b"more\n", rotate=True)
    assert _stream_position(local) == 11 and local.read_bytes() == b"more\n"


@pytest.mark.parametrize("fields, expected", [
    ('executor = "slurm"', "study.executor: expected one of local, ray, got 'slurm'"),
    ('ray_address = "10.0.0.1:6379"', 'study.ray_address: only used with executor = "ray"'),
    ("executor = 3", "study.executor: expected a non-empty string, got 3"),
])
def test_a_bad_executor_in_a_study_file_is_named_with_its_file_and_field(tmp_path, fields, expected):
    path = tmp_path / "study.toml"
    path.write_text(STUDY + fields + "\n" + PARAMS)
    with pytest.raises(SpecError) as raised:
        load(path)
    assert expected in str(raised.value) and "study.toml" in str(raised.value)


def test_the_study_file_chooses_ray_and_its_cluster(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY + 'executor = "ray"\nray_address = "10.0.0.1:6379"\n' + PARAMS)
    spec = load(path)
    assert (spec.executor, spec.ray_address) == ("ray", "10.0.0.1:6379")
    path.write_text(STUDY + PARAMS)
    assert load(path).executor == "local"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys, runner.cli; sys.exit(runner.cli.main())", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"})


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_run_against_an_unreachable_cluster_fails_at_once_with_one_clear_line(tmp_path):
    (tmp_path / "study.toml").write_text(STUDY + PARAMS)
    address = f"127.0.0.1:{free_port()}"
    done = run_cli("--db", str(tmp_path / "pb.db"), "run", "study.toml", "--executor", "ray",
                   "--address", address, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot reach the Ray cluster at {address}" in errors[0], done.stderr


def test_read_only_commands_do_not_import_ray(tmp_path):
    (tmp_path / "study.toml").write_text(STUDY + 'executor = "ray"\n' + PARAMS)
    db = tmp_path / "pb.db"
    script = textwrap.dedent(f"""
        import json, sys
        from runner.cli import main
        from runner.launch import register
        from runner.spec import load
        from store import connect
        register(connect({str(db)!r}), {str(db)!r}, load({str(tmp_path / "study.toml")!r}))
        before = "ray" in sys.modules
        code = main(["--db", {str(db)!r}, "status", "r", "--json"])
        print(json.dumps({{"code": code, "ray": before or "ray" in sys.modules}}), file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"code": 0, "ray": False}, done.stderr


def test_the_trial_screen_header_says_which_node_and_cards_run_the_trial(tmp_path):
    from tui.data.trial_data import TrialDetail
    from tui.screens.trial import title_text

    (tmp_path / "placement.json").write_text(json.dumps({
        "executor": "ray", "node_id": "0123456789abcdef", "ip": "10.0.0.7", "host": "gpu-box-2",
        "gpus": ["0", "1"]}))
    detail = TrialDetail(
        id=1, study_id=1, number=3, state="running", reason=None, detail=None, feasible=None, params={},
        roles={}, argv=(), cwd=None, slot="gpu0,1", host="runner-box", pid=None, exit_code=None,
        started_at=None, ended_at=None, last_step=None, best_value=None, best_step=None,
        trial_dir=str(tmp_path))
    assert "ray node 01234567 (10.0.0.7, gpu-box-2), GPU 0,1" in title_text(detail, None).plain
    (tmp_path / "placement.json").unlink()
    assert "ray node" not in title_text(detail, None).plain


def test_a_local_runner_refuses_a_database_whose_trials_run_on_a_ray_cluster(tmp_path):
    """It would find no process of theirs on this machine and take them for lost."""
    from runner.launch import register
    from store import connect, trials

    (tmp_path / "study.toml").write_text(STUDY + PARAMS)
    db_path = tmp_path / "pb.db"
    db = connect(db_path)
    register(db, db_path, load(tmp_path / "study.toml"))
    (trial,) = trials.list_for_study(db, 1)
    assert trials.claim(db, trial.id, "cpu", "runner-box")
    trials.mark_running(db, trial.id, 4242, "1")
    folder = Path(trials.get(db, trial.id).trial_dir)
    folder.mkdir(parents=True)
    (folder / "placement.json").write_text(json.dumps({"executor": "ray", "attempt": 1, "node_id": "ab12"}))
    done = run_cli("--db", str(db_path), "serve", "--until-idle", "--executor", "local", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "1 running trial(s) of this database run on a Ray cluster" in done.stderr
    assert trials.get(db, trial.id).state.value == "running"  # not lost, not touched
