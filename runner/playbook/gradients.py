"""Gradient norm: percentiles, spikes, and the clipping threshold the playbook recommends.

The playbook: log the unclipped L2 norm of the full gradient every step; the default
clipping threshold is its 90th percentile; clipping more than half of the updates is a
strange way of lowering the learning rate. The percentiles are asked of every logged
step: the loader reads the reported trials' norms at full resolution (exact_norm_trials),
and the TUI's trial screen asks clip_threshold and histogram of the same points, so both
give one answer. On a curve that is still downsampled (a trial the check only lists), the
percentiles come from the bucket values and the maximum and spikes from the bucket highs,
so an outlier between two drawn points still counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from runner.playbook.check import Check, fmt
from runner.playbook.data import Curve, CurveData, StudyData
from runner.playbook.isolation import best_per_scientific, scientific_label

TITLE = "What does the gradient norm say? (clipping threshold)"
GRAD_METRIC = "grad_norm"
CLIP_PERCENTILE = 90  # the playbook's default clipping threshold
# A spike: a step whose norm is more than 10x the trial's median norm; an outlier of that
# size is what makes updates jump and what clipping exists for.
SPIKE_FACTOR = 10.0
OVERCLIP_SHARE = 0.5  # the playbook: more than half of the updates clipped -> lower the lr instead
# Parameter names a study uses for the clipping threshold it trained with.
CLIP_PARAM_NAMES = ("grad_clip", "clip_norm", "max_grad_norm", "gradient_clipping", "clip_threshold", "clip")
HISTOGRAM_BINS = 20


# Beyond the best trial of every scientific value, the next best few overall are read at full
# resolution too, in case the best ones did not log norms (the check falls through to them).
EXACT_FALLBACK_TRIALS = 3


def exact_norm_trials(study: StudyData) -> set[int]:
    """Trials whose norms the check reports percentiles for: a loader reads them at full resolution."""
    ranked = study.ranked()
    return {t.number for t in best_per_scientific(study).values()} | {t.number for t in ranked[:EXACT_FALLBACK_TRIALS]}


def clip_threshold(values: Sequence[float | None]) -> float | None:
    """The playbook's default clipping threshold: the 90th percentile of the finite norms (None if none)."""
    v = _finite(values)
    return float(np.percentile(v, CLIP_PERCENTILE)) if v.size else None


def _finite(values: Sequence[float | None]) -> np.ndarray:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    return v[np.isfinite(v)]


def clip_param(study: StudyData) -> str | None:
    names = {p.name for p in study.params}
    return next((n for n in CLIP_PARAM_NAMES if n in names), None)


def norm_stats(curve: Curve, threshold: float | None = None, configured: float | None = None) -> dict | None:
    """Percentiles, max, spikes and clipped shares of one trial's gradient-norm curve."""
    steps, values = curve.finite()
    if not values:
        return None
    v = np.asarray(values, dtype=float)
    # Bucket highs when downsampled; a non-finite point counts as an (infinite) spike.
    raw = curve.highs if curve.highs is not None else curve.values
    highs = np.array([h if h is not None else np.inf for h in raw], dtype=float)
    p50, p90, p99 = (float(x) for x in np.percentile(v, [50, CLIP_PERCENTILE, 99]))
    spike_mask = highs > SPIKE_FACTOR * p50
    spike_steps = [int(s) for s, m in zip(curve.steps, spike_mask, strict=True) if m]
    stats = {
        "trial": curve.trial, "points": int(v.size), "total_points": curve.total_points,
        "p50": p50, "p90": p90, "p99": p99, "max": float(np.max(highs)), "nonfinite": curve.has_nonfinite,
        "spikes": len(spike_steps), "spike_steps": spike_steps[:10],
        "own_threshold": p90,
        # Whether the percentiles saw every logged step (False: a downsampled curve's bucket values).
        "every_step": curve.total_points is None or len(curve.values) >= curve.total_points,
    }
    if threshold is not None:
        stats["clipped_share_at_threshold"] = float(np.mean(v > threshold))
    if configured is not None:
        stats["configured_clip"] = configured
        stats["clipped_share_configured"] = float(np.mean(v > configured))
    return stats


