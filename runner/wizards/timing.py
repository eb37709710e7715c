"""How long a wizard's stage will take, measured from the trials this machine already ran.

A trial's wall time is not steps x a rate: every trial first pays its start-up (the
interpreter, imports, data, building the model: about 2 s for the digits sample, more
than all of a 30-step probe trial's training) and then its steps, then a tail (the last
evaluation, saving). Estimating a short stage from a long study's "seconds per step"
spread the start-up over the long study's steps and came out 5-6x low. So each finished
trial is split, from its reported points' wall times, into start-up (spawn to its first
point, less that point's share of steps), time per step (between its first and last
point) and tail (last point to the end), and a stage costs waves x (start-up + tail +
steps x time per step), each the median over the trials measured.

Which trials: the completed ones of the study the stage derives from and of every
study running the same command (a wizard's earlier stages, a re-run); the most recent
ones, since the machine may have changed. When none of them ran, the start-up measured
on any other study here is a lower bound ("at least"); when nothing ran, it is unknown.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from sqlite_utils import Database

from store import metrics as metric_store
from store import studies, trials
from store.studies import Study
from store.trials import Trial, TrialState

RECENT_TRIALS = 20  # trials measured per estimate: the latest are the machine as it is now
WALL_POINTS = 64  # points read per trial: the first and last wall times are all it needs
PREFERRED_METRICS = ("train_loss", "loss", "examples_per_s")  # reported every step by most scripts


@dataclass(frozen=True)
class TrialSplit:
    """One finished trial's wall time, split: start-up, seconds per step, tail (seconds)."""

    startup_s: float
    step_s: float | None  # None when it reported a single step
    tail_s: float


@dataclass(frozen=True)
class Timing:
    """Medians over the trials measured, and what they were measured on."""

    startup_s: float
    step_s: float | None  # None: no trial of this command measured (a lower bound from start-up only)
    tail_s: float
    trials: int
    source: str  # "digits" or "other studies' start-up"

    def trial_seconds(self, steps: int) -> float:
        return self.startup_s + self.tail_s + (self.step_s or 0.0) * steps

    @property
    def lower_bound(self) -> bool:
        return self.step_s is None


def split_trial(started_at: float, ended_at: float, steps: list[int],
                walls: list[float | None]) -> TrialSplit | None:
    """Start-up, per-step time and tail of one trial from its points' (step, wall) pairs (step order)."""
    pairs = [(s, w) for s, w in zip(steps, walls, strict=True) if w is not None and math.isfinite(w)]
    if not pairs or ended_at < started_at:
        return None
    (s0, w0), (s1, w1) = pairs[0], pairs[-1]
    step_s = (w1 - w0) / (s1 - s0) if s1 > s0 else None
    # The first point came after its own steps were trained: they are not start-up.
    startup = max(0.0, w0 - started_at - (step_s or 0.0) * max(s0, 0))
    return TrialSplit(startup, step_s, max(0.0, ended_at - w1))


def combine(splits: Iterable[TrialSplit], source: str) -> Timing | None:
    """Medians of the splits (the per-step time over those that have one)."""
    items = list(splits)
    if not items:
        return None
    steps = [s.step_s for s in items if s.step_s is not None]
    return Timing(statistics.median(s.startup_s for s in items), statistics.median(steps) if steps else None,
                  statistics.median(s.tail_s for s in items), len(items), source)


def stage_seconds(timing: Timing | None, trial_count: int, concurrency: int, steps: int) -> float | None:
    """Wall time of a stage: its trials in waves of `concurrency`, each start-up + tail + steps."""
    if timing is None:
        return None
    waves = math.ceil(trial_count / max(concurrency, 1))
    return waves * timing.trial_seconds(steps)


def trial_split(db: Database, t: Trial) -> TrialSplit | None:
    """One finished trial's start-up, per-step time and tail, from its stored points (None if unknown)."""
    # The runner's own series (runner.gpu_util, ...) are stepped in seconds, not training steps.
    names = [n for n in metric_store.metric_names(db, t.id) if not n.startswith("runner.")]
    name = next((n for n in PREFERRED_METRICS if n in names), names[0] if names else None)
    if name is None or t.started_at is None or t.ended_at is None:
        return None
    series = metric_store.read_series(db, t.id, name, WALL_POINTS)
    return split_trial(t.started_at, t.ended_at, series.steps, series.walls)


def _recent_completed(db: Database, chosen: list[Study]) -> list[Trial]:
    done = [t for s in chosen for t in trials.list_for_study(db, s.id)
            if t.state is TrialState.COMPLETED and t.started_at and t.ended_at]
    return sorted(done, key=lambda t: t.ended_at, reverse=True)[:RECENT_TRIALS]


def measured_timing(db: Database, base: Study) -> Timing | None:
    """The timing of `base`'s command on this machine; else a start-up-only lower bound; else None."""
    every = studies.list_all(db)
    same = [s for s in every if s.id == base.id or s.command_template == base.command_template]
    own = [x for x in (trial_split(db, t) for t in _recent_completed(db, same)) if x is not None]
    if own:
        return combine(own, base.name)
    rest = [s for s in every if s not in same]
    others = [x for x in (trial_split(db, t) for t in _recent_completed(db, rest)) if x is not None]
    timing = combine(others, "other studies' start-up")
    return None if timing is None else Timing(timing.startup_s, None, 0.0, timing.trials, timing.source)


def describe_estimate(timing: Timing | None, seconds: float | None, steps: int) -> str:
    """'about 2 min (per trial 2.1 s start-up + 30 steps x 3.1 ms, from 5 trials of digits)'."""
    if timing is None or seconds is None:
        return "time unknown (no trial of this command has finished on this machine yet)"
    if timing.lower_bound:
        return (f"at least {duration(seconds)} ({fmt_seconds(timing.startup_s)} start-up per trial, "
                f"measured on {timing.trials} trial(s) of other studies; no trial of this command has "
                "finished here yet)")
    return (f"about {duration(seconds)} (per trial {fmt_seconds(timing.startup_s)} start-up + "
            f"{steps} steps x {fmt_seconds(timing.step_s)}, from {timing.trials} trial(s) of "
            f"{timing.source})")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
