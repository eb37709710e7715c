"""How a trial ended, classified the playbook's way (pure: facts in, outcome out)."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from store.trials import TrialState

_CUDA_OOM = re.compile(
    r"CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|"
    r"cudaErrorMemoryAllocation|RESOURCE_EXHAUSTED|out of memory on device",
    re.IGNORECASE,
)
_HOST_OOM = re.compile(r"\bMemoryError\b|std::bad_alloc|Cannot allocate memory")


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    reason: str | None  # oom | diverged | exit | signal | timeout | no_objective | None
    detail: str | None
    feasible: int | None  # 1 feasible, 0 infeasible, None unknown (stopped, timed out, lost)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def classify(
    returncode: int | None,
    *,
    stop_reason: str | None = None,
    diverged: bool = False,
    stderr_tail: str = "",
    host_oom_kill: bool = False,
    timeout_s: float | None = None,
    missing_objective: str | None = None,
    reported: tuple[str, ...] = (),
) -> Outcome:
    """Classify an ended trial.

    returncode: the command's return code (negative: killed by that signal),
        None when unknown (the trial's shim was killed too).
    stop_reason: why the runner stopped it, if it did: 'user', 'timeout' or 'diverged'.
    diverged: the trial reported a NaN/inf loss.
    host_oom_kill: the kernel's OOM killer fired in our cgroup while it ran.
    missing_objective: the objective's name when the trial never reported a value of it;
        a clean exit then ends failed with reason no_objective (feasibility unknown: it says
        nothing of the search space, and it must not pass for a feasible trial).
    reported: the metric names it did report, for that message.
    """
    tail = stderr_tail.strip()
    if stop_reason == "timeout":
        limit = f" of {timeout_s:g} s" if timeout_s else ""
        return Outcome(TrialState.FAILED, "timeout", f"exceeded the time limit{limit}", None)
    if diverged:
        return Outcome(TrialState.FAILED, "diverged", "reported a NaN or infinite loss", 0)
    if stop_reason == "user":
        return Outcome(TrialState.STOPPED, None, "stopped on request", None)
    if returncode == 0 and missing_objective:
        return Outcome(TrialState.FAILED, "no_objective", no_objective_detail(missing_objective, reported), None)
    if returncode == 0:
        return Outcome(TrialState.COMPLETED, None, None, 1)
    if _CUDA_OOM.search(tail):
        return Outcome(TrialState.FAILED, "oom", "CUDA out of memory: " + _last_lines(tail, 3), 0)
    if _HOST_OOM.search(tail):
        return Outcome(TrialState.FAILED, "oom", "host out of memory: " + _last_lines(tail, 3), 0)
    if returncode is None or returncode < 0:
        signum = -returncode if returncode is not None else signal.SIGKILL
        if signum == signal.SIGKILL and host_oom_kill:
            return Outcome(TrialState.FAILED, "oom", "killed by the kernel's OOM killer (host memory)", 0)
        return Outcome(TrialState.FAILED, "signal", f"killed by {signal_name(signum)}", 0)
    return Outcome(TrialState.FAILED, "exit", f"exit code {returncode}: {_last_lines(tail, 5)}", 0)


def _last_lines(text: str, n: int) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:]) if lines else "(no stderr)"


def no_objective_detail(objective: str, reported: tuple[str, ...]) -> str:
    """Why a trial that exited cleanly is not a result: the objective never arrived."""
    names = ", ".join(sorted(reported)) if reported else "no metric at all"
    return f"exited 0 without reporting {objective}; it reported: {names}"
