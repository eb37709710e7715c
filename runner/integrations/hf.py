"""Hugging Face `Trainer` -> the runner: a TrainerCallback that reports what the analyses read.

    from runner.integrations.hf import PlaybookCallback
    trainer = Trainer(..., callbacks=[PlaybookCallback()])

At every logging step (TrainingArguments.logging_steps; set 1 for the playbook's
per-step curves) it reports, at `state.global_step`:
  loss -> train_loss, grad_norm (Trainer's unclipped norm), learning_rate -> lr,
  examples_per_s (per-device batch x gradient accumulation x world size, over the
  training time since the last log: evaluation and saving excluded),
  peak_memory_mb, and flops (Trainer's cumulative `total_flos` estimate) when known;
  any other number logged by the Trainer or the model under its own name.
Evaluation metrics keep Trainer's prefix (eval_loss, eval_accuracy; test_loss from
evaluate(metric_key_prefix="test")); `eval_prefix` replaces `eval_` (eval_prefix="val_"
stores val_loss). `on_save` marks the
checkpoint folder with the objective evaluated at that step. Only the world process
zero reports (and the Reporter itself writes from rank 0 only).
"""

from __future__ import annotations

import os
import time
from typing import Any

from transformers import TrainerCallback

from runner.integrations import number, peak_memory_mb, shared_reporter
from runner.report import Reporter

RENAMES = {"loss": "train_loss", "learning_rate": "lr"}
# Trainer's own bookkeeping: not training signals, and `epoch` is the step axis in other units.
SKIPPED = {"epoch", "total_flos", "num_input_tokens_seen"}
EVAL_BOOKKEEPING = ("_runtime", "_samples_per_second", "_steps_per_second")
EVAL_PREFIX = "eval_"
CHECKPOINT_PREFIX = "checkpoint"  # transformers' PREFIX_CHECKPOINT_DIR


class PlaybookCallback(TrainerCallback):
    """Forwards Trainer logs, throughput and checkpoints to the runner (a no-op outside it)."""

    def __init__(self, reporter: Reporter | None = None, *, objective: str | None = None,
                 eval_prefix: str = EVAL_PREFIX) -> None:
        """`objective`: the eval metric a checkpoint is marked with, as Trainer names it (eval_loss);
        None: TrainingArguments.metric_for_best_model, else eval_loss."""
        self.reporter = reporter if reporter is not None else shared_reporter()
        self.objective = objective
        self.eval_prefix = eval_prefix
        self._evaluated: dict[str, float] = {}  # Trainer's eval metric name -> value at _evaluated_step
        self._evaluated_step: int | None = None
        self._mark: float | None = None  # start of the current stretch of training time
        self._train_s = 0.0  # training seconds since the last log, stretches summed
        self._last_logged_step = 0

    # -- throughput: training time between logs, without evaluation and saving --

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self._mark, self._train_s, self._last_logged_step = time.perf_counter(), 0.0, state.global_step

    def on_step_end(self, args, state, control, **kwargs) -> None:
        # The stretch since the last mark: data loading, forward, backward, optimizer step.
        now = time.perf_counter()
        if self._mark is not None:
            self._train_s += now - self._mark
        self._mark = now

    def _restart_clock(self) -> None:
        """After logging, evaluation or saving: what came since the last step end is not training time."""
        self._mark = time.perf_counter()

    def _throughput(self, args, state) -> float | None:
        steps = state.global_step - self._last_logged_step
        if steps <= 0 or self._train_s <= 0:
            return None
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        return steps * per_step / self._train_s

    # -- logs --

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if "train_runtime" in logs:  # the end-of-training summary: averages, not a point of the curve
            return
        if "loss" not in logs and "learning_rate" not in logs:
            # Not a training log: evaluate() (eval_, test_ or another metric_key_prefix) or the script's
            # own trainer.log() call; no throughput or memory point, which the training log has given.
            if points := self._eval_points(logs):
                self.reporter.log(state.global_step, **points)
            return
        points = {RENAMES.get(name, name): v for name, value in logs.items()
                  if name not in SKIPPED and (v := number(value)) is not None}
        if (rate := self._throughput(args, state)) is not None:
            points["examples_per_s"] = rate
        points["peak_memory_mb"] = peak_memory_mb(args.device)
        if state.total_flos:
            points["flops"] = float(state.total_flos)
        self._train_s, self._last_logged_step = 0.0, state.global_step
        self.reporter.log(state.global_step, **points)
        self._restart_clock()

    def _eval_points(self, logs: dict[str, Any]) -> dict[str, float]:
        points = {}
        for name, value in logs.items():
            if name in SKIPPED or name.endswith(EVAL_BOOKKEEPING) or (v := number(value)) is None:
                continue
            stored = self.eval_prefix + name[len(EVAL_PREFIX):] if name.startswith(EVAL_PREFIX) else name
            points[stored] = v
        return points

    def on_evaluate(self, args, state, control, metrics: dict[str, Any] | None = None, **kwargs) -> None:
        self._evaluated = {k: v for k, value in (metrics or {}).items() if (v := number(value)) is not None}
        self._evaluated_step = state.global_step
        self._restart_clock()

    # -- checkpoints --

    def _objective_name(self, args) -> str:
        name = self.objective or getattr(args, "metric_for_best_model", None) or "loss"
        return name if name.startswith(EVAL_PREFIX) else EVAL_PREFIX + name  # Trainer's own rule

    def on_save(self, args, state, control, **kwargs) -> None:
        if not state.is_world_process_zero:
            return
        folder = os.path.abspath(os.path.join(args.output_dir, f"{CHECKPOINT_PREFIX}-{state.global_step}"))
        # Only an objective measured at this very step describes this checkpoint.
        fresh = self._evaluated_step == state.global_step
        objective = self._evaluated.get(self._objective_name(args)) if fresh else None
        self.reporter.checkpoint(state.global_step, folder, objective=objective)
        self._restart_clock()

    def on_train_end(self, args, state, control, **kwargs) -> None:
        if state.is_world_process_zero:
            self.reporter.flush()
