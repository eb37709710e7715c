"""The Ray executor's parts that need no cluster: shipping a rotated log, the study file's
executor fields and cpus_per_trial, an unreachable cluster, Ray left unimported by read-only
commands, the trial screen's header naming the node, why an unplaced trial waits, and a runner
following its executor's changing capacity (tests/cluster/ holds the tests on a real cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.executors.shipping import append, read_stream, stream_position
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
    append(local, b"hello\n", rotate=True)
    assert stream_position(local) == 6
    write_log(local, start=6, current=b"")  # as after a rotation here: the position counts both files
    append(local, b"more\n", rotate=True)
    assert stream_position(local) == 11 and local.read_bytes() == b"more\n"


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


@pytest.mark.parametrize("field, expected", [
    ("cpus_per_trial = 0", "study.cpus_per_trial: expected a number > 0, got 0"),
    ('cpus_per_trial = "two"', "study.cpus_per_trial: expected a number, got 'two'"),
])
def test_a_bad_cpus_per_trial_is_named_with_its_file_and_field(tmp_path, field, expected):
    path = tmp_path / "study.toml"
    path.write_text(STUDY + field + "\n" + PARAMS)
    with pytest.raises(SpecError) as raised:
        load(path)
    assert expected in str(raised.value) and "study.toml" in str(raised.value)
    path.write_text(STUDY + "cpus_per_trial = 2.5\n" + PARAMS)
    assert load(path).cpus_per_trial == 2.5
    path.write_text(STUDY + PARAMS)
    assert load(path).cpus_per_trial == 1


def test_cpu_trials_take_their_studys_cpus_per_trial_of_the_cpu_slots():
    from runner.scheduler import Waiting, plan

    queue = [Waiting(1, 1, 0, 8, cpus=2), Waiting(2, 1, 0, 8, cpus=2), Waiting(3, 2, 0, 8)]
    done = plan(queue, all_gpus=[], busy_gpus=set(), cpu_slots=4, busy_cpu=1, running_per_study={})
    assert [launch.trial_id for launch in done.launches] == [1, 3]  # 2 + 1 of the 3 free
    assert done.waiting == {2: "waiting: needs 2 CPU slots free, 1 of 4 are"}  # after trial 1
    # More than there is at all: impossible on a machine, a wait for a node on a cluster that can grow.
    big = [Waiting(4, 1, 0, 8, cpus=6)]
    fixed = plan(big, all_gpus=[], busy_gpus=set(), cpu_slots=4, busy_cpu=0, running_per_study={})
    assert fixed.impossible == [(4, "asks for 6 CPU slots (cpus_per_trial); this machine has 4")]
    grows = plan(big, all_gpus=[], busy_gpus=set(), cpu_slots=4, busy_cpu=0, running_per_study={}, can_grow=True)
    assert grows.impossible == [] and grows.waiting == {
        4: "waiting for a node: asks for 6 CPUs (cpus_per_trial); the cluster has 4"}


def test_why_ray_has_not_placed_an_actor_names_what_it_asks_and_what_the_nodes_have():
    from runner.executors.ray import why_unplaced

    nodes = [{"CPU": 2.0, "node:a": 1.0}, {"CPU": 2.0, "GPU": 1.0}]
    assert why_unplaced({"CPU": 3, "GPU": 0}, nodes) == (
        "waiting for a node: it asks for 3 CPUs, no Ray node has that much (the largest has 2 CPUs); "
        "add a node, or lower cpus_per_trial / gpus_per_trial")
    assert why_unplaced({"CPU": 1, "GPU": 2}, nodes).startswith(
        "waiting for a node: it asks for 1 CPU and 2 GPUs, no Ray node has that much (the largest has 2 CPUs and 1 GPU)")
    assert why_unplaced({"CPU": 2, "GPU": 0}, nodes) == (
        "waiting for a node: it asks for 2 CPUs; the Ray nodes that could hold it have none free now")


SLEEPER = """
[study]
name = "grow"
command = "python -c 'import time; time.sleep(120)' {x}"
max_train_steps = 5
objective = { metric = "loss", mode = "min" }
trials = 1
concurrency = 8
gpus_per_trial = 1

[params.x]
role = "scientific"
values = [1, 2, 3]
"""


def test_the_runner_follows_its_executors_capacity_and_never_hands_out_a_held_slot_twice(make_study, db_path):
    """A cluster's GPUs as nodes join and die: new slots are used at once, trials on slots that went
    keep them, and a slot that comes back while a trial holds it is not given to another."""
    from runner import launch
    from runner.executors import Capacity, LocalExecutor
    from runner.service import Runner
    from store import connect, studies, trials

    class Cluster(LocalExecutor):  # real trial processes; only the slot list is the test's to set
        def __init__(self) -> None:
            super().__init__([], 1)
            self.now = Capacity((0,), 1, can_grow=True)

        def capacity(self) -> Capacity:
            return self.now

    db = connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(SLEEPER)))
    studies.set_active(db, study.id, True)
    cluster, said = Cluster(), []
    runner = Runner(db_path, log=said.append, executor=cluster, grace_s=0.2, gpu_indices=[])

    def slots() -> dict[int, str]:
        return {t.number: t.slot for t in trials.list_for_study(db, study.id) if t.state.value == "running"}

    runner.start()
    try:
        runner.run_pass()
        assert slots() == {1: "gpu:0"}
        cluster.now = Capacity((0, 1), 1, can_grow=True)  # a node with one more GPU joined
        runner.run_pass()
        assert slots() == {1: "gpu:0", 2: "gpu:1"}
        cluster.now = Capacity((0,), 1, can_grow=True)  # a node went: no new trial, none moved
        runner.run_pass()
        assert slots() == {1: "gpu:0", 2: "gpu:1"}
        (waiting,) = [t for t in trials.list_for_study(db, study.id) if t.state.value == "queued"]
        assert waiting.detail == "waiting: all 1 GPU slot in use"
        cluster.now = Capacity((0, 1, 2), 1, can_grow=True)  # slot 1 is back, and still trial 2's
        runner.run_pass()
        assert slots() == {1: "gpu:0", 2: "gpu:1", 3: "gpu:2"}
        assert "local capacity now 1 CPU slot(s), 2 GPU slot(s) (was 1, 1)" in said
    finally:
        runner.stop_all()
        runner.serve(until=lambda: not runner.live)
        runner.close()
