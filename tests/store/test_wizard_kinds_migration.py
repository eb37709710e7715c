"""0011: the wizards table takes any kind store.wizards knows (the training-length wizard first)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database

import store
from store import wizards as wizard_store
from store.schema import MIGRATIONS


def _old_database(path) -> None:
    """A file as the releases before 0011 left it: a warmup wizard and the baseline it adopted."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    db = Database(conn)
    MIGRATIONS.apply(db, stop_before="0011_wizard_kinds")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute("INSERT INTO wizards (kind, name, base_study, options_json, stage, created_at, updated_at) "
                    "VALUES ('length', 'x', 's', '{}', 'sweep', 0, 0)")
    wizard_store.create_or_resume(db, "warmup", "old", "digits", {"points": 7}, "lr-sweep")
    wizard_id = wizard_store.get_by_name(db, "old").id
    wizard_store.adopt_baseline(db, "digits", {"lr": 0.1}, "digits/3", 0.2, wizard_id)
    conn.close()


def test_an_old_database_takes_a_length_wizard_and_keeps_what_it_had(tmp_path):
    path = tmp_path / "old.db"
    _old_database(path)
    db = store.connect(path)
    old = wizard_store.get_by_name(db, "old")
    assert (old.kind, old.options, old.stage) == ("warmup", {"points": 7}, "lr-sweep")
    assert wizard_store.current_baseline(db, "digits").wizard_id == old.id
    created, is_new = wizard_store.create_or_resume(db, "length", "len", "digits", {}, "sweep")
    assert is_new and created.kind == "length"
    # the foreign key from baselines still holds after the rebuild
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute("INSERT INTO baselines (scope, params_json, source, wizard_id, adopted_at) "
                   "VALUES ('digits', '{}', 'x', 999, 0)")
    with pytest.raises(ValueError, match="unknown wizard kind"):
        wizard_store.create_or_resume(db, "nonsense", "n", "digits", {}, "a")
