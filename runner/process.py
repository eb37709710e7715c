"""Trial processes: the files of a trial, spawning without a shell, liveness, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


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


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _archive_previous_attempt(paths: TrialPaths) -> None:
    """A requeued trial starts clean; the earlier attempt's files move to attempt-N/."""
    logs = [paths.stdout, paths.stderr]
    rotated = [log.with_name(log.name + suffix) for log in logs for suffix in (".1", ".start")]
    leftovers = [p for p in (paths.metrics, *logs, *rotated, paths.exit) if p.exists()]
    if not leftovers:
        return
    n = 1
    while (paths.root / f"attempt-{n}").exists():
        n += 1
    archive = paths.root / f"attempt-{n}"
    archive.mkdir()
    for p in leftovers:
        os.replace(p, archive / p.name)


def spawn(
    argv: list[str],
    *,
    paths: TrialPaths,
    cwd: Path,
    params: dict,
    extra_env: dict[str, str],
) -> subprocess.Popen:
    """Start a trial under the shim, in a new session, stdout/stderr to its log files.

    The argv list goes to exec as is: no shell ever sees a parameter value.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    _archive_previous_attempt(paths)
    params_json = json.dumps(params, sort_keys=True)
    _write_atomic(paths.params, params_json + "\n")
    _write_atomic(paths.command, json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n")
    env = {
        **os.environ,
        **extra_env,
        "PLAYBOOK_PARAMS": params_json,
        "PLAYBOOK_TRIAL_DIR": str(paths.root),
        "PLAYBOOK_METRICS_FILE": str(paths.metrics),
        "PYTHONUNBUFFERED": "1",  # prints reach stdout.log (and regex capture) as they happen
    }
    with open(paths.stdout, "ab") as out, open(paths.stderr, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "runner.shim", str(paths.exit), str(paths.stdout), str(paths.stderr),
             "--", *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


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


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the trial's whole process group; False if it is already gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def read_exit(paths: TrialPaths) -> dict | None:
    try:
        return json.loads(paths.exit.read_text())
    except (OSError, ValueError):
        return None


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
