"""Metrics read from printed lines: how a matched line's step is made, and what was not kept.

A study's `metrics` patterns (runner.spec.MetricPattern) are matched on every
stdout line. Each pattern has a step rule:

- "group": the `step` group is the step (an integer; `50.00` is read as 50);
- "epoch_batch": a printed counter that restarts every epoch; the step is
  (epoch - first_epoch) * batches + batch, `batches` being the per-epoch total
  printed on the same line (or fixed in the study);
- "epoch": an end-of-epoch line; it lands at (epoch - first_epoch + 1) * batches,
  the step where that epoch's training ends, with `batches` the per-epoch total
  last printed by an epoch_batch line of the same trial (or fixed in the study).
  A study with no batch lines at all counts its steps in epochs;
- "count": the n-th match (1, 2, 3, ...) of this pattern, or of every pattern
  that names the same `counter`.

CaptureState is what a trial's capture has learned so far (counters, the last
step of each series, what was dropped or repeated, with one sample line of each
kind). It is saved with the stdout offset in one transaction, so a restarted
runner carries on counting where the last one stopped. Pure: no I/O here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

from runner.spec import MetricPattern

SAMPLE_CHARS = 200  # a sample line is cut here: it is shown, not parsed again


@dataclass
class CaptureState:
    """What one trial's printed-line capture knows; JSON-able, saved with the stdout offset."""

    patterns: list[str] = field(default_factory=list)  # each pattern as the study wrote it
    matches: list[int] = field(default_factory=list)  # lines each pattern matched
    counters: dict[str, int] = field(default_factory=dict)  # step = "count" counters by name
    batches: int | None = None  # the per-epoch total last printed by an epoch_batch line
    last_step: dict[str, int] = field(default_factory=dict)  # per series: the last step stored
    out_of_order: int = 0  # points at or below their series' last step (a repeat, or a step back)
    dropped: int = 0  # matched lines without a usable step
    samples: dict[str, str] = field(default_factory=dict)  # 'out_of_order' | 'dropped' -> the first such line
    drop_reason: str | None = None  # why the first dropped line had no step
    progress_total: int | None = None  # steps of the whole run, when max_train_steps counts epochs

    @classmethod
    def start(cls, patterns: tuple[MetricPattern, ...], saved: str | None) -> CaptureState:
        """The saved state of a trial, or a fresh one for these patterns."""
        if saved:
            state = cls.load(saved)
            if len(state.matches) == len(patterns):
                return state
        return cls(patterns=[p.source for p in patterns], matches=[0] * len(patterns))

    @classmethod
    def load(cls, saved: str) -> CaptureState:
        """A state from its JSON (fields this version does not know are left out)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(saved).items() if k in known})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def _sample(self, kind: str, line: str) -> None:
        self.samples.setdefault(kind, line.strip()[:SAMPLE_CHARS])


class NoStep(ValueError):
    """A matched line whose step cannot be made; the message says why."""


def whole_number(text: str | None, group: str) -> int:
    """A printed counter as an int: '50' and '50.00' are 50; '50.5', '' or 'nan' raise NoStep."""
    if text is None:
        raise NoStep(f"the {group} group did not match")
    try:
        value = float(text)
    except ValueError:
        raise NoStep(f"{group} {text!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise NoStep(f"{group} {text!r} is not a whole number")
    return int(value)


def step_of(pattern: MetricPattern, index: int, match, state: CaptureState) -> int:
    """The global step of a matched line under its pattern's rule; raises NoStep."""
    rule = pattern.step_rule
    if rule == "group":
        step = whole_number(match.group("step"), "step")
    elif rule == "count":
        key = pattern.counter or f"pattern {index}"
        step = state.counters[key] = state.counters.get(key, 0) + 1
    elif rule == "epoch_batch":
        epoch = _epoch(pattern, match)
        batch = whole_number(match.group("batch"), "batch")
        batches = _batches(pattern, match, None)
        state.batches = batches
        step = epoch * batches + batch
    else:  # "epoch": the end of that epoch, in batches when the study counts them
        epochs_done = _epoch(pattern, match) + 1
        if not pattern.epochs_in_batches:
            return epochs_done
        step = epochs_done * _batches(pattern, match, state.batches)
    if step < 0:
        raise NoStep(f"step {step} is negative")
    return step


