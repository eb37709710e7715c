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

MIG: a GPU in MIG mode is not a slot; each of its MIG instances is one, named as NVIDIA's container
toolkit names them, `<gpu>:<mig>` ("0:1": GPU 0's MIG device 1, in NVML's order), and given to a trial
by its `MIG-<uuid>`. A process uses one MIG instance at most (CUDA's rule), so a trial asking for
several GPUs is only given whole GPUs. `--gpus 0` (or the runner's CUDA_VISIBLE_DEVICES naming GPU 0)
on a GPU in MIG mode means all of its instances.

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


# A slot's GPU as the scheduler sees it: nvidia-smi's index for a whole GPU, "<gpu>:<mig>" for a MIG instance.
GpuKey = int | str


class GpuChoiceError(ValueError):
    """The runner's CUDA_VISIBLE_DEVICES or --gpus names GPUs that cannot be honoured."""


@dataclass(frozen=True)
class Gpu:
    """One schedulable GPU as NVML sees it: a whole GPU, or one MIG instance of a GPU in MIG mode.

    `index` is nvidia-smi's number of the (parent) GPU, in PCI bus order; `mig` the MIG device's
    index on it (None: a whole GPU); `uuid` is `GPU-...` or `MIG-...`.
    """

    index: int
    uuid: str
    name: str
    memory_used_mib: int = 0
    memory_total_mib: int = 0
    other_processes: int = 0  # compute processes on it now (none of them known to be ours)
    mig: int | None = None
    parent_uuid: str | None = None  # a MIG instance's GPU

    @property
    def key(self) -> GpuKey:
        """How slots, labels ("gpu:0", "gpu:0:1") and --gpus name it."""
        return self.index if self.mig is None else f"{self.index}:{self.mig}"

    @property
    def model(self) -> str:
        """The GPU's model: a MIG instance's name is its GPU's plus " MIG <profile>"."""
        return self.name.split(" MIG ", 1)[0]

    @property
    def described(self) -> str:
        where = f"GPU {self.index}" if self.mig is None else f"GPU {self.index} MIG {self.mig}"
        return f"{where} ({self.name}, {self.uuid})"


def key_order(key: GpuKey) -> tuple[int, int]:
    """Sort order of slot keys: by GPU, a GPU's MIG instances after it by MIG index."""
    if isinstance(key, int):
        return key, -1
    gpu, _, mig = key.partition(":")
    return int(gpu), int(mig)


def parse_key(text: str) -> GpuKey:
    """A slot key from its text: "3" -> 3, "0:1" -> "0:1" (raises ValueError for anything else)."""
    if text.isdigit():
        return int(text)
    gpu, sep, mig = text.partition(":")
    if sep and gpu.isdigit() and mig.isdigit():
        return f"{int(gpu)}:{int(mig)}"
    raise ValueError(f"not a GPU slot: {text!r}")


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


def open_nvml() -> Any:
    """The pynvml module, initialised (the caller shuts it down); None where there is no GPU or no NVML."""
    return _nvml()


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


def _described(nvml: Any, h: Any, index: int, mig: int | None = None, parent_uuid: str | None = None) -> Gpu:
    mem = nvml.nvmlDeviceGetMemoryInfo(h)
    try:
        procs = len(nvml.nvmlDeviceGetComputeRunningProcesses(h))
    except nvml.NVMLError:
        procs = 0  # not supported (some consumer cards): memory use alone tells
    return Gpu(index, _text(nvml.nvmlDeviceGetUUID(h)), _text(nvml.nvmlDeviceGetName(h)),
               mem.used // 2**20, mem.total // 2**20, procs, mig, parent_uuid)


def mig_enabled(nvml: Any, h: Any) -> bool:
    """Whether a GPU is in MIG mode now (a pending change counts once the GPU is reset, not before)."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(h)
    except (nvml.NVMLError, AttributeError):  # not a MIG-capable GPU, or an nvidia-ml-py without MIG
        return False
    return current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1)


def mig_handles(nvml: Any, h: Any) -> list[tuple[int, Any]]:
    """(MIG index, handle) of the MIG instances that exist on a GPU in MIG mode."""
    out = []
    for m in range(nvml.nvmlDeviceGetMaxMigDeviceCount(h)):
        try:
            out.append((m, nvml.nvmlDeviceGetMigDeviceHandleByIndex(h, m)))
        except nvml.NVMLError:  # NOT_FOUND: no instance at this index
            continue
    return out


def inventory(nvml: Any) -> list[Gpu]:
    """Every schedulable GPU NVML sees (whole GPUs, and the MIG instances of GPUs in MIG mode),
    with its UUID, memory use and compute process count."""
    out = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        if not mig_enabled(nvml, h):
            out.append(_described(nvml, h, i))
            continue
        parent = _text(nvml.nvmlDeviceGetUUID(h))
        out.extend(_described(nvml, mh, i, m, parent) for m, mh in mig_handles(nvml, h))
    return out


def handles(nvml: Any) -> dict[GpuKey, Any]:
    """NVML's handle of every schedulable GPU, by slot key (see inventory)."""
    out: dict[GpuKey, Any] = {}
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        if mig_enabled(nvml, h):
            out.update({f"{i}:{m}": mh for m, mh in mig_handles(nvml, h)})
        else:
            out[i] = h
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


def _match(entry: str, gpus: list[Gpu], *, what: str) -> list[Gpu]:
    """The slots an entry names: nvidia-smi's index ("0": every MIG instance of a GPU in MIG mode),
    a MIG instance ("0:1"), or a UUID of a GPU, a MIG instance or a MIG-mode GPU (a unique prefix
    is enough, as for CUDA)."""
    if entry.isdigit():
        found = [g for g in gpus if g.index == int(entry)]
    elif ":" in entry and not entry.startswith(("GPU-", "MIG-")):
        found = [g for g in gpus if str(g.key) == entry]
    else:
        prefix = entry if entry.startswith(("GPU-", "MIG-")) else "GPU-" + entry
        found = [g for g in gpus if g.uuid.startswith(prefix)]
        parents = {g.parent_uuid for g in gpus if g.parent_uuid and g.parent_uuid.startswith(prefix)}
        if not found and len(parents) == 1:  # a GPU in MIG mode by its own UUID: all its instances
            found = [g for g in gpus if g.parent_uuid in parents]
        elif len(found) + len(parents) > 1:
            _refuse(entry, gpus, what, "matches several GPUs")
    if not found:
        _refuse(entry, gpus, what, "names no GPU")
    return found


def _refuse(entry: str, gpus: list[Gpu], what: str, why: str) -> None:
    known = ", ".join(f"{g.key}={g.uuid}" for g in gpus) or "none"
    raise GpuChoiceError(f"{what}: '{entry}' {why} (GPUs here: {known})")


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
        mixed = len({g.model for g in gpus}) > 1
        if mixed and device_order != "PCI_BUS_ID" and any(e.isdigit() for e in entries):
            raise GpuChoiceError(
                f"CUDA_VISIBLE_DEVICES={runner_visible}: indices are ambiguous on this machine's mixed GPUs "
                "(CUDA numbers them fastest-first); use GPU UUIDs (nvidia-smi -L) or set "
                "CUDA_DEVICE_ORDER=PCI_BUS_ID")
        allowed = _unique(g for e in entries for g in _match(e, gpus, what=f"CUDA_VISIBLE_DEVICES={runner_visible}"))
    if requested is None:
        return allowed
    if requested.strip().lower() == "none":
        return []
    chosen = _unique(g for e in parse_list(requested) for g in _match(e, gpus, what=f"--gpus {requested}"))
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


def busy_note(gpu: Gpu, *, memory_mib: int = BUSY_MEMORY_MIB) -> str | None:
    """The short form of busy_reason, for a waiting trial's line: "GPU 1 busy (another process uses
    30 GiB)". Rounded to GiB, so the line changes when the use does, not with every MiB."""
    if busy_reason(gpu, memory_mib=memory_mib) is None:
        return None
    who = ("another process" if gpu.other_processes <= 1 else f"{gpu.other_processes} other processes")
    uses = f"uses {gpu.memory_used_mib / 1024:.0f} GiB" if gpu.memory_used_mib > memory_mib else "runs there"
    where = f"GPU {gpu.key}" if gpu.mig is None else f"MIG {gpu.key}"
    return f"{where} busy ({who} {uses})"


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


def current(keys: list[GpuKey], nvml: Any = None) -> dict[GpuKey, Gpu]:
    """Fresh readings (memory, processes) of these GPUs, by slot key; {} where NVML cannot be read."""
    nvml = nvml or _nvml()
    if nvml is None:
        return {}
    try:
        return {g.key: g for g in inventory(nvml) if g.key in keys}
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
