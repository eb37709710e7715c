"""The stored judgements: judged once per change of the study's finished trials, then read by every view."""

from __future__ import annotations

from runner.judging import study_outcomes
from runner.playbook.outcome import FAILED_TO_TRAIN, JUDGEMENT_RULE
from store import judgements, trials
from store.trials import TrialState
from tests.tui.tui_helpers import finish, registered


def test_judged_once_then_read_until_another_trial_finishes(tmp_path):
    db, _, study = registered(tmp_path, manual=True, expect=6)
    t = trials.list_for_study(db, study.id)
    for row, value in zip(t[:5], (0.20, 0.21, 0.22, 0.19, 0.20), strict=True):
        finish(db, row.id, TrialState.COMPLETED, best=value, val=value)
    assert judgements.stale(db, study.id, JUDGEMENT_RULE)
    first = study_outcomes(db, study)
    assert first.counts["infeasible"] == 0 and first.outcomes[6].label == "queued"
    assert not judgements.stale(db, study.id, JUDGEMENT_RULE)  # stored: the next reader only reads
    assert study_outcomes(db, study).outcomes == first.outcomes

    finish(db, t[5].id, TrialState.COMPLETED, best=0.90, val=0.90)  # far worse than the five others
    assert judgements.stale(db, study.id, JUDGEMENT_RULE)
    judged = study_outcomes(db, study)
    assert judged.outcomes[6].label == FAILED_TO_TRAIN and judged.counts["infeasible"] == 1
    assert judged.best_trial == 4
    stored = {r.number: (r.verdict, r.why) for r in judgements.outcome_rows(db, study.id)}
    assert stored[6][0] == FAILED_TO_TRAIN and "robust sd worse" in stored[6][1]
    assert all(stored[n] == (None, None) for n in range(1, 6))
    assert not judgements.stale(db, study.id, JUDGEMENT_RULE)
    assert judgements.stale(db, study.id, "a newer rule")  # a changed rule judges again
