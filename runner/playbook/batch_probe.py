"""Choosing the batch size: a throughput probe over batch sizes 2^k, and what it says.

The playbook: batch size is not tuned for validation performance, it sets training speed.
Run short jobs at doubling batch sizes until memory runs out (or a cap), measure throughput
(examples/second) after the warm-up steps, and consider only batch sizes up to where throughput
stops growing, even if larger ones fit. While the accelerator is not saturated, doubling the
batch about doubles throughput (time per step stays constant); when it stops doing so while
memory still allows much more, the likely cause is a bottleneck (input pipeline, I/O, sync).

Pure functions: per-step throughput samples in, a table, a recommendation and a verdict out.
Units: batch sizes in examples, throughput in examples/second, times in seconds, memory in MB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from runner.playbook.check import fmt, jsonable

OUTCOMES = ("ok", "oom", "failed")
# Row outcome for an ok run that left too few steps to measure after the warm-up.
TOO_SHORT = "too short"
# The first steps pay for compilation, cuDNN autotuning, allocator growth and a cold input
# pipeline; five steps cover that for ordinary PyTorch trainings.
WARMUP_STEPS = 5
# Fewer measured steps than this and the median and the quartiles say little about the rate.
MIN_MEASURED_STEPS = 5
# Scaling efficiency (achieved / ideal throughput ratio) at or above which a doubling counts as
# "nearly doubling": 0.8 leaves room for measurement noise and small per-step fixed costs.
NEAR_DOUBLING = 0.8
# A doubling still "buys throughput" when throughput grows by at least 10%: less than that is
# within step-to-step noise and not worth the re-tuning a new batch size costs.
MIN_GAIN = 0.10
# "Early": the knee comes while at least this many further doublings still ran without running
# out of memory, i.e. memory allowed >= 4x the knee's batch. A saturated accelerator stops
# scaling near where memory runs out; stopping far below it points at something else.
EARLY_DOUBLINGS = 2
# Relative spread ((p75 - p25) / median) above which a throughput estimate is called noisy.
NOISY_SPREAD = 0.25

ALWAYS_ADVICE = (
    "changing the batch size means re-tuning most hyperparameters: learning rate, momentum and "
    "regularization",
    "gradient accumulation buys no throughput: use the largest batch that fits instead",
    "repeat the probe whenever the model or the optimizer changes",
)
BOTTLENECK_ADVICE = (
    "throughput stopped scaling well before memory ran out: profile the input pipeline (data loader "
    "workers, prefetching, disk or network I/O, host-side augmentation) and host-device synchronization "
    "(.item(), logging every step) before choosing a bigger batch"
)


@dataclass(frozen=True)
class ProbeRun:
    """One short training run at one batch size, as the runner observed it."""

    batch_size: int
    outcome: str                       # "ok" | "oom" | "failed"
    examples_per_s: tuple[float, ...]  # one sample per training step, in step order, warm-up steps INCLUDED
    peak_memory_mb: float | None = None
    detail: str = ""                   # e.g. the failure reason text


@dataclass(frozen=True)
class ThroughputEstimate:
    """A run's throughput after skipping the warm-up steps."""

    examples_per_s: float    # median over the measured steps
    spread: float            # relative spread: (p75 - p25) / median
    steps: int               # samples used (after skipping warm-up)
    time_per_step_s: float   # batch_size / examples_per_s


@dataclass(frozen=True)
class ProbeRow:
    """One line of the probe's table (outcome "too short": ok, but too few steps to measure)."""

    batch_size: int
    outcome: str
    examples_per_s: float | None
    spread: float | None
    time_per_step_s: float | None
    peak_memory_mb: float | None
    scaling_efficiency: float | None   # thr(b) / (2 * thr(b/2)) against the previous ok row (1.0 = perfect doubling); None for the first
    measured_steps: int = 0            # samples the estimate used (after the warm-up)
    detail: str = ""                   # the run's failure reason, if any


