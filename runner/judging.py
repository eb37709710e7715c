"""Every trial's outcome from the store, the analysis' judgement included, the same for every view.

Where the judgement comes from: "failed to train" is a judgement of a trial against the
study's other finished trials (runner.playbook.infeasible.failed_to_train), so it can change
whenever another trial finishes, and a better rule may read curves. It is therefore judged
once per change, not once per view: the first reader (status, export, analyze, the TUI)
that finds the study's judgements stale (a trial finished or went back to the queue since,
or they were made by an older rule: store.judgements.stale) judges every finished trial
and stores the verdicts; every other reader reads them. `analyze` and the TUI's checklist
run failed_to_train on the same data, so their counts agree with the stored ones. A
database that cannot be written (read-only, or locked past the timeout) still gets the
fresh verdicts, in memory.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner.playbook.check import fmt
from runner.playbook.data import CurveData, StudyData
from runner.playbook.outcome import (
    FAILED_TO_TRAIN,
    JUDGED_STATES,
    JUDGEMENT_RULE,
    Outcome,
    Scored,
    Verdict,
    outcome,
    outcome_counts,
    pick_best,
)
from runner.printed import progress_totals
from store import capture, judgements
from store.judgements import OutcomeRow
from store.studies import Study

if TYPE_CHECKING:  # imported by store first (store.db keeps numpy out of a read-only command)
    from sqlite_utils import Database


def judge(study: StudyData, curves: CurveData | None = None) -> dict[int, Verdict]:
    """The analysis' verdicts on a study's finished trials: trial number -> Verdict (only those it flags).

    `curves` holds the objective curves the rule reads (its own first evaluation, chance level):
    the same downsampled curves `analyze` loads, so both judge the same data.
    """
    from runner.playbook.infeasible import FAILED_TO_TRAIN_SIGMAS, failed_to_train

    values = {t.number: t.best_value for t in study.trials}
    return {number: Verdict(FAILED_TO_TRAIN, _why(found, study.objective, values.get(number),
                                                  FAILED_TO_TRAIN_SIGMAS))
            for number, found in failed_to_train(study, curves).items()}


def _why(found, objective: str, value: float | None, limit: float) -> str:
    """The evidence of a verdict in words (the rule may hand back sigmas, a text, or a record with one)."""
    if isinstance(found, str):
        return found
    if isinstance(found, dict) and (text := found.get("why") or found.get("reason")):
        return str(text)
    if isinstance(found, (int, float)):
        return (f"best {objective} {fmt(value)} is {found:.2f} robust sd worse than the median of the "
                f"study's finished trials (more than {limit:g} counts as failed to train)")
    return f"judged {FAILED_TO_TRAIN} ({found})"


@dataclass(frozen=True)
class StudyOutcomes:
    """A study's trials as every view shows them: outcomes, counts, the best trial."""

    rows: tuple[OutcomeRow, ...]
    outcomes: dict[int, Outcome]  # by trial number
    counts: dict[str, int]  # see runner.playbook.outcome.outcome_counts
    best_trial: int | None
    best_value: float | None
    max_train_steps: int

    def of(self, number: int, state: str, reason: str | None, feasible: int | bool | None,
           last_step: int | None, detail: str | None = None) -> Outcome:
        """The outcome of a trial read separately: the stored one, unless it has moved on since
        (then its own, without a verdict until it is judged)."""
        o = self.outcomes.get(number)
        if o is None or o.state != state:
            o = outcome(state, reason, feasible, last_step, self.max_train_steps, detail=detail)
        return o


def verdicts(db: Database, study: Study, rows: list[OutcomeRow]) -> dict[int, Verdict]:
    """The study's verdicts (trial number -> Verdict): stored, or judged now (and stored) when stale."""
    if not judgements.stale(db, study.id, JUDGEMENT_RULE):
        return {r.number: Verdict(r.verdict, r.why or "") for r in rows if r.verdict}
    from runner.study_data import load_curves, load_study_data

    found = judge(load_study_data(db, study), load_curves(db, study, metrics=[study.objective_metric]))
    judged = {r.id: ((found[r.number].label, found[r.number].why) if r.number in found else (None, None))
              for r in rows if r.state in JUDGED_STATES}
    try:
        judgements.replace_for_study(db, study.id, judged, JUDGEMENT_RULE)
    except sqlite3.OperationalError:  # read-only or locked: the answer is the same, unstored
        pass
    return found


def study_outcomes(db: Database, study: Study) -> StudyOutcomes:
    """Every trial's outcome, the counts and the best trial, judged where the store is stale."""
    rows = judgements.outcome_rows(db, study.id)
    found = verdicts(db, study, rows)
    # A run's length in its own steps: max_train_steps, or its batches when that counts epochs (step_unit).
    totals = progress_totals(capture.for_study(db, study.id))
    outcomes = {r.number: outcome(r.state, r.reason, r.feasible, r.last_step,
                                  totals.get(r.id) or study.max_train_steps, found.get(r.number), r.detail)
                for r in rows}
    rows = tuple(r if r.number not in found else _with_verdict(r, found[r.number]) for r in rows)
    best = pick_best((Scored(r.number, outcomes[r.number], r.best_value) for r in rows), study.objective_mode)
    return StudyOutcomes(rows, outcomes, outcome_counts(outcomes.values()),
                         best.number if best else None, best.best_value if best else None,
                         study.max_train_steps)


def _with_verdict(row: OutcomeRow, v: Verdict) -> OutcomeRow:
    from dataclasses import replace

    return replace(row, verdict=v.label, why=v.why)
