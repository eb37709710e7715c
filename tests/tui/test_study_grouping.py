"""The studies list: a wizard's stage studies sit under the study the wizard works on, marked."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.text import Text

from store import wizards as wizard_store
from tui.data.snapshot import read_studies
from tui.widgets import tables

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from test_store import add_study  # noqa: E402


def test_stage_studies_follow_their_base_study_marked_as_stages(db):
    for name in ("digits", "other", "digits.probe-batch.probe", "tiny", "w1.lr-sweep", "orphan.x.stage"):
        add_study(db, name)
    wizard_store.create_or_resume(db, "probe-batch", "digits.probe-batch", "digits", {}, "probe")
    wizard_store.create_or_resume(db, "warmup", "w1", "tiny", {}, "lr-sweep")
    wizard_store.create_or_resume(db, "warmup", "orphan.x", "gone", {}, "lr-sweep")
    rows = read_studies(db)
    assert [r.name for r in rows] == ["digits", "digits.probe-batch.probe", "other", "tiny", "w1.lr-sweep",
                                      "orphan.x.stage"]
    assert [r.stage_of for r in rows] == [None, "digits", None, None, "tiny", "gone"]
    name = next(c for c in tables.STUDY_COLUMNS if c.key == "name")
    shown: Text = name.render(rows[1])
    assert shown.plain == "↳ digits.probe-batch.probe" and shown.style == "dim"
    assert name.render(rows[0]).plain == "digits"
