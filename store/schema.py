"""Tables and their migrations.

Each migration is applied once per database file (sqlite-utils records it in
`_sqlite_migrations`); add new ones at the end, never edit an applied one.
"""

from __future__ import annotations

import re
import sqlite3
import sys
import time

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("playbook")

_V1 = [
    # The playbook's spreadsheet: one row per study.
    """CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        goal TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        config_path TEXT NOT NULL,
        config_text TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        command_template TEXT NOT NULL,
        objective_metric TEXT NOT NULL,
        objective_mode TEXT NOT NULL CHECK (objective_mode IN ('min', 'max')),
        max_train_steps INTEGER NOT NULL,
        run_dir TEXT NOT NULL,
        reproduce_command TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE trials (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id),
        number INTEGER NOT NULL,
        source TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        detail TEXT,
        feasible INTEGER,
        params_json TEXT NOT NULL,
        argv_json TEXT NOT NULL,
        trial_dir TEXT NOT NULL,
        slot TEXT,
        host TEXT,
        pid INTEGER,
        proc_start TEXT,
        exit_code INTEGER,
        stop_requested_at REAL,
        attempt INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        -- summary, kept current by ingest
        metrics_offset INTEGER NOT NULL DEFAULT 0,
        stdout_offset INTEGER NOT NULL DEFAULT 0,
        last_step INTEGER,
        best_value REAL,
        best_step INTEGER,
        last_report_at REAL,
        diverged INTEGER NOT NULL DEFAULT 0,
        bad_lines INTEGER NOT NULL DEFAULT 0,
        UNIQUE (study_id, number)
    )""",
    "CREATE INDEX trials_by_state ON trials(state)",
    """CREATE TABLE params (
        trial_id INTEGER NOT NULL REFERENCES trials(id),
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (trial_id, name)
    ) WITHOUT ROWID""",
    # Clustered on (trial, name, step): one series is one contiguous range,
    # and a repeated step replaces the earlier value.
    """CREATE TABLE metrics (
        trial_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        step INTEGER NOT NULL,
        value REAL,
        wall_time REAL,
        PRIMARY KEY (trial_id, name, step)
    ) WITHOUT ROWID""",
    """CREATE TABLE checkpoints (
        trial_id INTEGER NOT NULL REFERENCES trials(id),
        step INTEGER NOT NULL,
        path TEXT NOT NULL,
        objective REAL,
        wall_time REAL,
        PRIMARY KEY (trial_id, step)
    ) WITHOUT ROWID""",
    """CREATE TABLE commands (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        study_id INTEGER,
        trial_id INTEGER,
        created_at REAL NOT NULL,
        taken_at REAL,
        result TEXT
    )""",
    """CREATE TABLE lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        token TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    )""",
]


@MIGRATIONS(name="0001_initial")
def _initial(db: Database) -> None:
    for statement in _V1:
        db.execute(statement)


