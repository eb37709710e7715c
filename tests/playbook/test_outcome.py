"""runner.playbook.outcome: one label, feasibility and reason per trial, and who may be the best."""

from __future__ import annotations

from runner.playbook.data import StudyData, TrialResult
from runner.playbook.isolation import best_per_scientific
from runner.playbook.outcome import (
    FAILED_TO_TRAIN,
    Scored,
    Verdict,
    counts_line,
    infeasible_causes,
    outcome,
    outcome_counts,
    pick_best,
)

DEAD = Verdict(FAILED_TO_TRAIN, "val_error 0.9 is 20 robust sd worse than the median")


def test_labels_feasibility_and_reasons():
    done = outcome("completed", None, 1, 199, 200)
    assert (done.label, done.feasible, done.partial, done.can_be_best) == ("completed", True, False, True)
    diverged = outcome("failed", "diverged", 0, 40, 200, detail="reported a NaN loss")
    assert (diverged.label, diverged.feasible) == ("failed (diverged)", False)
    assert diverged.infeasible_by == "diverged"
    assert diverged.why == "runner: reported a NaN loss" and diverged.long == "failed (diverged, infeasible)"
    judged = outcome("completed", None, 1, 199, 200, DEAD)
    assert (judged.label, judged.feasible, judged.can_be_best) == (FAILED_TO_TRAIN, False, False)
    assert judged.why == f"analysis: {DEAD.why}" and judged.verdict == DEAD


def test_partial_trials_are_shown_with_their_progress_and_never_best():
    stopped = outcome("stopped", None, None, 33, 200)
    assert (stopped.label, stopped.partial, stopped.can_be_best) == ("stopped 33/200 ◐", True, False)
    assert stopped.long == "stopped (partial ◐: 33/200 steps)"
    assert outcome("lost", None, None, 10, 200).label == "lost 10/200 ◐"
    running = outcome("running", None, None, 33, 200)
    assert not running.partial and not running.can_be_best  # not ended, not yet comparable
    # Stopped at the very end (steps counted from 0 or 1): a full run.
    assert outcome("stopped", None, None, 199, 200).can_be_best
    assert not outcome("queued", None, None, None, 200).partial


def test_a_verdict_counts_only_for_a_finished_trial_the_runner_did_not_mark():
    assert outcome("queued", None, None, None, 200, DEAD).feasible is None  # requeued since it was judged
    assert outcome("failed", "oom", 0, 5, 200, DEAD).infeasible_by == "oom"


def test_pick_best_skips_partial_and_infeasible_trials():
    rows = [Scored(1, outcome("completed", None, 1, 199, 200), 0.30),
            Scored(2, outcome("stopped", None, None, 33, 200), 0.05),
            Scored(3, outcome("completed", None, 1, 199, 200, DEAD), 0.01),
            Scored(4, outcome("completed", None, 1, 199, 200), 0.20)]
    assert pick_best(rows, "min").number == 4
    assert pick_best(rows, "max").number == 1
    assert pick_best(rows[1:3], "min") is None


def test_counts_and_their_line():
    outcomes = [outcome("completed", None, 1, 199, 200), outcome("completed", None, 1, 199, 200, DEAD),
                outcome("failed", "diverged", 0, 4, 200), outcome("stopped", None, None, 33, 200)]
    counts = outcome_counts(outcomes)
    assert counts == {"completed": 2, "failed": 1, "stopped": 1, "infeasible": 2, FAILED_TO_TRAIN: 1,
                      "partial": 1}
    assert counts_line(counts, infeasible_causes(outcomes)) == (
        "completed 2, failed 1, stopped 1; infeasible 2 (failed to train 1, diverged 1); partial 1 ◐")


def test_best_per_scientific_ignores_a_stopped_leader():
    trials = (TrialResult(1, "completed", {"w": 4}, feasible=True, best_value=0.3, last_step=200),
              TrialResult(2, "stopped", {"w": 4}, best_value=0.1, last_step=33),
              TrialResult(3, "completed", {"w": 4}, feasible=True, best_value=0.9, last_step=200,
                          verdict=DEAD))
    study = StudyData("s", "loss", "min", 200, (), trials)
    assert [t.number for t in best_per_scientific(study).values()] == [1]
    assert [t.number for t in study.ranked()] == [1, 3]
