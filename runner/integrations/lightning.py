"""Lightning -> the runner: a Logger that forwards `self.log(...)` metrics, and a Callback that reports
the unclipped gradient norm, the learning rate, throughput and memory.

    from runner.integrations.lightning import PlaybookCallback, PlaybookLogger
    trainer = L.Trainer(logger=PlaybookLogger(objective="val_loss"), callbacks=[PlaybookCallback()],
                        log_every_n_steps=1, ...)

PlaybookLogger: what the LightningModule logs, under its own names (log "train_loss" and
"val_loss"); `name_step` (from on_step=True with on_epoch=True) is stored as `name`, and
Lightning's `epoch` bookkeeping is dropped. Every checkpoint a ModelCheckpoint saves is
marked with the objective's value at that point (its monitored score when it monitors
the objective), so the runner knows the retrospectively best one; a ModelCheckpoint without
a dirpath saves into the trial's folder.

PlaybookCallback, at each optimizer step (every `every_n_steps`): grad_norm, the L2 norm
of the full gradient before Lightning clips it (on_before_optimizer_step), lr of the
first parameter group as the scheduler set it, and after the step examples_per_s
(batch size x world size over training time, validation excluded) and peak_memory_mb.

Both write through one shared Reporter, from global rank 0 only. Imports
`lightning.pytorch`, else the older `pytorch_lightning` package.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

try:
    from lightning.pytorch import Callback
    from lightning.pytorch.loggers import Logger
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # the standalone pytorch-lightning distribution
    from pytorch_lightning import Callback
    from pytorch_lightning.loggers import Logger
    from pytorch_lightning.utilities import rank_zero_only

from runner.integrations import number, peak_memory_mb, shared_reporter
from runner.report import Reporter

TRIAL_DIR_ENV = "PLAYBOOK_TRIAL_DIR"  # set by the runner for each trial
SKIPPED = {"epoch"}
STEP_SUFFIX = "_step"


class PlaybookLogger(Logger):
    """Forwards logged metrics and saved checkpoints to the runner (a no-op outside it)."""

    def __init__(self, objective: str | None = None, reporter: Reporter | None = None) -> None:
        """`objective`: the metric a checkpoint is marked with (the study's objective, e.g. "val_loss")."""
        super().__init__()
        self.reporter = reporter if reporter is not None else shared_reporter()
        self.objective = objective
        self._latest: tuple[int, float] | None = None  # (step, value) of the objective last logged

    @property
    def name(self) -> str:
        return "playbook"

    @property
    def version(self) -> str:
        return "0"

    @property
    def save_dir(self) -> str | None:
        """The trial's folder under the runner: a ModelCheckpoint without a dirpath saves into it
        (TRIAL_DIR/playbook/0/checkpoints), not into the study's working directory."""
        return os.environ.get(TRIAL_DIR_ENV) or None

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing: a trial's parameters come from the study file, the runner has them already."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        points = {}
        for name, value in metrics.items():
            if name in SKIPPED or (v := number(value)) is None:
                continue
            if name.endswith(STEP_SUFFIX) and name[: -len(STEP_SUFFIX)] not in metrics:
                name = name[: -len(STEP_SUFFIX)]
            points[name] = v
        if not points:
            return
        step = int(step or 0)
        if self.objective in points:
            self._latest = (step, points[self.objective])
        self.reporter.log(step, **points)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback) -> None:
        cb = checkpoint_callback
        path = getattr(cb, "_last_checkpoint_saved", "") or cb.last_model_path
        if not path:
            return
        # Saved after N optimizer steps; Lightning logs what it measured then (validation) at step N - 1.
        step = max(0, int(getattr(cb, "_last_global_step_saved", None) or 0) - 1)
        self.reporter.checkpoint(step, path, objective=self._objective_at(step, cb))

    def _objective_at(self, step: int, checkpoint_callback) -> float | None:
        """Its monitored score when it monitors the objective, else the objective logged at this very
        step (an older value would describe another model)."""
        if self.objective is None:
            return None
        if checkpoint_callback.monitor == self.objective and checkpoint_callback.current_score is not None:
            return number(checkpoint_callback.current_score)
        return self._latest[1] if self._latest and self._latest[0] == step else None

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.reporter.flush()


class PlaybookCallback(Callback):
    """Per optimizer step: the unclipped gradient norm, the learning rate, throughput and memory."""

    def __init__(self, reporter: Reporter | None = None, every_n_steps: int = 1) -> None:
        self.reporter = reporter if reporter is not None else shared_reporter()
        self.every_n_steps = max(1, every_n_steps)
        self._mark: float | None = None  # start of the current stretch of training time
        self._train_s = 0.0
        self._examples = 0
        self._steps_done = 0  # trainer.global_step when the throughput was last reported

    def _due(self, trainer) -> bool:
        return trainer.is_global_zero and trainer.global_step % self.every_n_steps == 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        # Called after backward (gradients accumulated and unscaled) and before Lightning clips them.
        if not self._due(trainer):
            return
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        points: dict[str, Any] = {"lr": optimizer.param_groups[0]["lr"]}
        if grads:
            points["grad_norm"] = torch.nn.utils.get_total_norm(grads, norm_type=2.0)  # a tensor: no sync
        self.reporter.log(trainer.global_step, **points)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._mark is None:
            self._mark = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._examples += _batch_size(batch) * trainer.world_size
        if trainer.global_step == self._steps_done:
            return  # accumulating gradients: no optimizer step yet
        now = time.perf_counter()
        self._train_s += now - (self._mark if self._mark is not None else now)
        step = trainer.global_step - 1  # the step just taken, as on_before_optimizer_step numbered it
        if trainer.is_global_zero and step % self.every_n_steps == 0 and self._train_s > 0:
            self.reporter.log(step, examples_per_s=self._examples / self._train_s,
                              peak_memory_mb=peak_memory_mb(pl_module.device))
        self._steps_done, self._examples, self._train_s, self._mark = trainer.global_step, 0, 0.0, now

    def on_validation_start(self, trainer, pl_module) -> None:
        if self._mark is not None:  # validation inside fit is not training time
            self._train_s += time.perf_counter() - self._mark
        self._mark = None

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.reporter.flush()


def _batch_size(batch: Any) -> int:
    """Examples in a batch: the first dimension of its first tensor (in a tensor, sequence or mapping)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        if (n := _batch_size(item)) > 0:
            return n
    return 0
