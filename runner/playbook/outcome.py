"""How a trial ended, in one definition every view uses (status, export, analyze, the TUI).

A trial's outcome joins what the runner stored when it settled (state, reason, the
feasible flag) with the analysis' judgement of the finished trials ("failed to
train": it ran cleanly but its objective says it never trained). Whoever shows a
trial asks `outcome` for its label, its feasibility and why, and never re-derives
them from the stored columns: that is how the views came to disagree.

Partial trials (stopped or lost before max_train_steps) are shown with their progress
and a mark, and are never a best trial: their objective is from a shorter run than the
others'. Nor is a running one, until it has trained the whole budget and settled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

FAILED_TO_TRAIN = "failed to train"
PARTIAL_MARK = "◐"
# Judgements stored by an older rule are judged again (bump when the rule changes).
JUDGEMENT_RULE = "failed_to_train/2"  # /2: judged against its own curve and chance too
# States whose trials the judgement looks at: they ran to an end of their own.
JUDGED_STATES = ("completed", "failed")
_IN_PROGRESS = ("queued", "starting", "running")


@dataclass(frozen=True)
class Verdict:
    """The analysis' judgement of one finished trial, with the evidence in words."""

    label: str  # FAILED_TO_TRAIN
    why: str


@dataclass(frozen=True)
class Outcome:
    """One trial's outcome as every view shows it."""

    state: str
    label: str  # short: "completed", "failed (diverged)", "failed to train", "stopped 33/200 ◐"
    feasible: bool | None  # False: infeasible (by the runner or the analysis); None: unknown
    partial: bool  # stopped or lost before max_train_steps
    why: str  # who decided it and why, one line ("" for a plain completed or queued trial)
    infeasible_by: str | None = None  # the reason it is infeasible: "diverged", "oom", FAILED_TO_TRAIN...
    reached_end: bool = False  # trained the whole budget (or completed on its own)
    progress: str = ""  # "33/200": last reported step of max_train_steps
    verdict: Verdict | None = None  # the analysis' verdict, when it decided the outcome

    @property
    def infeasible(self) -> bool:
        return self.feasible is False

    @property
    def can_be_best(self) -> bool:
        """Whether its objective may be compared with other trials' for "best"."""
        return self.reached_end and not self.infeasible

    @property
    def long(self) -> str:
        """The state with every note, for a detail line: 'failed (exit, infeasible)'."""
        notes = []
        if self.state in ("failed", "completed") and self.infeasible_by:
            notes.append(self.infeasible_by)
        if self.infeasible:
            notes.append("infeasible")
        if self.partial:
            notes.append(f"partial {PARTIAL_MARK}: {self.progress} steps")
        return self.state + (f" ({', '.join(notes)})" if notes else "")


def reached_end(state: str, last_step: int | None, max_train_steps: int | None) -> bool:
    """Completed on its own, or reported a step at the end of the budget (steps count from 0 or 1)."""
    if state == "completed":
        return True
    return last_step is not None and max_train_steps is not None and last_step + 1 >= max_train_steps


def outcome(state: str, reason: str | None, feasible: bool | int | None, last_step: int | None,
            max_train_steps: int | None, verdict: Verdict | None = None,
            detail: str | None = None) -> Outcome:
    """The outcome of a trial from its stored row and the analysis' verdict (None: not judged or fine).

    A verdict counts only for a trial in JUDGED_STATES that the runner did not already
    mark infeasible: a queued trial (requeued since it was judged) has no outcome yet.
    """
    full = reached_end(state, last_step, max_train_steps)
    marked = None if feasible is None else bool(feasible)
    progress = f"{'-' if last_step is None else last_step}/{max_train_steps or '-'}"
    if state in _IN_PROGRESS:  # not partial (it has not ended), but not a best trial before it has
        return Outcome(state, state, None, False, "", progress=progress)
    if marked is False:
        cause = reason or "infeasible"
        return Outcome(state, f"{state} ({cause})" if reason else state, False, False,
                       f"runner: {detail or cause}", infeasible_by=cause, reached_end=full, progress=progress)
    if verdict is not None and state in JUDGED_STATES:
        return Outcome(state, verdict.label, False, False, f"analysis: {verdict.why}",
                       infeasible_by=verdict.label, reached_end=full, progress=progress, verdict=verdict)
    if state in ("stopped", "lost") and not full:
        why = f"{state} at step {progress}" + (f": {detail}" if detail else "")
        return Outcome(state, f"{state} {progress} {PARTIAL_MARK}", marked, True, why, progress=progress)
    label = f"{state} ({reason})" if reason else state
    return Outcome(state, label, marked, False, detail or "", reached_end=full, progress=progress)


@dataclass(frozen=True)
class Scored:
    """What picking a best trial needs of a trial."""

    number: int
    outcome: Outcome
    best_value: float | None


def pick_best(trials: Iterable[Scored], mode: str) -> Scored | None:
    """The best trial that may be one (see Outcome.can_be_best); ties go to the lower number."""
    sign = 1.0 if mode == "min" else -1.0
    eligible = [t for t in trials if t.best_value is not None and t.outcome.can_be_best]
    return min(eligible, key=lambda t: (sign * t.best_value, t.number), default=None)


def outcome_counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Trials per state, then 'infeasible' (by any cause), FAILED_TO_TRAIN and 'partial'.

    The state keys are the stored states, so a view that sums states (done, running)
    still can; 'infeasible' is the one number every view shows for infeasibility.
    """
    items = list(outcomes)
    counts = dict(Counter(o.state for o in items))
    counts["infeasible"] = sum(1 for o in items if o.infeasible)
    counts[FAILED_TO_TRAIN] = sum(1 for o in items if o.infeasible_by == FAILED_TO_TRAIN)
    counts["partial"] = sum(1 for o in items if o.partial)
    return counts


def infeasible_causes(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Infeasible trials by cause (runner reason or analysis verdict), most frequent first."""
    return dict(Counter(o.infeasible_by for o in outcomes if o.infeasible).most_common())


_NOT_STATES = ("infeasible", FAILED_TO_TRAIN, "partial")


def counts_line(counts: dict[str, int], causes: dict[str, int]) -> str:
    """The counts as every view writes them:
    'completed 12, failed 1, stopped 1; infeasible 3 (failed to train 2, diverged 1); partial 1 ◐'."""
    text = ", ".join(f"{k} {v}" for k, v in counts.items() if v and k not in _NOT_STATES) or "no trials"
    if counts.get("infeasible"):
        why = ", ".join(f"{cause} {n}" for cause, n in causes.items())
        text += f"; infeasible {counts['infeasible']}" + (f" ({why})" if why else "")
    if counts.get("partial"):
        text += f"; partial {counts['partial']} {PARTIAL_MARK}"
    return text
