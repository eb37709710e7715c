"""GPU discovery and readings through NVML (nvidia-ml-py); an empty list where there is none."""

from __future__ import annotations

from dataclasses import dataclass


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


def discover() -> list[int]:
    """Indices of the GPUs NVML sees (one scheduling slot each)."""
    nvml = _nvml()
    if nvml is None:
        return []
    try:
        return list(range(nvml.nvmlDeviceGetCount()))
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
            out.append(GpuReading(i, name if isinstance(name, str) else name.decode(), util,
                                  mem.used // 2**20, mem.total // 2**20, temp))
        return out
    finally:
        nvml.nvmlShutdown()
