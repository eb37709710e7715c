"""Persistence for playbook-tui: the only package that knows SQL.

One SQLite file (WAL) holds studies, trials, metrics, checkpoints, the command
queue the TUI uses to ask the runner for work, and the runner's lease.
"""

from store.db import StoreError, connect, default_db_path, locate_db, transaction

__all__ = ["StoreError", "connect", "default_db_path", "locate_db", "transaction"]