@dataclass(frozen=True)
class ProbeResult:
    """The probe's table, its recommendation, and why."""

    rows: tuple[ProbeRow, ...]
    recommended: int | None      # the largest batch size that still buys throughput
    knee: int | None             # batch size where doubling stopped (nearly) doubling throughput for good
    stopped_by: str              # "oom" | "cap" | "failed" | "incomplete"
    bottleneck: bool             # throughput stopped scaling early (well before memory ran out / the cap): likely input pipeline or sync bottleneck
    summary: str                 # one plain sentence
    advice: tuple[str, ...]      # always includes: re-tune lr, momentum, regularization; gradient accumulation buys no throughput
    cap: int = 0                 # the largest batch size the probe was allowed to try
    skip: int = WARMUP_STEPS     # warm-up steps left out of each estimate

    def row(self, batch_size: int | None) -> ProbeRow | None:
        """The table row of one batch size (None when it was not run)."""
        return next((r for r in self.rows if r.batch_size == batch_size), None)

    def to_json(self) -> dict:
        """Every number and string, strict JSON (non-finite floats become None)."""
        return jsonable({
            **asdict(self),
            "thresholds": {"warmup_steps": self.skip, "min_measured_steps": MIN_MEASURED_STEPS,
                           "near_doubling": NEAR_DOUBLING, "min_gain": MIN_GAIN,
                           "early_doublings": EARLY_DOUBLINGS, "noisy_spread": NOISY_SPREAD},
        })


def estimate(run: ProbeRun, skip: int = WARMUP_STEPS) -> ThroughputEstimate | None:
    """Median throughput (examples/s) of a run's steps after the first `skip`, with its spread.

    Non-finite or non-positive samples (a step whose timer failed) are left out. None when
    fewer than MIN_MEASURED_STEPS samples remain: the run was too short to measure.
    """
    samples = np.asarray(run.examples_per_s[max(skip, 0):], dtype=float)
    samples = samples[np.isfinite(samples) & (samples > 0)]
    if samples.size < MIN_MEASURED_STEPS:
        return None
    p25, median, p75 = (float(x) for x in np.percentile(samples, [25, 50, 75]))
    return ThroughputEstimate(examples_per_s=median, spread=(p75 - p25) / median, steps=int(samples.size),
                              time_per_step_s=run.batch_size / median)


def next_batch_size(runs: Sequence[ProbeRun], start: int, cap: int) -> int | None:
    """The next batch size to try: `start` first, then twice the largest ok one.

    None when the probe is done: the last run (runs are in the order they ran) was oom or
    failed, or the next doubling would exceed `cap`.
    """
    if start < 1 or cap < start:
        raise ValueError(f"need 1 <= start <= cap, got start={start}, cap={cap}")
    if not runs:
        return start
    if runs[-1].outcome != "ok":
        return None
    following = 2 * max(r.batch_size for r in runs if r.outcome == "ok")
    return following if following <= cap else None


def training_time_s(time_per_step_s: float, steps: int) -> float:
    """Training time in seconds: time per step (s) x number of steps."""
    if not (math.isfinite(time_per_step_s) and time_per_step_s >= 0) or steps < 0:
        raise ValueError(f"need a finite time per step >= 0 and steps >= 0, got {time_per_step_s}, {steps}")
    return time_per_step_s * steps


def _stopped_by(runs: Sequence[ProbeRun], cap: int) -> str:
    if not runs:
        return "incomplete"
    if runs[-1].outcome in ("oom", "failed"):
        return runs[-1].outcome
    ok = [r.batch_size for r in runs if r.outcome == "ok"]
    return "cap" if ok and 2 * max(ok) > cap else "incomplete"


