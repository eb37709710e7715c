"""Each running trial's GPU use, sampled through NVML every few seconds, kept as metrics of the trial.

Two series, stored like any reported metric (so the TUI's trial screen plots them), at whole
seconds since the trial started (their "step"):

- `runner.gpu_util`: % of the time the trial's GPUs were busy (their mean, for several);
- `runner.gpu_mem_mib`: GPU memory the trial holds, MiB (summed over its GPUs).

Named `runner.` so they never mix with a metric a training script reports itself.

Per process where NVML can tell: memory from the compute processes NVML lists whose pid is in the
trial's process group, utilisation from its per-process samples. Where it lists none of them (a
container sees other pid numbers than NVML reports), the whole device is read: the trial holds
that slot alone. A MIG instance has no utilisation reading: only its memory is sampled.

Sampling must never slow or stop the runner: with no NVML, nothing is done at all; an NVML error
skips that round (said once in the log).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner import gpus, process
from runner.gpus import GpuKey

GPU_UTIL = "runner.gpu_util"
GPU_MEM = "runner.gpu_mem_mib"
SERIES = (GPU_UTIL, GPU_MEM)
SAMPLE_EVERY_S = 5.0


@dataclass(frozen=True)
class Watched:
    """What the sampler needs of one running trial."""

    trial_id: int
    gpus: tuple[GpuKey, ...]
    pgid: int | None  # the trial's process group (its shim's pid); None: not known yet
    started_at: float


@dataclass(frozen=True)
class Sample:
    trial_id: int
    step: int  # whole seconds since the trial started
    wall: float
    util_pct: float | None
    mem_mib: float | None


class GpuSampler:
    """Reads NVML for the trials' GPUs at most every `every_s` seconds (see the module's doc).

    nvml: the pynvml module (None: the real one, initialised on first use); tests pass a stand-in.
    """

    def __init__(self, nvml: Any = None, *, every_s: float | None = None,
                 log: Callable[[str], None] = print) -> None:
        self._given = nvml
        self._nvml: Any = nvml
        self._handles: dict[GpuKey, Any] | None = None
        self._every_s = SAMPLE_EVERY_S if every_s is None else every_s
        self._log = log
        self._last = float("-inf")  # monotonic time of the last round
        self._disabled = False  # no NVML here: nothing more to try
        self._failing = False  # the last round failed (said once per run of failures)
        self._last_step: dict[int, int] = {}  # trial id -> step of its last sample

    def due(self, now: float) -> bool:
        return not self._disabled and now - self._last >= self._every_s

    def sample(self, watched: list[Watched], now: float | None = None) -> list[Sample]:
        """One round over the trials on GPUs, if one is due; never raises."""
        now = time.monotonic() if now is None else now
        on_gpus = [w for w in watched if w.gpus]
        if not on_gpus or not self.due(now):
            return []
        self._last = now
        try:
            nvml = self._open()
            if nvml is None:
                return []
            out = self._round(nvml, on_gpus)
        except Exception as exc:  # a driver hiccup, a card gone: skip this round, never the pass
            self._handles = None  # read the handles again next time
            if not self._failing:
                self._failing = True
                self._log(f"GPU sampling skipped: {type(exc).__name__}: {exc}; retrying every {self._every_s:g} s")
            return []
        self._failing = False
        live = {w.trial_id for w in watched}
        self._last_step = {k: v for k, v in self._last_step.items() if k in live}
        return out

    def close(self) -> None:
        if self._nvml is not None and self._given is None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
        self._nvml, self._handles = self._given, None

    def _open(self) -> Any:
        if self._nvml is None:
            self._nvml = gpus.open_nvml()
            if self._nvml is None:
                self._disabled = True
                return None
        if self._handles is None:
            self._handles = gpus.handles(self._nvml)
        return self._nvml

    def _round(self, nvml: Any, watched: list[Watched]) -> list[Sample]:
        wall = time.time()
        groups = process.pids_in_groups({w.pgid for w in watched if w.pgid})
        out = []
        for w in watched:
            step = max(int(wall - w.started_at), self._last_step.get(w.trial_id, -1) + 1)
            pids = groups.get(w.pgid, set()) if w.pgid else set()
            if w.pgid and not pids:
                continue  # it has ended (reaped in this pass): the device is no longer its
            readings = [read_device(nvml, self._handles[g], pids, self._every_s)
                        for g in w.gpus if g in self._handles]
            utils = [u for u, _ in readings if u is not None]
            mems = [m for _, m in readings if m is not None]
            if not utils and not mems:
                continue
            self._last_step[w.trial_id] = step
            out.append(Sample(w.trial_id, step, wall, sum(utils) / len(utils) if utils else None,
                              float(sum(mems)) if mems else None))
        return out


def read_device(nvml: Any, handle: Any, pids: set[int], window_s: float) -> tuple[float | None, float | None]:
    """(utilisation %, memory MiB) of the processes `pids` on one GPU or MIG instance; the whole
    device's where NVML lists none of them."""
    mem = _process_memory(nvml, handle, pids)
    util = _process_util(nvml, handle, pids, window_s) if mem is not None else None
    if mem is None:  # every GPU and MIG instance has a memory reading: an error here is the round's
        mem = nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
    if util is None:
        util = _try(lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu), nvml)
    return util, mem


def _process_memory(nvml: Any, handle: Any, pids: set[int]) -> float | None:
    """MiB used by `pids` on the device (None: NVML lists none of them)."""
    procs = _try(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle), nvml) or []
    ours = [p for p in procs if p.pid in pids]
    if not ours:
        return None
    return sum(p.usedGpuMemory or 0 for p in ours) / 2**20  # None: not known (e.g. Windows WDDM)


def _process_util(nvml: Any, handle: Any, pids: set[int], window_s: float) -> float | None:
    """Mean SM utilisation of `pids` over the last `window_s` (their samples summed per time)."""
    since = int((time.time() - window_s) * 1e6)
    samples = _try(lambda: nvml.nvmlDeviceGetProcessUtilization(handle, since), nvml) or []
    per_time: dict[int, float] = {}
    for s in samples:
        if s.pid in pids:
            per_time[s.timeStamp] = per_time.get(s.timeStamp, 0.0) + s.smUtil
    if not per_time:
        return None
    return min(100.0, sum(per_time.values()) / len(per_time))


def _try(read: Callable[[], Any], nvml: Any) -> Any:
    """An optional NVML reading, None where the device does not support it (a MIG instance's
    utilisation, a consumer card's process list) or has nothing (no utilisation sample yet)."""
    try:
        return read()
    except nvml.NVMLError:
        return None
