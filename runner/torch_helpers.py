"""Torch helpers for training scripts (imported only by scripts, never by the runner or TUI)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import torch


def grad_norm(parameters: Iterable[torch.nn.Parameter], clip: float | None = None) -> torch.Tensor:
    """Total L2 norm of the unclipped gradient (a 0-d tensor); clips to `clip` when given.

    Call after backward() and before optimizer.step(). The norm is returned
    before clipping, which is what the playbook asks to log every step. It stays
    a tensor so logging it does not force a GPU sync every step.
    """
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return torch.zeros(())
    norm = torch.nn.utils.get_total_norm([p.grad for p in with_grad], norm_type=2.0)
    if clip is not None and math.isfinite(clip):
        torch.nn.utils.clip_grads_with_norm_(with_grad, clip, norm)
    return norm


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process so far, in MiB: CUDA allocations on a GPU, resident set on a CPU.

    The batch-size probe reads it to show how close each size came to running out.
    Neither read syncs the GPU.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class BestCheckpoint:
    """Keeps only the best checkpoint file of a run (lower objective is better) and reports each one.

    Every improvement is saved and marked through `reporter.checkpoint`, so the runner
    knows the retrospectively best step; the previous best file is then deleted, so a
    study of many trials does not fill the disk. `folder=None` saves nothing.
    """

    def __init__(self, folder: Path | None, reporter) -> None:
        self.folder, self.reporter = folder, reporter
        self.best = math.inf
        self.path: Path | None = None

    def offer(self, step: int, model: torch.nn.Module, objective: float) -> None:
        """Save `model` if `objective` beats every earlier one."""
        if self.folder is not None and objective < self.best:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"model_step{step}.pt"
            torch.save(model.state_dict(), path)
            self.reporter.checkpoint(step, path, objective=objective)
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            self.path = path
        self.best = min(self.best, objective)