def _epoch(pattern: MetricPattern, match) -> int:
    """Epochs done before this one (0 for the first epoch, whatever the script counts from)."""
    epoch = whole_number(match.group("epoch"), "epoch") - pattern.first_epoch
    if epoch < 0:
        raise NoStep(f"epoch {epoch + pattern.first_epoch} is below first_epoch = {pattern.first_epoch}")
    return epoch


def _batches(pattern: MetricPattern, match, seen: int | None) -> int:
    if "batches" in match.re.groupindex and match.group("batches") is not None:
        batches = whole_number(match.group("batches"), "batches")
    elif pattern.batches is not None:
        batches = pattern.batches
    elif seen is not None:
        batches = seen
    else:
        raise NoStep("no batch line has printed the number of batches per epoch yet")
    if batches <= 0:
        raise NoStep(f"batches per epoch {batches} is not positive")
    return batches


def values_of(pattern: MetricPattern, match) -> list[tuple[str, float]]:
    """(metric, value) for each metric group that matched a number (NaN and inf included)."""
    out = []
    for name in pattern.metrics:
        text = match.group(name)
        if text is None:
            continue
        try:
            out.append((name, float(text)))
        except ValueError:
            continue  # matched something that is not a number
    return out


def check_order(state: CaptureState, name: str, step: int, line: str) -> None:
    """Count a point that does not move its series forward: a repeat, or a step back (a
    printed counter that restarted). It is still stored, and the store keeps one value
    per step, so it replaces any value already at that step: counted here, never silent."""
    last = state.last_step.get(name)
    if last is not None and step <= last:
        state.out_of_order += 1
        state._sample("out_of_order", line)
    else:
        state.last_step[name] = step


def update_progress_total(state: CaptureState, epochs: int | None) -> None:
    """With max_train_steps in epochs (`epochs`), the run's length in the steps the rules count:
    epochs x the batches per epoch the trial printed (or epochs, while steps count epochs)."""
    if epochs is not None:
        state.progress_total = epochs * state.batches if state.batches else epochs


def progress_totals(saved: dict[int, str]) -> dict[int, int]:
    """Trial id -> its run's length in steps, for trials whose study counts max_train_steps in epochs."""
    totals = {}
    for trial_id, text in saved.items():
        total = CaptureState.load(text).progress_total
        if total:
            totals[trial_id] = total
    return totals


def drop(state: CaptureState, why: str, line: str) -> None:
    state.dropped += 1
    if state.drop_reason is None:
        state.drop_reason = why
    state._sample("dropped", line)


# -- what a reader is told ---------------------------------------------------------


def unmatched_patterns(state: CaptureState) -> list[str]:
    return [p for p, n in zip(state.patterns, state.matches, strict=False) if n == 0]


def capture_notes(state: CaptureState, *, finished: bool) -> list[str]:
    """One line per thing the capture did not keep as printed, each with its sample line.

    A pattern that matched nothing is only news once the trial has finished.
    """
    notes = []
    if state.out_of_order:
        notes.append(f"{state.out_of_order} printed point(s) repeated or went back in step, replacing what "
                     "was stored at that step (a counter that restarts each epoch? give the pattern "
                     f"step = \"epoch_batch\" or \"count\"): {state.samples.get('out_of_order', '')}")
    if state.dropped:
        notes.append(f"{state.dropped} matched line(s) dropped, no usable step ({state.drop_reason}): "
                     f"{state.samples.get('dropped', '')}")
    if finished:
        notes.extend(f"pattern matched no line: '{p}'" for p in unmatched_patterns(state))
    return notes


def capture_record(saved: str | None, *, finished: bool) -> dict | None:
    """A trial's capture for `status --json` and `analyze --json` (None: no printed-line capture)."""
    if not saved:
        return None
    state = CaptureState.load(saved)
    return {
        "matched_lines": dict(zip(state.patterns, state.matches, strict=False)),
        "out_of_order": state.out_of_order,
        "dropped": state.dropped,
        "drop_reason": state.drop_reason,
        "samples": state.samples,
        "unmatched_patterns": unmatched_patterns(state) if finished else [],
        "batches_per_epoch": state.batches,
        "progress_total": state.progress_total,
        "notes": capture_notes(state, finished=finished),
    }
