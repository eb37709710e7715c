"""Torch helpers for training scripts (imported only by scripts, never by the runner or TUI)."""

from __future__ import annotations

import math
from collections.abc import Iterable

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
