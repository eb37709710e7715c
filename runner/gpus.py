"""GPU discovery, choice and readings through NVML (nvidia-ml-py); an empty list where there is none.

Which GPU a trial gets is named by UUID. NVML numbers GPUs in PCI bus order (as nvidia-smi
shows them), while CUDA numbers them fastest-first unless CUDA_DEVICE_ORDER=PCI_BUS_ID: on a
box of mixed models, index 1 can be two different cards. A trial gets
`CUDA_VISIBLE_DEVICES=GPU-<uuid>` (CUDA accepts UUIDs there), which means the same card
whatever order the trial's own code or libraries set, and also
`CUDA_DEVICE_ORDER=PCI_BUS_ID`, so that tools in the trial number the cards as nvidia-smi does.

Which GPUs the runner may use: those in its own CUDA_VISIBLE_DEVICES (indices, UUIDs or UUID
prefixes, as CUDA reads them), narrowed by `--gpus 2,3` (nvidia-smi's numbers, or UUIDs).
A GPU another process is filling (see `busy_reason`) is not handed out unless asked to.

Every function that reads NVML takes the pynvml module as an argument, so tests can pass a
small stand-in for a machine with GPUs (this machine has none).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# A GPU whose memory use is above this (MiB), with no trial of ours on it, is busy with someone
# else's job. An idle card uses well under 1 GiB (driver, display); a CUDA context alone ~300-600 MiB.
BUSY_MEMORY_MIB = 1024


class GpuChoiceError(ValueError):
    """The runner's CUDA_VISIBLE_DEVICES or --gpus names GPUs that cannot be honoured."""


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML sees it: `index` is nvidia-smi's number (PCI bus order)."""

    index: int
    uuid: str
    name: str
    memory_used_mib: int = 0
    memory_total_mib: int = 0
    other_processes: int = 0  # compute processes on it now (none of them known to be ours)

    @property
    def described(self) -> str:
        return f"GPU {self.index} ({self.name}, {self.uuid})"


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    utilization_pct: int | None
    memory_used_mib: int
    memory_total_mib: int
    temperature_c: int | None


def _nvml():
    try:
        import pynvml
        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no library, no driver, no device: all mean "no GPU here"
        return None


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


