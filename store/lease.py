"""The runner lease: one runner owns a database at a time, proven by its heartbeat."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlite_utils import Database

from store.db import transaction

LEASE_TTL_S = 15.0  # a heartbeat older than this means the owner is gone


@dataclass(frozen=True)
class Lease:
    token: str
    pid: int
    host: str
    acquired_at: float
    heartbeat_at: float

    def is_fresh(self, now: float | None = None) -> bool:
        return ((now or time.time()) - self.heartbeat_at) < LEASE_TTL_S


class LeaseHeld(Exception):
    """Another live runner owns this database."""

    def __init__(self, lease: Lease):
        super().__init__(
            f"another runner owns this database (pid {lease.pid} on {lease.host}, "
            f"heartbeat {time.time() - lease.heartbeat_at:.0f}s ago)"
        )
        self.lease = lease


def current(db: Database) -> Lease | None:
    row = db.execute(
        "SELECT token, pid, host, acquired_at, heartbeat_at FROM lease WHERE id = 1"
    ).fetchone()
    return Lease(*row) if row else None


def acquire(db: Database, token: str, pid: int, host: str, owner_alive) -> Lease | None:
    """Take the lease unless a live owner holds it; returns the previous lease (if any).

    `owner_alive(lease) -> bool` lets the caller declare a same-host owner dead
    at once (its pid is gone) instead of waiting for the heartbeat to expire.
    """
    now = time.time()
    with transaction(db):
        previous = current(db)
        if previous and previous.token != token and previous.is_fresh(now) and owner_alive(previous):
            raise LeaseHeld(previous)
        db.execute(
            "INSERT OR REPLACE INTO lease (id, token, pid, host, acquired_at, heartbeat_at) "
            "VALUES (1, ?, ?, ?, ?, ?)",
            [token, pid, host, now, now],
        )
    return previous


def heartbeat(db: Database, token: str) -> bool:
    """Refresh our lease; False means we lost it (another runner took over)."""
    with transaction(db):
        cur = db.execute(
            "UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND token = ?", [time.time(), token]
        )
    return cur.rowcount == 1


def release(db: Database, token: str) -> None:
    with transaction(db):
        db.execute("DELETE FROM lease WHERE id = 1 AND token = ?", [token])
