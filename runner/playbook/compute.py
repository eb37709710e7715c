"""Compare by compute, not only by steps (essay 003): curves on a compute axis, the Pareto frontier
"best objective reached by compute c", and which trial reaches a target first.

The compute axis is the first of these every compared trial can give (one kind for all):
  flops    a cumulative `flops` metric the script reports;
  seconds  a cumulative `elapsed_s` metric; else per-point wall times on the objective curve
           (`Curve.wall`); else the reported throughput `examples_per_s` integrated over steps
           with the trial's `batch_size` (training time, evaluation excluded); else the
           trial's start-to-end time spread evenly over its steps (includes start-up and
           evaluation: a rougher estimate, but always there for a finished trial);
  examples a cumulative `examples_seen` metric; else batch_size x step;
  steps    nothing else known: the comparison is by steps only, and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from runner.playbook.check import Check, fmt
from runner.playbook.data import CurveData, StudyData, TrialResult
from runner.playbook.isolation import scientific_key, scientific_label

TITLE = "Compare by compute, not only by steps"
FLOPS_METRICS = ("flops", "total_flops")  # cumulative FLOPs up to the step
SECONDS_METRICS = ("elapsed_s", "wall_s", "train_time_s")  # cumulative training seconds
EXAMPLES_METRICS = ("examples_seen",)  # cumulative examples
RATE_METRIC = "examples_per_s"  # throughput at the step
BATCH_PARAMS = ("batch_size", "batch")
KINDS = ("flops", "seconds", "examples")
UNITS = {"flops": "FLOPs", "seconds": "s", "examples": "examples", "steps": "steps"}

Source = Callable[[np.ndarray], np.ndarray]  # steps -> compute at those steps


@dataclass(frozen=True)
class ComputeAxis:
    kind: str  # flops | seconds | examples | steps
    sources: dict[int, str] = field(default_factory=dict)  # trial -> how its compute was obtained
    functions: dict[int, Source] = field(default_factory=dict, repr=False)

    def at(self, trial: int, steps: np.ndarray) -> np.ndarray:
        return self.functions[trial](steps) if self.kind != "steps" else steps.astype(float)


def _from_zero(xs: list[int], ys: list[float]) -> Source:
    """Interpolate a cumulative quantity known at some steps; 0 at step 0, proportional beyond the last."""
    x = np.concatenate([[0.0], np.asarray(xs, dtype=float)])
    y = np.concatenate([[0.0], np.asarray(ys, dtype=float)])

    def at(steps: np.ndarray) -> np.ndarray:
        steps = np.asarray(steps, dtype=float)
        inside = np.interp(steps, x, y)
        beyond = y[-1] * steps / x[-1] if x[-1] > 0 else inside
        return np.where(steps > x[-1], beyond, inside)

    return at


def _cumulative_metric(curves: CurveData, trial: int, names: tuple[str, ...]) -> tuple[Source, str] | None:
    for name in names:
        curve = curves.get(trial, name)
        if curve is not None and (pts := curve.finite())[0]:
            return _from_zero(*pts), f"metric {name}"
    return None


def _batch(t: TrialResult) -> float | None:
    value = next((t.params[n] for n in BATCH_PARAMS if n in t.params), None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _seconds(study: StudyData, curves: CurveData, t: TrialResult) -> tuple[Source, str] | None:
    if found := _cumulative_metric(curves, t.number, SECONDS_METRICS):
        return found
    objective = curves.get(t.number, study.objective)
    if objective is not None and objective.wall is not None:
        return _from_zero(list(objective.steps), list(objective.wall)), "wall time of each point"
    rate, batch = curves.get(t.number, RATE_METRIC), _batch(t)
    if rate is not None and batch and (pts := rate.finite())[0]:
        steps, eps = np.asarray(pts[0], dtype=float), np.asarray(pts[1], dtype=float)
        if (eps > 0).all():
            # Each point stands for the steps since the previous one (a bucket when downsampled).
            widths = np.diff(np.concatenate([[0.0], steps]))
            return _from_zero(list(steps), list(np.cumsum(widths * batch / eps))), f"{RATE_METRIC} x batch_size"
    if t.duration_s and t.last_step:
        return _from_zero([t.last_step], [t.duration_s]), "trial start-to-end time, spread over steps"
    return None


def _examples(curves: CurveData, t: TrialResult) -> tuple[Source, str] | None:
    if found := _cumulative_metric(curves, t.number, EXAMPLES_METRICS):
        return found
    if batch := _batch(t):
        return (lambda steps, b=batch: np.asarray(steps, dtype=float) * b), "batch_size x step"
    return None


def compute_axis(study: StudyData, curves: CurveData, trials: list[TrialResult]) -> ComputeAxis:
    """The first compute kind every one of `trials` can be placed on (see the module docstring)."""
    finders = {
        "flops": lambda t: _cumulative_metric(curves, t.number, FLOPS_METRICS),
        "seconds": lambda t: _seconds(study, curves, t),
        "examples": lambda t: _examples(curves, t),
    }
    for kind in KINDS:
        found = {t.number: finders[kind](t) for t in trials}
        if trials and all(found.values()):
            return ComputeAxis(kind, {n: f[1] for n, f in found.items()}, {n: f[0] for n, f in found.items()})
    return ComputeAxis("steps", {t.number: "step" for t in trials})


def compute_curves(study: StudyData, curves: CurveData, axis: ComputeAxis,
                   trials: list[TrialResult]) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per trial: (steps, compute, objective) of its finite objective points."""
    out = {}
    for t in trials:
        steps, values = curves.get(t.number, study.objective).finite()
        s = np.asarray(steps, dtype=float)
        out[t.number] = (s, axis.at(t.number, s), np.asarray(values, dtype=float))
    return out