def inventory(nvml: Any) -> list[Gpu]:
    """Every GPU NVML sees, with its UUID, memory use and compute process count."""
    out = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        mem = nvml.nvmlDeviceGetMemoryInfo(h)
        try:
            procs = len(nvml.nvmlDeviceGetComputeRunningProcesses(h))
        except nvml.NVMLError:
            procs = 0  # not supported (some consumer cards): memory use alone tells
        out.append(Gpu(i, _text(nvml.nvmlDeviceGetUUID(h)), _text(nvml.nvmlDeviceGetName(h)),
                       mem.used // 2**20, mem.total // 2**20, procs))
    return out


def parse_list(value: str) -> list[str]:
    """The entries of a CUDA_VISIBLE_DEVICES-like list; CUDA ignores everything after an entry
    of -1, and so do we."""
    entries = []
    for raw in value.split(","):
        entry = raw.strip()
        if entry == "-1":
            break
        if entry:
            entries.append(entry)
    return entries


def _match(entry: str, gpus: list[Gpu], *, what: str) -> Gpu:
    """The GPU an entry names: nvidia-smi's index, or a UUID (a unique prefix is enough, as for CUDA)."""
    if entry.startswith("MIG-"):
        raise GpuChoiceError(f"{what}: '{entry}' is a MIG instance; MIG instances are not scheduled yet "
                             "(name whole GPUs, or run without MIG)")
    if entry.isdigit():
        found = [g for g in gpus if g.index == int(entry)]
    else:
        key = entry if entry.startswith("GPU-") else "GPU-" + entry
        found = [g for g in gpus if g.uuid.startswith(key)]
    if len(found) != 1:
        known = ", ".join(f"{g.index}={g.uuid}" for g in gpus) or "none"
        why = "matches several GPUs" if found else "names no GPU"
        raise GpuChoiceError(f"{what}: '{entry}' {why} (GPUs here: {known})")
    return found[0]


def choose(gpus: list[Gpu], *, runner_visible: str | None, device_order: str | None,
           requested: str | None) -> list[Gpu]:
    """The GPUs this runner may schedule on.

    runner_visible: the runner's own CUDA_VISIBLE_DEVICES (None: unset, all GPUs).
    device_order: the runner's CUDA_DEVICE_ORDER. Indices in CUDA_VISIBLE_DEVICES are CUDA's
    numbers; they equal nvidia-smi's under PCI_BUS_ID, or when every GPU is the same model
    (fastest-first then has no faster card to move ahead). Otherwise they are ambiguous: refused.
    requested: the --gpus option ("2,3", UUIDs, or "none").
    """
    allowed = gpus
    if runner_visible is not None:
        entries = parse_list(runner_visible)
        mixed = len({g.name for g in gpus}) > 1
        if mixed and device_order != "PCI_BUS_ID" and any(e.isdigit() for e in entries):
            raise GpuChoiceError(
                f"CUDA_VISIBLE_DEVICES={runner_visible}: indices are ambiguous on this machine's mixed GPUs "
                "(CUDA numbers them fastest-first); use GPU UUIDs (nvidia-smi -L) or set "
                "CUDA_DEVICE_ORDER=PCI_BUS_ID")
        allowed = _unique(_match(e, gpus, what=f"CUDA_VISIBLE_DEVICES={runner_visible}") for e in entries)
    if requested is None:
        return allowed
    if requested.strip().lower() == "none":
        return []
    chosen = _unique(_match(e, gpus, what=f"--gpus {requested}") for e in parse_list(requested))
    hidden = [g for g in chosen if g not in allowed]
    if hidden:
        raise GpuChoiceError(f"--gpus {requested}: {hidden[0].described} is not in this runner's "
                             f"CUDA_VISIBLE_DEVICES={runner_visible}")
    return chosen


def _unique(gpus: Iterable[Gpu]) -> list[Gpu]:
    out: list[Gpu] = []
    for g in gpus:
        if g not in out:
            out.append(g)
    return out


def busy_reason(gpu: Gpu, *, memory_mib: int = BUSY_MEMORY_MIB) -> str | None:
    """Why a GPU none of our trials holds is in someone else's use, or None if it is free.

    Any compute process on it, or memory use above `memory_mib`, counts: a process of another
    user may be invisible to NVML's process list from inside a container, its memory is not.
    """
    reasons = []
    if gpu.other_processes:
        reasons.append(f"{gpu.other_processes} other process(es)")
    if gpu.memory_used_mib > memory_mib:
        reasons.append(f"{gpu.memory_used_mib} MiB of {gpu.memory_total_mib} MiB in use")
    return f"{gpu.described} is busy: " + ", ".join(reasons) if reasons else None


def discover(*, runner_visible: str | None = None, device_order: str | None = None,
             requested: str | None = None, nvml: Any = None) -> list[Gpu]:
    """The GPUs this runner may use (see `choose`); [] where there is no GPU or no NVML."""
    nvml = nvml or _nvml()
    if nvml is None:
        if requested is not None and requested.strip().lower() != "none":
            raise GpuChoiceError(f"--gpus {requested}: no GPU found here (NVML cannot be read)")
        return []
    try:
        return choose(inventory(nvml), runner_visible=runner_visible, device_order=device_order,
                      requested=requested)
    finally:
        nvml.nvmlShutdown()


def check_choice(requested: str | None, nvml: Any = None) -> None:
    """Raise GpuChoiceError if the runner's environment and `requested` (--gpus) cannot be honoured."""
    discover(runner_visible=os.environ.get("CUDA_VISIBLE_DEVICES"),
             device_order=os.environ.get("CUDA_DEVICE_ORDER"), requested=requested, nvml=nvml)


def current(indices: list[int], nvml: Any = None) -> dict[int, Gpu]:
    """Fresh readings (memory, processes) of these GPUs, by index; {} where NVML cannot be read."""
    nvml = nvml or _nvml()
    if nvml is None:
        return {}
    try:
        return {g.index: g for g in inventory(nvml) if g.index in indices}
    except Exception:  # a driver hiccup must not stop scheduling: treat as "no news"
        return {}
    finally:
        nvml.nvmlShutdown()


def read_all() -> list[GpuReading]:
    """Current utilization, memory and temperature of every GPU."""
    nvml = _nvml()
    if nvml is None:
        return []
    try:
        out = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            name = nvml.nvmlDeviceGetName(h)
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            try:
                util = nvml.nvmlDeviceGetUtilizationRates(h).gpu
            except nvml.NVMLError:
                util = None
            try:
                temp = nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
            except nvml.NVMLError:
                temp = None
            out.append(GpuReading(i, _text(name), util, mem.used // 2**20, mem.total // 2**20, temp))
        return out
    finally:
        nvml.nvmlShutdown()
