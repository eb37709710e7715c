"""A partial trial (stopped before max_train_steps) is never the best: not in status, the TUI's ★,
the isolation plot, decide's "STUDY" side or a wizard's reference values; it is shown as partial."""

from __future__ import annotations

import json
from pathlib import Path

from runner.cli import main as cli
from runner.playbook.isolation import isolation_data
from runner.spec import load
from runner.wizards.decide import resolve_side
from runner.wizards.substudy import reference_values
from store import trials
from store.trials import TrialState
from tests.tui.tui_helpers import finish, registered, report, start
from tui.data.snapshot import View, read_studies, read_study_detail, study_data


def _study_with_a_stopped_leader(tmp_path):
    """width 4: #1 0.30 and #2 0.20 completed, #6 stopped at step 2 of 5 with 0.05; width 8: #3 0.25."""
    db, db_path, study = registered(tmp_path, manual=True)
    t = trials.list_for_study(db, study.id)
    finish(db, t[0].id, TrialState.COMPLETED, best=0.30, val=0.30)
    finish(db, t[1].id, TrialState.COMPLETED, best=0.20, val=0.20)
    finish(db, t[2].id, TrialState.COMPLETED, best=0.25, val=0.25)
    start(db, t[5].id)
    report(db, t[5].id, steps=3, best=0.05, val=0.05)
    assert trials.finish(db, t[5].id, TrialState.STOPPED, detail="stopped on request")
    return db, db_path, study, t


def test_a_stopped_trial_ahead_of_completed_ones_is_not_the_best(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the status table unwrapped
    db, db_path, study, t = _study_with_a_stopped_leader(tmp_path)

    assert cli(["--db", str(db_path), "status", study.name, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["studies"][0]
    assert (record["best_trial"], record["best_value"]) == (2, 0.20)
    stopped = next(r for r in record["trials"] if r["number"] == 6)
    assert stopped["partial"] is True and stopped["outcome"] == "stopped 2/5 ◐"
    assert record["counts"]["partial"] == 1

    assert cli(["--db", str(db_path), "status", study.name]) == 0
    text = capsys.readouterr().out
    assert "stopped 2/5 ◐" in text and "best val_loss = 0.2 (trial 2)" in text

    row = next(r for r in read_studies(db) if r.id == study.id)
    assert (row.best_trial, row.best_value) == (2, 0.20)
    detail = read_study_detail(db, View(study_id=study.id), row)
    assert detail.best == {t[1].id, t[2].id}  # ★: #2 for width 4, #3 for width 8; never the stopped #6
    data = study_data(study, detail.trials)
    assert {r.label: r.best_trial for r in isolation_data(data, "width")} == {"4": 2, "8": 3}

    assert resolve_side(db, study.name)["trial"] == 2
    assert resolve_side(db, f"{study.name}:width=4")["trial"] == 2
    spec = load(Path(study.config_path))
    assert reference_values(db, study, spec, from_trial=None, overrides={}, varied=set())["lr"] == 0.1


def test_the_studies_list_shows_the_best_full_run_and_the_store_offers_no_sql_best(tmp_path):
    """The studies screen's best column names trial 2, never the stopped #6 at 0.05; the store's
    summary carries counts only, so no view can take a best from SQL that ignores partial runs."""
    import asyncio

    from textual.widgets import DataTable

    from store import studies
    from tests.tui.tui_helpers import SIZE, cell, wait_for
    from tui.app import make_app

    db, db_path, study, _ = _study_with_a_stopped_leader(tmp_path)
    summary = studies.summarize(db, study)
    assert summary.counts["stopped"] == 1 and not hasattr(summary, "best_value")

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            key = next(iter(table.rows)).value
            assert cell(table, key, "best (trial)") == "0.2 (#2)"

    asyncio.run(scenario())
