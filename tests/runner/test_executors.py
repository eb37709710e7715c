"""The executor seam: the local executor on real processes, and a runner that only goes through it."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import store
from runner.executors import AttemptRecord, LocalExecutor, TrialStart
from runner.process import TrialPaths
from runner.scheduler import Slot
from runner.service import Runner
from store import studies, trials

WAIT_S = 60.0


def until(condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def start(executor: LocalExecutor, folder: Path, code: str, attempt: int = 1):
    request = TrialStart([sys.executable, "-c", code], TrialPaths(folder), folder.parent, {"x": 1},
                         {"CUDA_VISIBLE_DEVICES": ""}, attempt, Slot())
    return executor.start(request)


def test_local_executor_starts_polls_and_signals_a_trial_and_honours_the_file_contract(tmp_path):
    ex = LocalExecutor([], 2, host="here")
    handle = start(ex, tmp_path / "t1", "import time; print('hi', flush=True); time.sleep(600)")
    assert ex.capacity().cpu_slots == 2 and ex.capacity().gpus == ()
    who = ex.identity(handle)
    assert who is not None and who.pid > 1 and ex.signalable(handle)
    paths = TrialPaths(tmp_path / "t1")
    until(lambda: paths.launch.exists() and "hi" in paths.stdout.read_text(), "the trial's first line")
    assert ex.poll(handle) == (False, None)
    assert paths.params.read_text() == '{"x": 1}\n' and paths.command.exists()
    assert ex.signal(handle, signal.SIGTERM)
    ended = until(lambda: (r := ex.poll(handle))[0] and r, "the trial to end")
    assert ended == (True, -signal.SIGTERM) and paths.exit.exists()
    assert ex.clean_up(handle) == []


def test_a_restarted_runners_executor_adopts_a_running_attempt_and_settles_an_ended_one(tmp_path):
    first = LocalExecutor([], 1, host="here")
    handle = start(first, tmp_path / "t1", "import time; time.sleep(600)")
    paths = TrialPaths(tmp_path / "t1")
    until(lambda: paths.launch.exists(), "the launch record")
    who = first.identity(handle)

    again = LocalExecutor([], 1, host="here")  # a new runner: knows only what the store kept
    found = again.adopt(AttemptRecord(paths, 1, who.pid, who.proc_start, "here"))
    assert found.alive and found.identity.pid == who.pid
    assert again.poll(found.handle) == (False, None)
    again.signal(found.handle, signal.SIGTERM)  # the shim sees its command end, and says so in exit.json
    until(lambda: again.poll(found.handle)[0], "the adopted trial to end")
    handle.popen.wait()  # the first 'runner' is its parent here: reap it as that runner would have

    after = LocalExecutor([], 1, host="here").adopt(AttemptRecord(paths, 1, who.pid, who.proc_start, "here"))
    assert not after.alive and after.started and after.exit["returncode"] == -signal.SIGTERM

    never = LocalExecutor([], 1, host="here").adopt(AttemptRecord(TrialPaths(tmp_path / "t2"), 1, None,
                                                                 None, "here"))
    assert not never.alive and not never.started  # claimed, never launched: can be queued again


def test_an_attempt_on_another_host_is_never_taken_for_alive_nor_killed_from_here(tmp_path):
    ex = LocalExecutor([], 1, host="here")
    handle = start(ex, tmp_path / "t1", "import time; time.sleep(600)")
    paths = TrialPaths(tmp_path / "t1")
    until(lambda: paths.launch.exists(), "the launch record")
    who = ex.identity(handle)
    found = LocalExecutor([], 1, host="here").adopt(AttemptRecord(paths, 1, who.pid, who.proc_start,
                                                                 "elsewhere"))
    assert not found.alive and LocalExecutor([], 1, host="here").clean_up(found.handle) == []
    assert ex.poll(handle) == (False, None)  # still running: nothing was killed
    ex.signal(handle, signal.SIGKILL)
    until(lambda: ex.poll(handle)[0], "the trial to end")


class Recording(LocalExecutor):
    """The local executor, counting what the runner asks of it."""

    def __init__(self) -> None:
        super().__init__([], 2)
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def start(self, request):
        self._count("start")
        return super().start(request)

    def signal(self, handle, sig):
        self._count(signal.Signals(sig).name)
        return super().signal(handle, sig)


STUDY = """
[study]
name = "e"
command = "python trainer.py --lr {lr} --steps {max_train_steps} --mode {mode}"
max_train_steps = 5
objective = { metric = "val_loss", mode = "min" }
trials = 1
timeout = 3

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"

[params.mode]
role = "scientific"
values = ["ok", "hang"]
"""


def test_the_runner_starts_and_stops_trials_only_through_its_executor(make_study, db_path):
    from runner import launch
    from runner.spec import load

    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(STUDY)))
    studies.set_active(db, study.id, True)
    executor = Recording()
    runner = Runner(db_path, log=lambda _: None, executor=executor, grace_s=0.5)
    assert (runner.gpus, runner.cpu_slots) == ([], 2)  # its capacity is the executor's
    runner.start()
    try:
        runner.serve(until=runner.idle)
    finally:
        runner.close()
    rows = {t.params["mode"]: t for t in trials.list_for_study(db, study.id)}
    assert rows["ok"].state.value == "completed" and rows["hang"].state.value == "failed"
    assert rows["hang"].reason == "timeout"
    assert executor.calls["start"] == 2 and executor.calls["SIGTERM"] == 1
