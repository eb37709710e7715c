"""Trial processes: the files of a trial, spawning without a shell, liveness, signals.

One launch of a trial is an attempt (the store's `attempt` counter, raised by every claim). An
attempt is known by three marks in the trial folder, so any runner, at any time, can tell
"never started" from "started and alive" from "started and ended":

- `attempt.lock`: the runner takes an exclusive flock on it before it forks the shim, and the shim
  inherits it (the command does not). It is held from the fork to the shim's exit, whatever
  kills the runner in between: held means alive, free means nothing of the shim is left.
- `launch.json`: the shim's identity (attempt, pid, process start time, process group), written by
  the shim before it starts the command.
- `exit.json`: how the command ended, written by the shim last.

Every process of an attempt carries PLAYBOOK_TRIAL_DIR and PLAYBOOK_TRIAL_ATTEMPT in its
environment: what is left of an attempt (a command whose shim was killed, a forked worker) is
found by its process group and confirmed by that environment, so a process group id reused by
an unrelated program after a reboot is never killed.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TRIAL_DIR_ENV = "PLAYBOOK_TRIAL_DIR"
ATTEMPT_ENV = "PLAYBOOK_TRIAL_ATTEMPT"
# The shim by its path, isolated (-I: no script folder or cwd on sys.path, no PYTHON* variables) and
# without site (-S): it needs only the standard library, so it starts in a third of the time, and a
# module in the study folder named like one it imports (json.py, resource.py) cannot shadow it.
SHIM = ("-I", "-S", str(Path(__file__).with_name("shim.py")))
PREVIOUS_ATTEMPT_WAIT_S = 10.0  # how long a re-run waits for the SIGKILLed previous attempt to go


@dataclass(frozen=True)
class TrialPaths:
    """Every file of one trial, in its own folder."""

    root: Path

    @property
    def params(self) -> Path:
        return self.root / "params.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def stdout(self) -> Path:
        return self.root / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.root / "stderr.log"

    @property
    def exit(self) -> Path:
        return self.root / "exit.json"

    @property
    def command(self) -> Path:
        return self.root / "command.json"

    @property
    def launch(self) -> Path:
        return self.root / "launch.json"

    @property
    def lock(self) -> Path:
        return self.root / "attempt.lock"

    @property
    def placement(self) -> Path:
        return self.root / "placement.json"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _archive_previous_attempt(paths: TrialPaths) -> None:
    """A requeued trial starts clean; the earlier attempt's files move to attempt-N/.

    Called once nothing of the earlier attempt is alive (see _end_previous_attempt): a live
    Reporter reopens metrics.jsonl by name, and would write into the new attempt's file.
    """
    logs = [paths.stdout, paths.stderr]
    rotated = [log.with_name(log.name + suffix) for log in logs for suffix in (".1", ".start")]
    marks = (paths.exit, paths.launch, paths.placement)
    leftovers = [p for p in (paths.metrics, *logs, *rotated, *marks) if p.exists()]
    if not leftovers:
        return
    n = 1
    while (paths.root / f"attempt-{n}").exists():
        n += 1
    archive = paths.root / f"attempt-{n}"
    archive.mkdir()
    for p in leftovers:
        os.replace(p, archive / p.name)


def _try_lock(fd: int) -> bool:
    """True once we hold the lock, or where the filesystem has no flock (then the pid alone tells)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass  # e.g. ENOLCK on a filesystem without locks: launching matters more than this mark
    return True


def _end_previous_attempt(paths: TrialPaths, lock_fd: int) -> None:
    """Take the trial's lock for a new attempt, once nothing of an earlier attempt is alive.

    A trial is never run twice at once: a shim still holding the lock, or a command that outlived
    its shim, is SIGKILLed and waited for. Raises OSError if it will not die (a process stuck in
    the kernel); the caller then does not launch. A first attempt costs one flock and one stat.
    """
    deadline = time.monotonic() + PREVIOUS_ATTEMPT_WAIT_S
    while not _try_lock(lock_fd):
        # Its shim is alive: a launch record comes within moments of its start.
        if (previous := read_launch(paths)) is not None:
            kill_attempt(previous, paths)
        if time.monotonic() > deadline:
            raise OSError("the previous attempt of this trial is still running and did not end on SIGKILL")
        time.sleep(0.05)
    previous = read_launch(paths)
    if previous is None:
        return
    deadline = time.monotonic() + PREVIOUS_ATTEMPT_WAIT_S
    while kill_attempt(previous, paths):
        if time.monotonic() > deadline:
            raise OSError(f"processes of the previous attempt of this trial (group {previous.get('pgid')}) "
                          "did not end on SIGKILL")
        time.sleep(0.05)