_V2 = [
    # A guided wizard (batch-size probe, warmup, adopt-or-not): its options, where it is,
    # and its verdict. Its trials are ordinary trials of the sub-studies it registers
    # (named "<wizard>.<stage>"), so they are visible, resumable and never lost.
    """CREATE TABLE wizards (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('probe-batch', 'warmup', 'decide')),
        name TEXT NOT NULL UNIQUE,
        base_study TEXT NOT NULL,
        options_json TEXT NOT NULL,
        stage TEXT NOT NULL,
        state_json TEXT NOT NULL DEFAULT '{}',
        verdict TEXT,
        result_json TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    # Adopted configurations: the playbook's "launch" of a new baseline, newest last.
    """CREATE TABLE baselines (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        params_json TEXT NOT NULL,
        source TEXT NOT NULL,
        objective_mean REAL,
        wizard_id INTEGER REFERENCES wizards(id),
        adopted_at REAL NOT NULL
    )""",
]


@MIGRATIONS(name="0002_wizards")
def _wizards(db: Database) -> None:
    for statement in _V2:
        db.execute(statement)


_V3 = [
    # Metric points in blocks (see store.series_blocks): a row per run of consecutive
    # points of one series, with the summary a downsampled read needs.
    """CREATE TABLE metric_blocks (
        trial_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        first_step INTEGER NOT NULL,
        last_step INTEGER NOT NULL,
        n INTEGER NOT NULL,
        lo REAL,
        hi REAL,
        last_value REAL,
        last_wall REAL,
        steps BLOB,
        vals BLOB NOT NULL,
        walls BLOB NOT NULL,
        PRIMARY KEY (trial_id, name, first_step)
    )""",
]


_NAN = float("nan")


def _v3_block_rows(trial_id: int, name: str, steps: list[int], values: list[float],
                   walls: list[float]) -> list[tuple]:
    """The first block layout's rows, 128 points each (frozen here for migration 0003; 0008 reads
    them back with _v3_points): steps NULL when evenly spaced, else int64s; float64 values, walls."""
    import numpy as np

    rows = []
    for i in range(0, len(steps), 128):
        s, v, w = (np.asarray(x[i:i + 128]) for x in (steps, values, walls))
        n, first, last = len(s), int(s[0]), int(s[-1])
        stride = (last - first) // (n - 1) if n > 1 else 1
        even = np.array_equal(s, np.arange(n) * stride + first)
        finite = v[~np.isnan(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (None, None)
        rows.append((trial_id, name, first, last, n, lo, hi, None if v[-1] != v[-1] else float(v[-1]),
                     None if w[-1] != w[-1] else float(w[-1]),
                     None if even else s.astype("<i8").tobytes(), v.astype("<f8").tobytes(),
                     w.astype("<f8").tobytes()))
    return rows


@MIGRATIONS(name="0003_metric_blocks")
def _metric_blocks(db: Database) -> None:
    """Move every stored point from the row-per-point table into blocks, series by series.

    About 250k points/s on one core: a database of 40M points takes minutes, once, so
    it says so on stderr (the CLI and the TUI both open the store before anything else).
    """
    for statement in _V3:
        db.execute(statement)
    conn = db.conn
    series = conn.execute("SELECT DISTINCT trial_id, name FROM metrics").fetchall()
    if series:
        print(f"store: moving the metric points of {len(series)} series into blocks "
              "(once, after an upgrade; about 4 s per million points)...", file=sys.stderr, flush=True)
    began, moved = time.monotonic(), 0
    insert = "INSERT INTO metric_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    for trial_id, name in series:
        pts = conn.execute("SELECT step, value, wall_time FROM metrics WHERE trial_id = ? AND name = ? "
                           "ORDER BY step", [trial_id, name]).fetchall()
        steps = [p[0] for p in pts]
        values = [_NAN if p[1] is None else p[1] for p in pts]
        walls = [_NAN if p[2] is None else p[2] for p in pts]
        conn.executemany(insert, _v3_block_rows(trial_id, name, steps, values, walls))
        moved += len(pts)
    db.execute("DROP TABLE metrics")
    if series:
        print(f"store: {moved:,} points moved in {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)


@MIGRATIONS(name="0004_bad_line_sample")
def _bad_line_sample(db: Database) -> None:
    # The first metric line ingest dropped for a trial, with why: `bad_lines` alone told a
    # user that lines were lost but not which, nor what was wrong with them.
    db.execute("ALTER TABLE trials ADD COLUMN bad_line_sample TEXT")


@MIGRATIONS(name="0005_printed_capture")
def _printed_capture(db: Database) -> None:
    """Per trial, the state of its printed-line capture (runner.printed.CaptureState as JSON):
    step counters carried across runner restarts, and the lines it repeated, dropped or never
    matched. Written with the stdout offset, in one transaction."""
    db.execute("""CREATE TABLE trial_capture (
        trial_id INTEGER PRIMARY KEY REFERENCES trials(id),
        state_json TEXT NOT NULL
    )""")


_V6 = [
    # The analysis' judgement of each finished trial ("failed to train"), stored so that every
    # view (status, export, analyze, the TUI) shows the same answer without reading curves.
    # verdict NULL: judged, nothing found. `rule` names the rule that judged it (a newer rule
    # judges again). Rows of a trial that is no longer finished (requeued) are stale.
    """CREATE TABLE judgements (
        trial_id INTEGER PRIMARY KEY REFERENCES trials(id),
        verdict TEXT,
        why TEXT,
        rule TEXT NOT NULL,
        judged_at REAL NOT NULL
    )""",
]


@MIGRATIONS(name="0006_judgements")
def _judgements(db: Database) -> None:
    for statement in _V6:
        db.execute(statement)


@MIGRATIONS(name="0007_out_of_order_points")
def _out_of_order_points(db: Database) -> None:
    # Points from metrics.jsonl at or below a step their series already had (a repeat, a step
    # back, a resumed trial logging steps again) are merged by step, the last value winning:
    # counted per trial with the first one described, so no overwrite goes unseen.
    db.execute("ALTER TABLE trials ADD COLUMN out_of_order INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE trials ADD COLUMN out_of_order_sample TEXT")


_V8 = [
    # Metric blocks, second layout (see store.series_blocks): one `data` blob per block, packed
    # (codec 1) once sealed, raw (codec 0) while it is a live series' open tail, so a pass
    # appends a row instead of rewriting the last block. A rowid table: blocks are appended in
    # the order they are sealed, filling pages (clustered on the series, blocks of different
    # series landing in between split pages half full: 48% of them was free space).
    """CREATE TABLE metric_blocks (
        trial_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        first_step INTEGER NOT NULL,
        last_step INTEGER NOT NULL,
        n INTEGER NOT NULL,
        lo REAL,
        hi REAL,
        last_value REAL,
        last_wall REAL,
        codec INTEGER NOT NULL,
        tail INTEGER NOT NULL DEFAULT 0,
        data BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX metric_blocks_by_series ON metric_blocks(trial_id, name, first_step)",
]
PROGRESS_EVERY_SERIES = 500  # migration 0008 says how far it is every this many series


