"""Checkpoint retention (`keep_checkpoints = N` in [study]): keep each trial's N best checkpoints.

The playbook keeps the N best checkpoints seen and selects the best retrospectively. The runner
applies the rule whenever it ingests a trial's new checkpoints: the N best by the objective passed
to Reporter.checkpoint stay, the other checkpoint files go. Only files on disk go: the store keeps
every checkpoint row and every evaluation, so the retrospective analysis still sees them all.

What is never deleted: a checkpoint without an objective (it cannot be ranked); a path that a kept
checkpoint also names (a script that saves over `best.pt`); anything outside the trial's own
folder (a shared path could hold another trial's checkpoint), and the trial folder itself.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from runner.spec import SpecError, StudySpec
from store import metrics, trials


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: str
    objective: float | None


def to_delete(checkpoints: list[Checkpoint], keep: int, mode: str) -> list[str]:
    """The paths to delete so that only the `keep` best ranked checkpoints remain (pure).

    Best is the lowest objective for mode "min", the highest for "max"; on a tie the later step
    stays (it trained longer for the same result).
    """
    ranked = [c for c in checkpoints if c.objective is not None]
    sign = 1.0 if mode == "min" else -1.0
    ranked.sort(key=lambda c: (sign * c.objective, -c.step))
    kept = {c.path for c in ranked[:keep]} | {c.path for c in checkpoints if c.objective is None}
    out: list[str] = []
    for c in ranked[keep:]:
        if c.path not in kept and c.path not in out:
            out.append(c.path)
    return out


def deletable(path: str, workdir: Path, trial_dir: Path) -> Path | None:
    """The checkpoint's location if retention may delete it: strictly inside the trial folder.
    A relative path is the script's, so it is taken from the study's workdir (the trial's cwd)."""
    where = (workdir / path).resolve()
    root = trial_dir.resolve()
    return where if where != root and where.is_relative_to(root) else None


def apply(db: Database, trial_id: int, spec: StudySpec) -> list[Path]:
    """Delete the checkpoint files of one trial beyond its study's `keep_checkpoints`; returns them."""
    trial = trials.get(db, trial_id)
    if spec.keep_checkpoints is None or trial is None:
        return []
    stored = [Checkpoint(r["step"], r["path"], r["objective"]) for r in metrics.checkpoints(db, trial_id)]
    removed = []
    for path in to_delete(stored, spec.keep_checkpoints, spec.objective_mode):
        where = deletable(path, spec.workdir, Path(trial.trial_dir))
        if where is None or not where.exists():
            continue
        if where.is_dir() and not where.is_symlink():
            shutil.rmtree(where, ignore_errors=True)  # a framework's checkpoint folder (HF, Lightning)
        else:
            where.unlink(missing_ok=True)
        removed.append(where)
    return removed


def apply_after_ingest(db: Database, trial_ids: list[int], spec_of: Callable[[int], StudySpec | SpecError],
                       log: Callable[[str], None]) -> None:
    """The runner's edge: trials that just reported checkpoints. A file that cannot be deleted
    (permissions, a busy mount) is logged and kept; it never stops the runner."""
    for trial_id in trial_ids:
        trial = trials.get(db, trial_id)
        spec = spec_of(trial.study_id) if trial else None
        if not isinstance(spec, StudySpec) or spec.keep_checkpoints is None:
            continue
        try:
            apply(db, trial_id, spec)
        except sqlite3.OperationalError:
            raise
        except OSError as exc:
            log(f"trial {spec.name}/{trial.number}: could not delete a checkpoint beyond keep_checkpoints: {exc}")