def spawn(
    argv: list[str],
    *,
    paths: TrialPaths,
    cwd: Path,
    params: dict,
    extra_env: dict[str, str],
    attempt: int = 1,
) -> subprocess.Popen:
    """Start attempt `attempt` of a trial under the shim, in a new session, stdout/stderr to its logs.

    The argv list goes to exec as is: no shell ever sees a parameter value. Raises OSError if
    the shim cannot start or an earlier attempt of the trial cannot be ended.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _end_previous_attempt(paths, lock_fd)
        _archive_previous_attempt(paths)
        params_json = json.dumps(params, sort_keys=True)
        _write_atomic(paths.params, params_json + "\n")
        _write_atomic(paths.command, json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n")
        env = {
            **os.environ,
            **extra_env,
            "PLAYBOOK_PARAMS": params_json,
            TRIAL_DIR_ENV: str(paths.root),
            ATTEMPT_ENV: str(attempt),
            "PLAYBOOK_METRICS_FILE": str(paths.metrics),
            "PYTHONUNBUFFERED": "1",  # prints reach stdout.log (and regex capture) as they happen
        }
        with open(paths.stdout, "ab") as out, open(paths.stderr, "ab") as err:
            # The shim inherits the locked descriptor: the lock lives as long as the shim does.
            return subprocess.Popen(
                [sys.executable, *SHIM, "--launch", str(paths.launch), str(paths.exit),
                 str(paths.stdout), str(paths.stderr), "--", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=(lock_fd,),
            )
    finally:
        os.close(lock_fd)  # the runner's copy: the shim's keeps the lock


def attempt_alive(paths: TrialPaths) -> bool:
    """Whether the shim of the trial's latest attempt is still running (it holds the lock).

    False for a trial launched before the lock existed: ask is_alive with its pid too.
    """
    try:
        fd = os.open(paths.lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no locks on this filesystem
    finally:
        os.close(fd)  # drops the shared lock we may have taken
    return False


def read_launch(paths: TrialPaths, attempt: int | None = None) -> dict | None:
    """The shim's launch record (of attempt `attempt` only, when given)."""
    record = _read_json(paths.launch)
    if record is None or (attempt is not None and record.get("attempt") != attempt):
        return None
    return record


def attempt_processes(pgid: int | None, trial_dir: Path, attempt: int | None) -> list[int]:
    """Live processes of one attempt: in process group `pgid`, with the attempt's environment.

    Scans /proc (a few ms): for recovery and re-runs, never for an ordinary launch.
    """
    if not pgid or pgid <= 1:
        return []
    marks = [f"\0{TRIAL_DIR_ENV}={trial_dir}\0".encode()]
    if attempt is not None:
        marks.append(f"\0{ATTEMPT_ENV}={attempt}\0".encode())
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            environ = b"\0" + Path(entry.path, "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if all(mark in environ for mark in marks):
            found.append(int(entry.name))
    return found


def pids_in_groups(pgids: set[int]) -> dict[int, set[int]]:
    """The live processes of each process group in `pgids` (one /proc scan for them all)."""
    found: dict[int, set[int]] = {g: set() for g in pgids}
    if not found:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            pgid = int(fields[2])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if pgid in found and fields[0] != "Z":
            found[pgid].add(int(entry.name))
    return found


def kill_attempt(launch_record: dict, paths: TrialPaths) -> list[int]:
    """SIGKILL whatever is left of the attempt `launch_record` describes; returns the pids signalled."""
    pids = attempt_processes(launch_record.get("pgid"), paths.root, launch_record.get("attempt"))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return pids


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def is_alive(pid: int | None, recorded_start: str | None) -> bool:
    """Whether the process we started is still there (and not a new one with its pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    current = start_time(pid)
    if current is not None and recorded_start is not None and current != recorded_start:
        return False
    # A zombie that is not our child (adopted shim already exited) counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return current is None and recorded_start is None


def exit_fd(pid: int) -> int | None:
    """A pidfd of `pid`: readable once the process has exited (Linux 5.3+); None where there is
    none (older kernel or Python, the process already gone)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


def signal_group(pgid: int | None, sig: int) -> bool:
    """Send `sig` to the trial's whole process group; False if it is already gone (or unknown)."""
    if not pgid or pgid <= 1:
        return False  # killpg(0) would signal our own group
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def _read_json(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_placement(paths: TrialPaths, record: dict) -> None:
    """Where the attempt runs (executor, host, GPUs by index, UUID and name)."""
    _write_atomic(paths.placement, json.dumps(record) + "\n")


def read_placement(paths: TrialPaths) -> dict | None:
    """Where the trial's latest attempt ran, as its executor recorded it (None: a CPU trial)."""
    return _read_json(paths.placement)


def read_exit(paths: TrialPaths, attempt: int | None = None) -> dict | None:
    """How the trial's command ended; with `attempt`, None for another attempt's record (a shim
    from before attempts were recorded wrote none: its record is taken as is)."""
    record = _read_json(paths.exit)
    if record is None or (attempt is not None and record.get("attempt", attempt) != attempt):
        return None
    return record


def stderr_tail(paths: TrialPaths, max_bytes: int = 4096) -> str:
    """The last few KB of the trial's stderr, decoded leniently."""
    try:
        with open(paths.stderr, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def host_oom_kills() -> int | None:
    """The cgroup's count of OOM kills so far (cgroup v2), None where it cannot be read."""
    try:
        cgroup = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        events = Path("/sys/fs/cgroup" + cgroup, "memory.events").read_text()
    except (OSError, IndexError):
        return None
    for line in events.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return None


TERMINATE = signal.SIGTERM
KILL = signal.SIGKILL
