"""Who runs this database: the live lease owner, and starting a runner in the background.

Light on purpose (no scipy, no torch): the TUI asks this every poll.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from runner import process
from store import lease


def live_owner(db) -> lease.Lease | None:
    """The lease of a runner that is alive for this database, or None."""
    held = lease.current(db)
    if held is None or not held.is_fresh():
        return None
    if held.host == socket.gethostname() and not process.is_alive(held.pid, None):
        return None
    return held


def start_detached(db_path: Path, serve_args: list[str] = ("--until-idle",)) -> subprocess.Popen:
    """Start `playbook-runner serve` for `db_path` in its own session, logging beside the database.

    It survives the caller (terminal, TUI or SSH session) and takes the lease itself.
    """
    log_path = Path(db_path).parent / "runner.log"
    argv = [sys.executable, "-m", "runner", "--db", str(db_path), "serve", *serve_args]
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
