"""Where trials run: the one interface every back end implements, and the local one.

The runner (runner.service) decides what runs and when; an executor only starts an attempt of a
trial, says whether it still runs, signals it, finds it again after a runner restart, and says
how many trials it can hold. Every back end honours the trial's file contract in the trial
folder (runner.process.TrialPaths): params.json and command.json before the command starts,
stdout.log/stderr.log and metrics.jsonl while it runs, exit.json when it ends. The runner reads
metrics and outcomes from those files only, whichever executor ran the trial.

runner.executors.ray (RayExecutor) runs trials on a Ray cluster; it is imported, and Ray with it,
only when a runner is asked for it (--executor ray).
"""

from runner.executors.base import Adopted, AttemptRecord, Capacity, Executor, Identity, TrialStart
from runner.executors.local import LocalExecutor

__all__ = ["Adopted", "AttemptRecord", "Capacity", "Executor", "Identity", "LocalExecutor", "TrialStart"]
