"""Runs one trial's command and records how it ended, so any runner can learn it later.

    python -m runner.shim EXIT_FILE -- ARGV...

The runner starts this shim as the leader of a new process group (the trial
keeps running if the runner or the terminal dies). The shim survives SIGTERM
sent to the group, waits for the command, and writes EXIT_FILE atomically
(written to a temporary name, then renamed) with the return code, so a runner
that adopted the trial after a restart can classify how it ended.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time


def _write_exit(path: str, record: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m runner.shim EXIT_FILE -- ARGV...", file=sys.stderr)
        return 2
    exit_file, argv = args[0], args[2:]
    # A Python-level handler (not SIG_IGN) so the child still gets default
    # dispositions after exec; the group-wide SIGTERM reaches the child directly.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    try:
        proc = subprocess.Popen(argv)
    except OSError as exc:
        print(f"playbook: cannot start {argv[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        _write_exit(exit_file, {"returncode": 127, "ended_at": time.time(), "spawn_error": str(exc)})
        return 127
    returncode = proc.wait()
    peak_rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    _write_exit(exit_file, {"returncode": returncode, "ended_at": time.time(),
                            "peak_rss_kb": peak_rss_kb})
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
