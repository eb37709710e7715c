"""Versions of a study: a changed config under a stored name is its next version, linked and kept."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database
from test_store import add_study, add_trials, fields_of

import store
from store import studies, trials
from store.schema import MIGRATIONS


def test_versions_are_kept_linked_and_addressed_by_name_at_number(db):
    v1 = add_study(db, "tiny")
    add_trials(db, v1, 2)
    fields_ = fields_of(v1)
    v2 = studies.upsert(db, {**fields_, "config_hash": "h2"})
    add_trials(db, v2, 1)
    v3 = studies.upsert(db, {**fields_, "config_hash": "h3"})
    assert [(s.version, s.previous_id) for s in studies.versions(db, "tiny")] == [(1, None), (2, v1.id),
                                                                                  (3, v2.id)]
    assert studies.by_name(db, "tiny").id == v3.id  # NAME is the latest
    assert studies.require(db, "tiny@1").id == v1.id and studies.require(db, "tiny@2").id == v2.id
    # The first config again: its own version, with its trials (not a fourth version).
    assert studies.upsert(db, {**fields_, "config_hash": v1.config_hash}).id == v1.id
    assert len(trials.list_for_study(db, v1.id)) == 2
    with pytest.raises(studies.UnknownStudy, match=r"study 'tiny' has no version '7': NAME@N names version N, "
                                                   r"NAME the latest \(versions: tiny@1, tiny@2, tiny@3\)"):
        studies.require(db, "tiny@7")
    with pytest.raises(studies.UnknownStudy, match="no study named 'nope'"):
        studies.require(db, "nope@1")
    assert studies.known_names(db) == "tiny@1, tiny@2, tiny"


def test_a_registration_planned_for_a_version_taken_meanwhile_is_refused(db):
    v1 = add_study(db, "tiny")
    add_trials(db, v1, 1)
    fields_ = fields_of(v1)
    planned = studies.next_version(db, "tiny", "h2")
    assert planned == 2
    other = studies.upsert(db, {**fields_, "config_hash": "other"})  # another registration took version 2
    add_trials(db, other, 1)  # (a version without trials would simply take the new config)
    with pytest.raises(studies.StudyConflict, match="got a version 3 while this one was being registered"):
        studies.upsert(db, {**fields_, "config_hash": "h2", "version": planned})


def test_a_database_from_before_versions_is_migrated_with_its_studies_and_trials(db_path):
    db_path.parent.mkdir(parents=True)
    old = Database(sqlite3.connect(str(db_path), isolation_level=None))
    old.conn.execute("PRAGMA foreign_keys=ON")
    MIGRATIONS.apply(old, stop_before="0009_study_versions")
    assert "version" not in {c.name for c in old["studies"].columns}
    old["studies"].insert(dict(
        id=1, name="tiny", goal="g", notes="n", config_path="/x/study.toml", config_text="t", config_hash="h",
        command_template="python t.py", objective_metric="loss", objective_mode="min", max_train_steps=10,
        run_dir="/tmp/runs", reproduce_command="playbook-runner run x", active=1, created_at=1.0))
    old.conn.execute("INSERT INTO trials (study_id, number, source, state, params_json, argv_json, trial_dir, "
                     "created_at) VALUES (1, 1, 'search', 'completed', '{}', '[]', '/tmp/t1', 1.0)")
    # What another migration before this one may have added to the table: kept by the rebuild.
    old.conn.execute("ALTER TABLE studies ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
    old.conn.execute("UPDATE studies SET owner = 'ana'")
    old.conn.execute("CREATE INDEX studies_by_owner ON studies(owner)")
    old.conn.close()

    db = store.connect(db_path)
    study = studies.by_name(db, "tiny")
    assert (study.id, study.version, study.previous_id, study.refines, study.notes, study.active) == \
        (1, 1, None, "", "n", 1)
    assert [t.number for t in trials.list_for_study(db, 1)] == [1]
    assert db.execute("SELECT owner FROM studies").fetchall() == [("ana",)]
    assert "studies_by_owner" in {i.name for i in db["studies"].indexes}
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # back on after the rebuild
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    with pytest.raises(sqlite3.IntegrityError):  # the links are still enforced
        db.execute("INSERT INTO trials (study_id, number, source, state, params_json, argv_json, trial_dir, "
                   "created_at) VALUES (99, 1, 'search', 'queued', '{}', '[]', '/t', 1.0)")
    # And the name takes a second version now.
    v2 = studies.upsert(db, {**fields_of(study), "config_hash": "h2"})
    assert (v2.version, v2.previous_id) == (2, 1)