def _rows(runs: Sequence[ProbeRun], skip: int) -> tuple[ProbeRow, ...]:
    """The table, by batch size; a later run at the same size replaces an earlier one (a rerun)."""
    latest = {r.batch_size: r for r in runs}
    rows: list[ProbeRow] = []
    previous: ProbeRow | None = None  # the last measured ok row
    for b in sorted(latest):
        run = latest[b]
        if run.outcome not in OUTCOMES:
            raise ValueError(f"batch size {b}: unknown outcome {run.outcome!r} (expected one of {OUTCOMES})")
        est = estimate(run, skip) if run.outcome == "ok" else None
        if est is None:
            outcome = TOO_SHORT if run.outcome == "ok" else run.outcome
            rows.append(ProbeRow(b, outcome, None, None, None, run.peak_memory_mb, None, 0, run.detail))
            continue
        efficiency = None
        if previous is not None:
            # Achieved over ideal (linear) growth; for a doubling, thr(b) / (2 thr(b/2)).
            efficiency = (est.examples_per_s / previous.examples_per_s) / (b / previous.batch_size)
        row = ProbeRow(b, "ok", est.examples_per_s, est.spread, est.time_per_step_s, run.peak_memory_mb,
                       efficiency, est.steps, run.detail)
        rows.append(row)
        previous = row
    return tuple(rows)


def _gain_per_doubling(row: ProbeRow, previous: ProbeRow) -> float:
    """Relative throughput growth per doubling of the batch between two measured rows."""
    doublings = math.log2(row.batch_size / previous.batch_size)
    return (row.examples_per_s / previous.examples_per_s) ** (1.0 / doublings) - 1.0


def _recommended(measured: list[ProbeRow]) -> int | None:
    """The smallest batch size that no larger measured one beats by MIN_GAIN throughput per doubling.

    Walking up the sizes, a larger one takes over when it buys at least MIN_GAIN per doubling
    over the one held so far. One flat step (a noisy or throttled measurement) does not end the
    walk: a size measured much faster further up still wins.
    """
    if not measured:
        return None
    best = measured[0]
    for row in measured[1:]:
        if _gain_per_doubling(row, best) >= MIN_GAIN:
            best = row
    return best.batch_size


def _short_of_doubling(row: ProbeRow) -> bool:
    return row.scaling_efficiency is not None and row.scaling_efficiency < NEAR_DOUBLING


def _knee(measured: list[ProbeRow]) -> int | None:
    """Where doubling stops (nearly) doubling throughput for good: the first size short of it
    after which no larger size nearly doubles again. A flat step that larger sizes recover from
    (a throttled or noisy run) is not the knee: the recommendation looks past it, and so does this."""
    knee = None
    for row in measured:
        if not _short_of_doubling(row):
            knee = None
        elif knee is None:
            knee = row.batch_size
    return knee


def _passing_flat_steps(measured: list[ProbeRow], knee: int | None) -> list[int]:
    """Sizes short of doubling that larger sizes scaled past again (below the knee, if any)."""
    return [r.batch_size for r in measured if _short_of_doubling(r) and (knee is None or r.batch_size < knee)]


def _is_early(knee: int | None, rows: tuple[ProbeRow, ...]) -> bool:
    """At least EARLY_DOUBLINGS doublings beyond the knee still ran without running out of memory."""
    if knee is None:
        return False
    fitted = [r.batch_size for r in rows if r.outcome in ("ok", TOO_SHORT) and r.batch_size > knee]
    return bool(fitted) and math.log2(max(fitted) / knee) >= EARLY_DOUBLINGS - 1e-9


def _what_stopped(stopped_by: str, runs: Sequence[ProbeRun], cap: int) -> str:
    last = runs[-1] if runs else None
    if stopped_by == "oom" and last is not None:
        return f"batch size {last.batch_size} ran out of memory"
    if stopped_by == "failed" and last is not None:
        return f"batch size {last.batch_size} failed" + (f" ({last.detail})" if last.detail else "")
    if stopped_by == "cap":
        largest = max(r.batch_size for r in runs if r.outcome == "ok")
        return f"the probe stopped at {largest}: the next doubling would pass the cap of {cap}"
    return "the probe has not finished"


