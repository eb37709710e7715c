import threading

import pytest

import store
from store import commands, lease, metrics, studies, trials
from store.metrics import TrialUpdate
from store.trials import NewTrial, TrialState


def add_study(db, name="s"):
    fields_ = dict(
        name=name, goal="g", notes="", config_path="/x/study.toml", config_text="", config_hash="h",
        command_template="python t.py", objective_metric="loss", objective_mode="min",
        max_train_steps=100, run_dir="/tmp/runs", reproduce_command="playbook-runner run x")
    if "version" not in {c.name for c in db["studies"].columns}:  # a database migrated part way (old-schema tests)
        row_id = db["studies"].insert({**fields_, "created_at": 0.0, "active": 0}).last_pk
        return studies.Study.from_row(db["studies"].get(row_id))
    return studies.upsert(db, fields_)


def fields_of(study):
    """What a registration passes: the stored row less what the store assigns."""
    return {k: v for k, v in study.__dict__.items() if k not in ("id", "version", "previous_id", "active",
                                                                 "created_at")}


def add_trials(db, study, n=3):
    new = [NewTrial(i, "search", {"lr": 0.1 * i}, {"lr": "nuisance"}, ["python"], f"/tmp/t{i}")
           for i in range(1, n + 1)]
    trials.insert_new(db, study.id, new)
    return trials.list_for_study(db, study.id)


