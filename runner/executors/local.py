"""Trials as processes on this machine, under the shim (see runner.process for the attempt marks)."""

from __future__ import annotations

import signal
import socket
import subprocess
from dataclasses import dataclass

from runner import process
from runner.executors.base import Adopted, AttemptRecord, Capacity, Identity, TrialStart
from runner.process import TrialPaths


@dataclass
class LocalHandle:
    """One attempt on this machine: its shim's pid (also its process group), 0 until known."""

    paths: TrialPaths
    attempt: int
    pid: int
    proc_start: str | None
    popen: subprocess.Popen | None  # None when adopted from a previous runner
    here: bool = True  # False: started on another machine, whose processes cannot be seen from here


class LocalExecutor:
    name = "local"

    def __init__(self, gpus: list[int], cpu_slots: int, host: str | None = None) -> None:
        self._capacity = Capacity(tuple(gpus), cpu_slots)
        self.host = host or socket.gethostname()

    def capacity(self) -> Capacity:
        return self._capacity

    def start(self, request: TrialStart) -> LocalHandle:
        popen = process.spawn(request.argv, paths=request.paths, cwd=request.cwd, params=request.params,
                              extra_env=request.env, attempt=request.attempt)
        if request.gpus:  # which cards, by UUID and name: slot numbers alone are not the card
            process.write_placement(request.paths, {
                "executor": self.name, "host": self.host, "attempt": request.attempt,
                "gpus": [{"index": g.index, "uuid": g.uuid, "name": g.name,
                          **({"mig": g.mig, "parent_uuid": g.parent_uuid} if g.mig is not None else {})}
                         for g in request.gpus]})
        return LocalHandle(request.paths, request.attempt, popen.pid, process.start_time(popen.pid), popen)

    def identity(self, handle: LocalHandle) -> Identity | None:
        return Identity(handle.pid, handle.proc_start) if handle.pid else None

    def resolve(self, handle: LocalHandle) -> Identity | None:
        if handle.pid or handle.popen is not None:
            return None
        launched = process.read_launch(handle.paths, handle.attempt)
        if launched is None:
            return None
        handle.pid, handle.proc_start = launched["pid"], launched.get("proc_start")
        return Identity(handle.pid, handle.proc_start, launched.get("started_at"))

    def poll(self, handle: LocalHandle) -> tuple[bool, int | None]:
        if handle.popen is not None:
            if handle.popen.poll() is None:
                return False, None
        elif self._alive_unowned(handle):
            return False, None
        record = process.read_exit(handle.paths, handle.attempt)
        if record is not None:
            return True, record.get("returncode")
        return True, handle.popen.returncode if handle.popen is not None else None

    @staticmethod
    def _alive_unowned(handle: LocalHandle) -> bool:
        """Alive, for an attempt this runner did not start (its shim holds the trial's lock; one
        launched before the lock existed is asked by pid)."""
        return process.attempt_alive(handle.paths) or process.is_alive(handle.pid, handle.proc_start)

    def exit_fd(self, handle: LocalHandle) -> int | None:
        """A descriptor readable once the attempt's shim has exited, for the runner to wait on
        (the caller closes it); None where there is none (pid not known yet, another machine)."""
        return process.exit_fd(handle.pid) if handle.here and handle.pid else None

    def signalable(self, handle: LocalHandle) -> bool:
        return bool(handle.pid)  # no pid: signalled once its launch record is read

    def signal(self, handle: LocalHandle, sig: int) -> bool:
        return process.signal_group(handle.pid, sig)

    def clean_up(self, handle: LocalHandle) -> list[int]:
        """SIGKILL what is left of an ended or lost attempt (a command whose shim was killed,
        forked workers): it must not write on, least of all into a re-run's files."""
        if not handle.here:
            return []
        if handle.popen is not None:  # our child, just reaped: its whole group is the attempt's
            process.signal_group(handle.pid, signal.SIGKILL)
            return []
        record = process.read_launch(handle.paths, handle.attempt) or {"pgid": handle.pid, "attempt": None}
        return process.kill_attempt(record, handle.paths)

    def adopt(self, record: AttemptRecord) -> Adopted:
        here = record.host == self.host  # another machine's processes cannot be checked from here
        launched = process.read_launch(record.paths, record.attempt)
        identity = (Identity(launched["pid"], launched.get("proc_start"), launched.get("started_at"))
                    if launched is not None else None)
        pid = record.pid or (identity.pid if identity else 0)
        proc_start = record.proc_start if record.pid else (identity.proc_start if identity else None)
        handle = LocalHandle(record.paths, record.attempt, pid, proc_start, None, here)
        if here and (process.attempt_alive(record.paths) or process.is_alive(record.pid, record.proc_start)):
            return Adopted(handle, alive=True, started=True, exit=None, identity=identity)
        ended = process.read_exit(record.paths, record.attempt)
        started = launched is not None or record.pid is not None or ended is not None
        return Adopted(handle, alive=False, started=started, exit=ended, identity=identity)

    def lost(self, handle: LocalHandle) -> str | None:
        return None  # this machine is the runner's: a shim killed here ends as failed, by its signal

    def oom_kills(self) -> int | None:
        return process.host_oom_kills()