def _summary(runs: Sequence[ProbeRun], rows: tuple[ProbeRow, ...], recommended: int | None,
             knee: int | None, stopped_by: str, bottleneck: bool, cap: int) -> str:
    stop = _what_stopped(stopped_by, runs, cap)
    measured = [r for r in rows if r.outcome == "ok"]
    if not measured:
        return f"no batch size gave a throughput measurement: {stop}"
    rec = measured[[r.batch_size for r in measured].index(recommended)]
    rec_text = f"recommended batch size {recommended} ({fmt(rec.examples_per_s)} examples/s)"
    if bottleneck:
        largest = max(r.batch_size for r in rows if r.outcome in ("ok", TOO_SHORT))
        return (f"doubling stopped (nearly) doubling throughput early, at {knee}, while memory allowed up to {largest} "
                f"(likely an input pipeline or synchronization bottleneck); {rec_text}; {stop}")
    if knee is not None:
        return f"doubling stopped (nearly) doubling throughput at {knee} (accelerator saturated); {rec_text}; {stop}"
    if stopped_by == "oom":
        return f"throughput scaled until memory ran out ({stop}); {rec_text}"
    if stopped_by == "cap":
        return f"throughput scaled until the cap of {cap}; {rec_text}"
    return f"throughput scaled up to {measured[-1].batch_size} so far; {rec_text}; {stop}"


def _advice(rows: tuple[ProbeRow, ...], measured: list[ProbeRow], knee: int | None, bottleneck: bool,
            stopped_by: str, skip: int) -> tuple[str, ...]:
    advice: list[str] = []
    if bottleneck:
        advice.append(BOTTLENECK_ADVICE)
    flat = _passing_flat_steps(measured, knee)
    if flat:
        advice.append(f"batch size(s) {', '.join(map(str, flat))} fell short of doubling throughput, yet larger "
                      "sizes scaled again: a throttled or noisy run? rerun those sizes before trusting the table")
    if not measured and rows and rows[0].outcome == "oom":
        advice.append(f"even batch size {rows[0].batch_size} runs out of memory: start the probe smaller")
    if stopped_by == "failed":
        advice.append("a run failed for a reason other than memory: read its log before trusting the probe")
    for r in rows:
        if r.outcome == TOO_SHORT:
            advice.append(f"batch size {r.batch_size}: too short to measure (fewer than {MIN_MEASURED_STEPS} "
                          f"steps after skipping {skip} warm-up steps): run more steps")
    noisy = [r.batch_size for r in measured if r.spread is not None and r.spread > NOISY_SPREAD]
    if noisy:
        advice.append(f"throughput varies by more than {NOISY_SPREAD:.0%} step to step at batch size(s) "
                      f"{', '.join(map(str, noisy))}: measure more steps for a stable estimate")
    return tuple(advice) + ALWAYS_ADVICE


def decide(runs: Sequence[ProbeRun], *, cap: int, skip: int = WARMUP_STEPS) -> ProbeResult:
    """The probe's table, knee, recommendation and verdict from its runs (in the order they ran).

    knee: the first batch size whose scaling efficiency against the previous measured size is
    below NEAR_DOUBLING, with no larger size nearly doubling again (a flat step that larger sizes
    recover from is not the knee, and the recommendation looks past it alike). recommended: the largest batch size reached while every doubling on the
    way bought at least MIN_GAIN more throughput. bottleneck: the knee came early, i.e. at least
    EARLY_DOUBLINGS more doublings beyond it still fitted in memory (ran without OOM).
    """
    rows = _rows(runs, skip)
    measured = [r for r in rows if r.outcome == "ok"]
    recommended = _recommended(measured)
    knee = _knee(measured)
    stopped_by = _stopped_by(runs, cap)
    bottleneck = _is_early(knee, rows)
    return ProbeResult(rows=rows, recommended=recommended, knee=knee, stopped_by=stopped_by,
                       bottleneck=bottleneck,
                       summary=_summary(runs, rows, recommended, knee, stopped_by, bottleneck, cap),
                       advice=_advice(rows, measured, knee, bottleneck, stopped_by, skip), cap=cap, skip=skip)