def test_reopening_and_concurrent_opens_migrate_once(db_path):
    errors = []

    def open_it():
        try:
            store.connect(db_path).conn.close()
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = store.connect(db_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Each migration recorded exactly once, however many opens raced.
    names = [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations ORDER BY name")]
    assert names == ["0001_initial", "0002_wizards", "0003_metric_blocks", "0004_bad_line_sample",
                     "0005_printed_capture", "0006_judgements", "0007_out_of_order_points",
                     "0008_packed_metric_blocks", "0009_study_versions", "0011_wizard_kinds"]


def test_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("hello, I am a text file" * 100)
    with pytest.raises(store.StoreError, match="notes.db: cannot use this database"):
        store.connect(bad)
    assert bad.read_text().startswith("hello")  # nothing overwritten


def test_same_study_twice_is_the_same_row_and_a_changed_config_is_the_next_version(db):
    s = add_study(db)
    add_trials(db, s)
    assert add_study(db).id == s.id
    assert trials.insert_new(db, s.id, [NewTrial(1, "search", {}, {}, [], "/t")]) == 0
    v2 = studies.upsert(db, {**fields_of(s), "config_hash": "other"})
    assert (v2.name, v2.version, v2.previous_id, v2.label) == ("s", 2, s.id, "s v2")
    assert len(trials.list_for_study(db, s.id)) == 3 and trials.list_for_study(db, v2.id) == []


def test_a_study_left_without_trials_takes_the_new_config(db):
    """An older version stored the study, then failed planning: nothing to mix, so no conflict."""
    s = add_study(db)
    fixed = studies.upsert(db, {**fields_of(s), "config_hash": "fixed", "config_text": "fixed text"})
    assert (fixed.id, fixed.config_hash, fixed.config_text) == (s.id, "fixed", "fixed text")
    add_trials(db, fixed)
    assert studies.upsert(db, {**fields_of(s), "config_hash": "third"}).version == 2  # with trials: a new version


def test_registration_is_one_transaction(db):
    fields_ = {k: v for k, v in add_study(db, "other").__dict__.items() if k not in ("id", "active",
                                                                                      "created_at")}
    good = NewTrial(1, "search", {"lr": 0.1}, {"lr": "nuisance"}, ["python"], "/tmp/t1")
    unstorable = NewTrial(2, "search", {"lr": object()}, {"lr": "nuisance"}, ["python"], "/tmp/t2")
    with pytest.raises(TypeError):
        studies.register(db, {**fields_, "name": "s"}, [good, unstorable])
    assert studies.by_name(db, "s") is None  # neither the study nor its first trial was kept
    study, added = studies.register(db, {**fields_, "name": "s"}, [good])
    assert added == 1 and [t.number for t in trials.list_for_study(db, study.id)] == [1]
    assert studies.register(db, {**fields_, "name": "s"}, [good])[1] == 0  # the same file adds nothing


def test_lifecycle_transitions_are_conditional(db):
    s = add_study(db)
    t = add_trials(db, s)[0]
    assert trials.claim(db, t.id, "cpu", "host")
    assert not trials.claim(db, t.id, "cpu", "host")  # only queued may start
    trials.mark_running(db, t.id, 1234, "99")
    assert trials.finish(db, t.id, TrialState.COMPLETED, feasible=1)
    assert not trials.finish(db, t.id, TrialState.FAILED, reason="exit")  # finished refuses edits
    assert trials.get(db, t.id).state is TrialState.COMPLETED


def test_best_objective_and_offsets_written_together(db):
    s = add_study(db)
    t = add_trials(db, s)[0]
    u1 = TrialUpdate(t.id, rows=[(t.id, "loss", 0, 2.0, 1.0), (t.id, "loss", 1, 1.0, 2.0)],
                     metrics_offset=50, last_step=1, best=(1.0, 1))
    u2 = TrialUpdate(t.id, rows=[(t.id, "loss", 2, 1.5, 3.0)], metrics_offset=80, last_step=2,
                     best=(1.5, 2))
    metrics.write_updates(db, [u1], {t.id: "min"})
    metrics.write_updates(db, [u2], {t.id: "min"})
    row = trials.get(db, t.id)
    assert (row.best_value, row.best_step, row.last_step, row.metrics_offset) == (1.0, 1, 2, 80)


def test_downsampled_series_is_bounded_and_keeps_spikes(db):
    s = add_study(db)
    t = add_trials(db, s)[0]
    rows = [(t.id, "loss", step, 1.0, None) for step in range(10_000)]
    rows[7777] = (t.id, "loss", 7777, 50.0, None)
    metrics.write_updates(db, [TrialUpdate(t.id, rows=rows)], {})
    series = metrics.read_series(db, t.id, "loss", max_points=200)
    assert len(series.steps) <= 200 and series.total_points == 10_000
    assert series.steps[-1] == 9999 and max(series.highs) == 50.0
    assert series.steps == sorted(series.steps)
    small = metrics.read_series(db, t.id, "nothing")
    assert small.steps == [] and small.total_points == 0


def test_lease_excludes_a_second_live_runner(db):
    lease.acquire(db, "a", 1, "h", owner_alive=lambda _: True)
    with pytest.raises(lease.LeaseHeld, match="pid 1 on h"):
        lease.acquire(db, "b", 2, "h", owner_alive=lambda _: True)
    lease.acquire(db, "b", 2, "h", owner_alive=lambda _: False)  # dead owner: taken at once
    assert lease.current(db).token == "b"
    assert not lease.heartbeat(db, "a")


def test_commands_are_taken_once(db):
    commands.enqueue(db, "stop_trial", trial_id=5)
    assert [c.kind for c in commands.take_pending(db)] == ["stop_trial"]
    assert commands.take_pending(db) == []
    with pytest.raises(ValueError):
        commands.enqueue(db, "format_disk")


def test_series_carry_the_wall_time_of_each_drawn_point(db):
    s = add_study(db)
    t = add_trials(db, s)[0]
    rows = [(t.id, "loss", step, 1.0 / (step + 1), 1000.0 + step) for step in range(1000)]
    metrics.write_updates(db, [TrialUpdate(t.id, rows=rows)], {})
    full = metrics.read_series(db, t.id, "loss", max_points=5000)
    small = metrics.read_series(db, t.id, "loss", max_points=50)
    assert full.walls == [1000.0 + step for step in range(1000)]
    assert small.walls == [1000.0 + step for step in small.steps] and len(small.walls) <= 50


def test_recent_values_are_the_last_ones_in_step_order(db):
    s = add_study(db)
    t = add_trials(db, s)[0]
    rows = [(t.id, "loss", step, float(step), None) for step in range(100)]
    metrics.write_updates(db, [TrialUpdate(t.id, rows=rows)], {})
    assert metrics.recent(db, t.id, "loss", 3) == [97.0, 98.0, 99.0]
    assert metrics.recent(db, t.id, "missing", 3) == []


def test_capture_state_is_written_with_its_offset_and_forgotten_on_requeue(db):
    from store import capture

    s = add_study(db)
    t = add_trials(db, s)[0]
    metrics.write_updates(db, [TrialUpdate(t.id, stdout_offset=120, capture_json='{"dropped": 1}')], {})
    assert capture.load(db, t.id) == '{"dropped": 1}' and trials.get(db, t.id).stdout_offset == 120
    assert capture.for_study(db, s.id) == {t.id: '{"dropped": 1}'}
    trials.claim(db, t.id, "cpu0", "h")
    assert trials.requeue(db, t.id)
    assert capture.load(db, t.id) is None  # a new attempt counts from scratch
