"""Opening the database: location, connection settings, migrations, transactions."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path


def _without_numpy():
    """Import sqlite-utils without the numpy it imports at its own import (~60 ms, a quarter of a
    read-only command's start): it wants numpy only to type columns it creates from numpy
    values, and the store never hands it any. numpy stays importable for whoever needs it."""
    if "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # `import numpy` raises ImportError meanwhile
    try:
        import sqlite_utils  # noqa: F401
    finally:
        if sys.modules.get("numpy", 0) is None:
            del sys.modules["numpy"]


_without_numpy()

from sqlite_utils import Database  # noqa: E402

from store.schema import MIGRATIONS  # noqa: E402

DB_ENV = "PLAYBOOK_DB"
BUSY_TIMEOUT_ENV = "PLAYBOOK_BUSY_TIMEOUT"
BUSY_TIMEOUT_S = 30.0


class StoreError(Exception):
    """The database cannot be used: not a database, read-only, locked, disk full..."""


DB_FOLDER, DB_FILE = ".playbook", "playbook.db"


def locate_db(given: str | Path | None = None, cwd: Path | None = None) -> tuple[Path, str]:
    """The database to use and where that choice came from, for the user to see.

    --db if given; else $PLAYBOOK_DB (an explicit choice, as GIT_DIR is for git); else the
    nearest `.playbook/playbook.db` in the working directory or a folder above it, as git
    finds its repository; else `.playbook/playbook.db` here (created by the first `run`).
    """
    if given:
        return Path(given).expanduser().resolve(), "--db"
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser().resolve(), f"${DB_ENV}"
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        found = folder / DB_FOLDER / DB_FILE
        if found.is_file():
            return found, "found here" if folder == here else f"found in {folder}"
    return here / DB_FOLDER / DB_FILE, "default: none found here or above"


def default_db_path() -> Path:
    """Where the database lives when no --db is given (see locate_db)."""
    return locate_db()[0]


def busy_timeout_s() -> float:
    """Seconds a connection waits for another one's write lock: $PLAYBOOK_BUSY_TIMEOUT, else 30."""
    try:
        return float(os.environ.get(BUSY_TIMEOUT_ENV, BUSY_TIMEOUT_S))
    except ValueError:
        return BUSY_TIMEOUT_S


def explain(path: str | Path, exc: sqlite3.Error) -> str:
    """One line for a user: which database, what went wrong, and what to do about it."""
    text = str(exc)
    lowered = text.lower()
    quoted = shlex.quote(str(path))
    if "locked" in lowered or "busy" in lowered:
        return (f"{path}: {text}: another process held its write lock longer than {busy_timeout_s():g} s; "
                f"retry once it has finished (`fuser {quoted}` names it), or wait longer with "
                f"{BUSY_TIMEOUT_ENV}=SECONDS")
    if "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        return (f"{path}: cannot use this database: {text}; the file is damaged or is not a playbook "
                f"database: stop what uses it, keep a copy, then salvage it with `sqlite3 {quoted} .recover "
                "| sqlite3 NEW.db` or start a new one with --db NEW.db (trial folders keep their metrics.jsonl)")
    if "readonly" in lowered or "read-only" in lowered:
        return f"{path}: cannot use this database: {text}; make the file and its folder writable"
    if "full" in lowered:
        return f"{path}: cannot use this database: {text}; free some space on its disk and retry"
    return f"{path}: cannot use this database: {text}"


def connect(path: str | Path, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the database at `path`, in WAL mode, migrated.

    Raises StoreError with the file name and the cause when the file cannot be
    used, so a caller can print one clear line instead of a traceback.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves (IMMEDIATE where we
        # read-modify-write), sqlite3's implicit transactions would hide that.
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_s(), isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # No sqlite-utils plugins: the store uses none, and finding them scans every installed
        # package's entry points (~50 ms of each command's start).
        db = Database(conn, execute_plugins=False)
        with _setup_lock(path):
            # Switching a new file to WAL takes an exclusive lock that SQLite does not
            # wait for; so does creating tables: both happen once, under our own lock.
            conn.execute("PRAGMA journal_mode=WAL")
            if migrate and MIGRATIONS.pending(db):
                MIGRATIONS.apply(db)
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreError(explain(path, exc)) from exc
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror or exc}") from exc


def check_readable(db: Database, path: str | Path) -> None:
    """Read the first row of every table (bounded work, whatever the size): a damaged table's
    root page raises StoreError here, saying what to do, instead of deep inside a caller."""
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            db.execute(f"SELECT * FROM {quoted} LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(explain(path, exc)) from exc


@contextlib.contextmanager
def _setup_lock(path: Path) -> Iterator[None]:
    """An advisory lock beside the database, serializing setup across processes."""
    with open(path.with_name(path.name + ".setup-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def transaction(db: Database, *, immediate: bool = True) -> Iterator[Database]:
    """A transaction; IMMEDIATE by default so read-modify-write cannot race.

    Inside another one it joins it (nothing is committed until the outer one
    is), so store functions compose into one atomic change.
    """
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield db
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def data_version(db: Database) -> int:
    """A number that changes whenever another connection commits (cheap change detection)."""
    return db.conn.execute("PRAGMA data_version").fetchone()[0]