def _v3_points(rows: list[tuple]) -> tuple:
    """Migration 0008's reader of the first block layout (frozen here: its code is gone): steps,
    values, walls of a series' rows (first_step, last_step, n, steps, vals, walls) in order."""
    import numpy as np

    steps, values, walls = [], [], []
    for first, last, n, steps_blob, vals_blob, walls_blob in rows:
        if steps_blob is None:
            stride = (last - first) // (n - 1) if n > 1 else 1
            steps.append(np.arange(n, dtype=np.int64) * stride + first)
        else:
            steps.append(np.frombuffer(steps_blob, "<i8").astype(np.int64))
        values.append(np.frombuffer(vals_blob, "<f8"))
        walls.append(np.frombuffer(walls_blob, "<f8"))
    return np.concatenate(steps), np.concatenate(values), np.concatenate(walls)


@MIGRATIONS(name="0008_packed_metric_blocks")
def _packed_metric_blocks(db: Database) -> None:
    """Re-pack every series into the second block layout, series by series, saying how far it is.

    About 1M points/s on one core (the old blocks are decoded with numpy, re-coded in
    SEAL_POINTS blocks): minutes for a 100M-point database, once.
    """
    from store.series_blocks import block_rows

    db.execute("ALTER TABLE metric_blocks RENAME TO metric_blocks_v3")
    for statement in _V8:
        db.execute(statement)
    conn = db.conn
    series = conn.execute("SELECT DISTINCT trial_id, name FROM metric_blocks_v3 ORDER BY trial_id, name").fetchall()
    if series:
        print(f"store: packing the metric points of {len(series)} series into the new block layout "
              "(once, after an upgrade)...", file=sys.stderr, flush=True)
    began, moved = time.monotonic(), 0
    insert = ("INSERT INTO metric_blocks (trial_id, name, first_step, last_step, n, lo, hi, last_value, "
              "last_wall, codec, tail, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for done, (trial_id, name) in enumerate(series, 1):
        rows = conn.execute("SELECT first_step, last_step, n, steps, vals, walls FROM metric_blocks_v3 "
                            "WHERE trial_id = ? AND name = ? ORDER BY first_step", [trial_id, name]).fetchall()
        steps, values, walls = _v3_points(rows)
        conn.executemany(insert, block_rows(trial_id, name, steps, values, walls))
        moved += len(steps)
        if done % PROGRESS_EVERY_SERIES == 0 or done == len(series):
            print(f"store: {done}/{len(series)} series ({100 * done // len(series)}%), {moved:,} points, "
                  f"{time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)
    db.execute("DROP TABLE metric_blocks_v3")


# What migration 0009 adds to the studies table (and the name's UNIQUE it turns into UNIQUE (name, version)).
_VERSION_COLUMNS = """,
    version INTEGER NOT NULL DEFAULT 1,
    previous_id INTEGER REFERENCES studies(id),
    refines TEXT NOT NULL DEFAULT '',
    UNIQUE (name, version)
)"""


@MIGRATIONS(name="0009_study_versions", transactional=False)
def _study_versions(db: Database) -> None:
    """Versions of a study: a changed file under a stored name becomes the name's next version
    (linked to the one before by previous_id), instead of being refused; `refines` is the study a
    refined file names. The name's UNIQUE goes, so the table is rebuilt (SQLite's documented way),
    from its stored definition: columns a migration before this one added are kept, as are its
    indexes. Foreign keys are off for the swap, which SQLite allows only outside a transaction, so
    this migration makes its own; it checks the trials' links before committing, and is skipped
    once the columns exist (an open that stopped between its commit and its record).
    """
    if "version" in {c.name for c in db["studies"].columns}:
        return
    conn = db.conn
    (create,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'studies'").fetchone()
    unique_name = re.compile(r"\bname\s+TEXT\s+NOT\s+NULL\s+UNIQUE\b", re.IGNORECASE)
    if not unique_name.search(create):
        raise RuntimeError(f"0009_study_versions: unexpected studies table, nothing changed: {create}")
    rebuilt = unique_name.sub("name TEXT NOT NULL", create, count=1)
    rebuilt = re.sub(r"^CREATE TABLE\s+\"?studies\"?", "CREATE TABLE studies_v9", rebuilt, count=1)
    rebuilt = rebuilt[: rebuilt.rindex(")")].rstrip() + _VERSION_COLUMNS
    columns = ", ".join(f'"{c.name}"' for c in db["studies"].columns)
    indexes = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'studies' AND sql IS NOT NULL")]
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(rebuilt)
            conn.execute(f"INSERT INTO studies_v9 ({columns}) SELECT {columns} FROM studies")
            conn.execute("DROP TABLE studies")
            conn.execute("ALTER TABLE studies_v9 RENAME TO studies")
            for index in indexes:
                conn.execute(index)
            if conn.execute("PRAGMA foreign_key_check(trials)").fetchall():
                raise RuntimeError("0009_study_versions: trials would lose their study; nothing changed")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


@MIGRATIONS(name="0011_wizard_kinds", transactional=False)
def _wizard_kinds(db: Database) -> None:
    # The wizards table listed its kinds in a CHECK, so every new kind (the training-length
    # wizard first) would need a migration; store.wizards.KINDS checks them instead. SQLite
    # cannot drop a CHECK: the table is rebuilt. Not in the migration's transaction: with
    # foreign keys on, dropping the old table would fail on baselines.wizard_id, and the
    # pragma that turns them off is ignored inside a transaction. Safe to re-run.
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'wizards'").fetchone()[0]
    if "CHECK" not in sql:
        return
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(_V2[0].replace("CREATE TABLE wizards", "CREATE TABLE wizards_0011").replace(
                "CHECK (kind IN ('probe-batch', 'warmup', 'decide'))", ""))
            db.execute("INSERT INTO wizards_0011 SELECT * FROM wizards")
            db.execute("DROP TABLE wizards")
            db.execute("ALTER TABLE wizards_0011 RENAME TO wizards")
            if db.execute("PRAGMA foreign_key_check").fetchall():
                raise sqlite3.IntegrityError("rebuilding the wizards table broke a foreign key")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("PRAGMA foreign_keys=ON")