def histogram(values: Sequence[float | None]) -> dict:
    """Counts of the norm over HISTOGRAM_BINS log-spaced bins from the smallest to the largest
    positive finite norm (norms span orders of magnitude, and a spike does not squash the rest)."""
    v = _finite(values)
    v = v[v > 0]
    if v.size == 0:
        return {"edges": [], "counts": []}
    lo, hi = v.min(), v.max()
    edges = np.geomspace(lo, hi if hi > lo else lo * 1.001, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(v, bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def gradient_norm(study: StudyData, curves: CurveData, metric: str = GRAD_METRIC,
                  clip_name: str | None = None) -> Check:
    """Per-trial norm statistics; the recommended threshold is the best trial's 90th percentile."""
    clip_name = clip_name or clip_param(study)
    ranked = study.ranked()
    best = next((t for t in ranked if (c := curves.get(t.number, metric)) and c.finite()[0]), None)
    evidence: dict = {"metric": metric, "clip_param": clip_name, "clip_percentile": CLIP_PERCENTILE,
                      "spike_factor": SPIKE_FACTOR, "overclip_share": OVERCLIP_SHARE, "trials": []}
    if best is None:
        return Check("gradient_norm", TITLE, "n/a", f"no feasible trial reported {metric}", evidence)
    threshold = norm_stats(curves.get(best.number, metric))["p90"]
    rows = []
    for t in study.trials:
        curve = curves.get(t.number, metric)
        configured = t.params.get(clip_name) if clip_name else None
        configured = configured if isinstance(configured, (int, float)) and configured > 0 else None
        if curve is not None and (stats := norm_stats(curve, threshold, configured)):
            rows.append({**stats, "feasible": not t.infeasible})
    by_trial = {r["trial"]: r for r in rows}
    best_row = by_trial[best.number]
    evidence.update({"best_trial": best.number, "recommended_threshold": threshold, "trials": rows,
                     "best_histogram": histogram(curves.get(best.number, metric).finite()[1])})
    overclipped = [r["trial"] for r in rows if r["feasible"] and r.get("clipped_share_configured", 0) > OVERCLIP_SHARE]
    compared = [t.number for t in best_per_scientific(study).values() if t.number in by_trial]
    misfit = [n for n in compared if by_trial[n]["clipped_share_at_threshold"] > OVERCLIP_SHARE]
    details = tuple(
        f"trial {r['trial']}: p50 {fmt(r['p50'])}, p90 {fmt(r['p90'])}, p99 {fmt(r['p99'])}, max {fmt(r['max'])}"
        + (f", {r['spikes']} spike(s)" if r["spikes"] else "")
        + f"; {r['clipped_share_at_threshold']:.0%} clipped at {fmt(threshold)}"
        for r in rows if r["trial"] in compared)
    evidence.update({"overclipped_trials": overclipped, "threshold_misfit_trials": misfit})
    if overclipped:
        return Check("gradient_norm", TITLE, "problem",
                     f"{clip_name} clips more than {OVERCLIP_SHARE:.0%} of updates in trial(s) "
                     + ", ".join(map(str, overclipped)), evidence,
                     "clipping most updates is a strange way of lowering the learning rate: lower it instead",
                     details)
    findings = []
    if best_row["spikes"]:
        findings.append(f"best trial {best.number} has {best_row['spikes']} spike(s) over "
                        f"{SPIKE_FACTOR:g}x its median norm")
    if misfit:
        findings.append(f"threshold {fmt(threshold)} would clip over {OVERCLIP_SHARE:.0%} of updates "
                        f"for {', '.join(scientific_label(study, t) for t in study.trials if t.number in misfit)}")
    advice = f"clip at {fmt(threshold)} (the best trial's p{CLIP_PERCENTILE})"
    if findings:
        if misfit:
            advice += "; one threshold does not fit every scientific value: set it per value or lower the lr"
        return Check("gradient_norm", TITLE, "warning", "; ".join(findings), evidence, advice, details)
    return Check("gradient_norm", TITLE, "ok",
                 f"no spikes in the best trial; recommended clipping threshold {fmt(threshold)} "
                 f"(p{CLIP_PERCENTILE} of trial {best.number})", evidence, advice, details)
