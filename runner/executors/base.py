"""The executor interface (see runner.executors): plain data in and out, a handle per attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runner.gpus import Gpu
from runner.process import TrialPaths
from runner.scheduler import Slot


@dataclass(frozen=True)
class Capacity:
    """What an executor can run at once: these GPUs (one trial per GPU) and this many CPU trials."""

    gpus: tuple[int, ...]
    cpu_slots: int
    can_grow: bool = False  # a cluster's: nodes may join, so a trial too big for it now waits


@dataclass(frozen=True)
class TrialStart:
    """One attempt of a trial to start: its command, files, environment and slot."""

    argv: list[str]
    paths: TrialPaths
    cwd: Path
    params: dict
    env: dict[str, str]
    attempt: int
    slot: Slot
    gpus: tuple[Gpu, ...] = field(default=())  # the slot's GPUs as NVML describes them, where known
    cpus: float = 1  # the study's cpus_per_trial


@dataclass(frozen=True)
class Identity:
    """What the store records of a started attempt: the process the runner can signal."""

    pid: int
    proc_start: str | None
    started_at: float | None = None


@dataclass(frozen=True)
class AttemptRecord:
    """What the store knows of an attempt a previous runner left starting or running."""

    paths: TrialPaths
    attempt: int
    pid: int | None
    proc_start: str | None
    host: str | None


@dataclass(frozen=True)
class Adopted:
    """An attempt found again after a runner restart.

    alive: still running (watch it); else `exit` is its exit record, or None if it never ended
    cleanly (lost). started: it left any mark of having started; False means it never ran
    (the trial can simply be queued again). identity: what its launch record says, if written.
    """

    handle: Any
    alive: bool
    started: bool
    exit: dict | None
    identity: Identity | None


class Executor(Protocol):
    """Starts, watches and signals the attempts of trials (see runner.executors)."""

    name: str

    def capacity(self) -> Capacity:
        """What it can run now; asked every pass, so a cluster's answer should be cheap (cached)."""

    def start(self, request: TrialStart) -> Any:
        """Start the attempt; returns its handle. Raises OSError if it cannot start."""

    def identity(self, handle: Any) -> Identity | None:
        """Who runs the attempt, once known."""

    def resolve(self, handle: Any) -> Identity | None:
        """For an adopted attempt whose identity was not known yet: the identity, if it is now."""

    def poll(self, handle: Any) -> tuple[bool, int | None]:
        """(ended, the command's return code if known)."""

    def signalable(self, handle: Any) -> bool:
        """Whether `signal` can reach the attempt yet."""

    def signal(self, handle: Any, sig: int) -> bool:
        """Send `sig` to every process of the attempt; False if it is gone."""

    def clean_up(self, handle: Any) -> list[int]:
        """After the attempt ended or was lost: kill what it left running; returns what was killed."""

    def adopt(self, record: AttemptRecord) -> Adopted:
        """Find an attempt a previous runner started."""

    def lost(self, handle: Any) -> str | None:
        """Why an ended attempt was lost (the machine it ran on died), or None: it ended by itself."""

    def oom_kills(self) -> int | None:
        """A counter of out-of-memory kills where the trials run (None: not known)."""
