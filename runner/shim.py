"""Runs one trial's command and records how it ended, so any runner can learn it later.

    python -m runner.shim [--launch LAUNCH_FILE] EXIT_FILE STDOUT_LOG STDERR_LOG -- ARGV...

The runner starts this shim as the leader of a new process group (the trial
keeps running if the runner or the terminal dies). Before it starts the command
the shim writes LAUNCH_FILE (its attempt, pid, process start time and process
group), so a runner that died between spawning it and recording it still leaves
a way to find it (see runner.process). The shim survives SIGTERM sent to the
group, waits for the command, and writes EXIT_FILE atomically (written to a
temporary name, then renamed) with the return code, so a runner that adopted
the trial after a restart can classify how it ended.

The command's stdout and stderr come through pipes and the shim appends them
to the two logs (the runner opened them as the shim's own stdout and stderr),
rotating a log to LOG.1 once it passes LOG_ROTATE_BYTES: a trial that prints
without end cannot fill the disk. LOG.start holds the position in the whole
stream where the current LOG begins, so a reader's byte offsets survive a
rotation (see runner.ingest.read_log_lines).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time

LOG_ROTATE_BYTES = 16 * 2**20  # per file: with one rotated file, at most 32 MiB of a stream on disk
COPY_CHUNK = 64 * 1024  # one pipe read; small enough to keep the log current line by line
DRAIN_WAIT_S = 2.0  # after the command ends, how long its forked children may keep a pipe open


def _write_record(path: str, record: dict) -> None:
    """Written whole or not at all: to a temporary name, then renamed."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


def _own_start_time() -> str | None:
    """This process's start time in clock ticks since boot (as runner.process.start_time reads it)."""
    try:
        with open("/proc/self/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _write_launch(path: str, attempt: int | None) -> None:
    """Who runs this attempt; best effort (the runner also records the pid it spawned)."""
    record = {"attempt": attempt, "pid": os.getpid(), "pgid": os.getpgid(0),
              "proc_start": _own_start_time(), "started_at": time.time()}
    try:
        _write_record(path, record)
    except OSError as exc:
        print(f"playbook: cannot write the launch record {path}: {exc}", file=sys.stderr)


def _write_start(path: str, position: int) -> None:
    tmp = f"{path}.start.tmp"
    with open(tmp, "w") as f:
        f.write(f"{position}\n")
    os.replace(tmp, f"{path}.start")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class RotatingLog:
    """Appends to the log open on `fd` (named `path`), rotating it to `path`.1 past `limit` bytes.

    A file holds at most `limit` bytes plus the end of one line (at most COPY_CHUNK):
    rotation waits for the line in progress to end when its end is in the chunk,
    so lines are not split between the two files. A failed write (disk full) drops that chunk: the pipe
    keeps draining, and the command never blocks on a full pipe.
    """

    def __init__(self, fd: int, path: str, limit: int = LOG_ROTATE_BYTES) -> None:
        self.fd, self.path, self.limit = fd, path, limit
        self.size = os.fstat(fd).st_size
        self.start = 0  # stream position where the current file begins
        self.dropped = 0  # bytes lost to write errors
        self.mid_line = False  # the file ends inside a line

    def write(self, data: bytes) -> None:
        if self.size > 0 and self.size + len(data) > self.limit:
            # Finish the line the file ends in when its end is in this chunk (the old
            # file then passes the limit by at most one chunk); else cut it here.
            cut = data.find(b"\n") + 1 if self.mid_line else 0
            self._append(data[:cut])
            data = data[cut:]
            self._rotate()
        self._append(data)

    def _append(self, data: bytes) -> None:
        if not data:
            return
        try:
            _write_all(self.fd, data)
            self.size += len(data)
            self.mid_line = not data.endswith(b"\n")
        except OSError:
            self.dropped += len(data)

    def _rotate(self) -> None:
        try:
            # Order matters for readers: the old file is whole before it moves, and the
            # new start position is in place before anything reaches the new file.
            os.replace(self.path, f"{self.path}.1")
            self.start += self.size
            _write_start(self.path, self.start)
            new = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            return  # cannot rotate (disk full, folder gone): keep appending where we are
        os.dup2(new, self.fd)  # the same fd number, so the shim's own messages follow too
        os.close(new)
        self.size = 0


def _copy(pipe, log: RotatingLog) -> None:
    while data := os.read(pipe.fileno(), COPY_CHUNK):
        log.write(data)


def _attempt() -> int | None:
    try:
        # runner.process.ATTEMPT_ENV, spelled out: the shim imports nothing of the runner
        return int(os.environ["PLAYBOOK_TRIAL_ATTEMPT"])
    except (KeyError, ValueError):
        return None


def main(args: list[str]) -> int:
    launch_file = None
    if args[:1] == ["--launch"] and len(args) > 1:
        launch_file, args = args[1], args[2:]
    if len(args) < 5 or args[3] != "--":
        print("usage: python -m runner.shim [--launch LAUNCH_FILE] EXIT_FILE STDOUT_LOG STDERR_LOG -- ARGV...",
              file=sys.stderr)
        return 2
    exit_file, stdout_log, stderr_log, argv = args[0], args[1], args[2], args[4:]
    # A Python-level handler (not SIG_IGN) so the child still gets default
    # dispositions after exec; the group-wide SIGTERM reaches the child directly.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    attempt = _attempt()
    if launch_file is not None:
        _write_launch(launch_file, attempt)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        print(f"playbook: cannot start {argv[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        _write_record(exit_file, {"returncode": 127, "ended_at": time.time(), "spawn_error": str(exc),
                                "attempt": attempt})
        return 127
    copiers = [threading.Thread(target=_copy, args=(pipe, RotatingLog(fd, path)), daemon=True)
               for pipe, fd, path in ((proc.stdout, 1, stdout_log), (proc.stderr, 2, stderr_log))]
    for t in copiers:
        t.start()
    returncode = proc.wait()
    deadline = time.monotonic() + DRAIN_WAIT_S
    for t in copiers:  # everything it printed is in the logs before the exit file says it ended
        t.join(max(0.0, deadline - time.monotonic()))
    peak_rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    _write_record(exit_file, {"returncode": returncode, "ended_at": time.time(),
                            "peak_rss_kb": peak_rss_kb, "attempt": attempt})
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