def pareto_frontier(points: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], mode: str) -> list[dict]:
    """Best objective reached by compute c, over all trials: the points where it improves."""
    sign = 1.0 if mode == "min" else -1.0
    rows = sorted(((float(c), float(v), n) for n, (_, cs, vs) in points.items() for c, v in zip(cs, vs, strict=True)),
                  key=lambda r: (r[0], sign * r[1]))
    frontier, best = [], np.inf
    for c, v, n in rows:
        if sign * v < best:
            best = sign * v
            frontier.append({"compute": c, "value": v, "trial": n})
    return frontier


def time_to_target(points: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], target: float,
                   mode: str) -> dict[int, dict]:
    """Per trial: the first point at least as good as `target` (its step and compute)."""
    out = {}
    for n, (steps, cs, vs) in points.items():
        hit = vs <= target if mode == "min" else vs >= target
        if hit.any():
            i = int(np.argmax(hit))
            out[n] = {"step": float(steps[i]), "compute": float(cs[i])}
    return out


def default_target(study: StudyData, points: dict, trials: list[TrialResult]) -> float:
    """A level every compared group reaches: the loosest of the groups' bests (2+ scientific
    values), else the median of the trials' bests (half of them reach it)."""
    pick = min if study.mode == "min" else max
    bests = {n: float(pick(vs)) for n, (_, _, vs) in points.items()}
    groups: dict[tuple, float] = {}
    for t in trials:
        key = scientific_key(study, t)
        groups[key] = pick(groups.get(key, bests[t.number]), bests[t.number])
    if len(groups) >= 2:
        return max(groups.values()) if study.mode == "min" else min(groups.values())
    return float(np.median(list(bests.values())))


def compute_view(study: StudyData, curves: CurveData, target: float | None = None) -> Check:
    """Objective on a compute axis, its Pareto frontier, and who reaches `target` first."""
    trials = [t for t in study.ranked() if (c := curves.get(t.number, study.objective)) and c.finite()[0]]
    evidence: dict = {"objective": study.objective, "mode": study.mode}
    if not trials:
        return Check("compute", TITLE, "n/a", f"no feasible trial with a {study.objective} curve", evidence)
    axis = compute_axis(study, curves, trials)
    points = compute_curves(study, curves, axis, trials)
    target = default_target(study, points, trials) if target is None else target
    reached = time_to_target(points, target, study.mode)
    label = {t.number: scientific_label(study, t) for t in trials}
    by_compute = min(reached, key=lambda n: (reached[n]["compute"], reached[n]["step"]), default=None)
    fewest = min((r["step"] for r in reached.values()), default=None)
    by_steps = sorted(n for n, r in reached.items() if r["step"] == fewest)  # ties are common on eval steps
    shown = {t.number for t in _best_per_group(study, trials)}  # the curves a reader compares
    evidence.update({
        "axis": axis.kind, "unit": UNITS[axis.kind], "sources": axis.sources, "target": target,
        "time_to_target": [{"trial": n, "group": label[n], **r} for n, r in sorted(reached.items())],
        "winner_by_compute": by_compute, "winner_by_steps": by_steps,
        "frontier": pareto_frontier(points, study.mode),
        "curves": [{"trial": n, "group": label[n], "step": points[n][0].tolist(),
                    "compute": points[n][1].tolist(), "value": points[n][2].tolist()} for n in sorted(shown)],
    })
    unit = UNITS[axis.kind]
    details = tuple(f"trial {n} ({label[n]}): reaches {fmt(target)} at step {r['step']:g}, {fmt(r['compute'])} {unit}"
                    for n, r in sorted(reached.items(), key=lambda kv: kv[1]["compute"])[:6])
    if by_compute is None:
        return Check("compute", TITLE, "n/a", f"no trial reaches {study.objective} {fmt(target)}", evidence)
    first = (f"trial {by_compute} ({label[by_compute]}) reaches {study.objective} {fmt(target)} first "
             f"at {fmt(reached[by_compute]['compute'])} {unit}")
    if axis.kind == "steps":
        return Check("compute", TITLE, "n/a",
                     "no compute measure reported (flops, elapsed_s, examples_per_s with batch_size, trial "
                     "times): compared by steps only; " + first, evidence,
                     "report flops or elapsed_s (or examples_per_s) from the training script", details)
    # Compare scientific values when there are several, else trials.
    key = (lambda n: label[n]) if len(set(label.values())) > 1 else (lambda n: n)
    if key(by_compute) not in {key(n) for n in by_steps}:
        step_winners = ", ".join(f"trial {n} ({label[n]})" for n in by_steps)
        return Check("compute", TITLE, "warning",
                     f"by compute {first}; by steps {step_winners} looks fastest", evidence,
                     f"loss-vs-step curves mislead here: compare on the {axis.kind} axis", details)
    step_winners = ", ".join(str(n) for n in by_steps)
    return Check("compute", TITLE, "ok", f"{first} ({axis.kind} axis); fewest steps too: trial {step_winners}",
                 evidence, details=details)


def _best_per_group(study: StudyData, trials: list[TrialResult]) -> list[TrialResult]:
    seen: dict[tuple, TrialResult] = {}
    for t in trials:  # trials are ranked best first
        seen.setdefault(scientific_key(study, t), t)
    return list(seen.values())
