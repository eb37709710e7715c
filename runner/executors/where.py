"""Where an attempt runs, in a few words for a header, from its placement record (runner.process)."""

from __future__ import annotations

from pathlib import Path

from runner.process import TrialPaths, read_placement


def placement_note(trial_dir: str | None) -> str | None:
    """'ray node 1a2b3c4d (10.0.0.7, gpu-box-2), GPU 0,1' for a trial on a Ray cluster; None for a
    local trial (its slot already names its GPUs) or where nothing was recorded yet."""
    if not trial_dir:
        return None
    record = read_placement(TrialPaths(Path(trial_dir)))
    if not record:
        return None
    gpus = [str(g.get("index", g)) if isinstance(g, dict) else str(g) for g in record.get("gpus") or []]
    on_gpus = f"GPU {','.join(gpus)}" if gpus else "CPU"
    if record.get("executor") == "ray":
        if not record.get("node_id"):
            return "ray: waiting for a node"
        node = str(record["node_id"])[:8]
        return f"ray node {node} ({record.get('ip', '?')}, {record.get('host', '?')}), {on_gpus}"
    return None  # a local trial: the slot already says which GPUs


def ran_on_ray(trial_dir: str | None, attempt: int) -> bool:
    """Whether this attempt of the trial was placed on a Ray cluster (its placement record says so)."""
    record = read_placement(TrialPaths(Path(trial_dir))) if trial_dir else None
    return bool(record) and record.get("executor") == "ray" and record.get("attempt") == attempt
