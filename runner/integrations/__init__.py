"""Framework integrations for training scripts: each module imports its framework only when imported.

    from runner.integrations.hf import PlaybookCallback           # Hugging Face Trainer
    from runner.integrations.lightning import PlaybookLogger, PlaybookCallback   # Lightning

They report under the names the playbook's analyses read (train_loss, grad_norm, lr,
examples_per_s, peak_memory_mb) through one shared `runner.report.Reporter`, so
under torchrun/accelerate only rank 0 writes. Nothing here imports a framework.
"""

from __future__ import annotations

from runner.report import Reporter

_shared: Reporter | None = None


def shared_reporter() -> Reporter:
    """One Reporter per process: a logger and a callback share one buffer and one SIGTERM flush."""
    global _shared
    if _shared is None:
        _shared = Reporter()
    return _shared


def peak_memory_mb(device) -> float:
    """Peak memory so far in MiB (CUDA allocations on a GPU, resident set on a CPU); no GPU sync."""
    if getattr(device, "type", None) == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def number(value) -> float | None:
    """A loggable number (float, int, 0-d tensor, numpy scalar), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):  # strings, lists, multi-element tensors
        return None
