"""Cost of the Hugging Face integration per logging step, against the Trainer's own logging step.

A real `transformers.Trainer` trains a tiny GPT-2 (built from a config, no download) with
logging_steps=1 and no evaluation or saving, twice in one process:
  baseline  without our callback: each `Trainer._maybe_log_save_evaluate` call is timed; with
            nothing to evaluate or save, that call is exactly Trainer's own logging step (the loss
            gather and .item(), the learning rate, store_flos, building the logs, the callback
            handler). Trainer's printing callbacks are removed, so the baseline is its bare
            logging work (a smaller baseline: the ratio is the pessimistic one);
  ours      with runner.integrations.hf.PlaybookCallback writing through a real Reporter to a
            file: its on_log and on_step_end are timed (both run once per logging step), flushes
            included.
The figure is ours / baseline per logging step (median, and mean with the flushes), with a
whole training step of the same run for scale.

    .venv/bin/python bench/hf_callback.py [--steps N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import print_result, ratio  # noqa: E402

GOAL_RATIO = 1.0  # the callback may cost at most what Trainer's own logging step costs


def _trainer(steps: int, out: str, callbacks: list):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class Tokens(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.ids = torch.randint(32, (steps * 8, 32), generator=torch.Generator().manual_seed(0))

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "labels": self.ids[i]}

    torch.set_num_threads(1)  # one core, as a trial gets: threads fighting over a busy machine blur the steps
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                             bos_token_id=0, eos_token_id=0))
    args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=8, learning_rate=1e-3,
                             logging_steps=1, eval_strategy="no", save_strategy="no", report_to="none",
                             disable_tqdm=True, use_cpu=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=callbacks)
    for quiet in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(quiet)
    return trainer


def _timed(obj, name: str, samples: list[int]) -> None:
    """Replace obj.name with a wrapper that appends each call's duration (ns) to samples."""
    inner = getattr(obj, name)
    pc = time.perf_counter_ns

    def wrapper(*args, **kwargs):
        t0 = pc()
        try:
            return inner(*args, **kwargs)
        finally:
            samples.append(pc() - t0)

    setattr(obj, name, wrapper)


def _train(steps: int, with_callback: bool) -> dict:
    from transformers import TrainerCallback

    from runner.integrations.hf import PlaybookCallback
    from runner.report import Reporter

    log_steps: list[int] = []
    train_steps: list[int] = []
    on_log: list[int] = []
    on_step_end: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-hf-") as tmp:
        callbacks = []
        if with_callback:
            ours = PlaybookCallback(Reporter(os.path.join(tmp, "metrics.jsonl")))
            _timed(ours, "on_log", on_log)
            _timed(ours, "on_step_end", on_step_end)
            callbacks.append(ours)

        class StepClock(TrainerCallback):  # whole training steps, begin to end, for scale
            def on_step_begin(self, args, state, control, **kwargs):
                self.t0 = time.perf_counter_ns()

            def on_step_end(self, args, state, control, **kwargs):
                train_steps.append(time.perf_counter_ns() - self.t0)

        trainer = _trainer(steps, os.path.join(tmp, "out"), [*callbacks, StepClock()])
        _timed(trainer, "_maybe_log_save_evaluate", log_steps)
        trainer.train()
        if with_callback:
            ours.reporter.close()
            lines = sum(1 for _ in open(os.path.join(tmp, "metrics.jsonl")))
            assert lines == steps, f"{lines} metrics lines for {steps} steps"
    warm = slice(5, None)  # the first steps pay for lazy imports and allocations
    out = {"trainer_log_step_us": _stats(log_steps[warm]), "train_step_us": _stats(train_steps[warm])}
    if with_callback:
        # on_log runs once more, for Trainer's end-of-training summary (which the callback skips)
        ours_ns = [a + b for a, b in zip(on_log[:steps], on_step_end, strict=True)][warm]
        out["callback_us"] = _stats(ours_ns)
    return out


def _stats(ns: list[int]) -> dict:
    us = sorted(x / 1e3 for x in ns)
    return {"median": statistics.median(us), "mean": statistics.fmean(us), "p90": us[int(0.9 * (len(us) - 1))],
            "max": us[-1], "n": len(us)}


def run(steps: int = 400) -> dict:
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return {"missing": "transformers not installed (pip install -e '.[hf]')"}
    _train(10, with_callback=True)  # warm-up: imports, first-call costs
    base = _train(steps, with_callback=False)
    ours = _train(steps, with_callback=True)
    cb, tl = ours["callback_us"], base["trainer_log_step_us"]
    return {
        "steps": steps,
        "baseline": base,
        "ours": ours,
        "ratio_median": cb["median"] / tl["median"],
        "ratio_mean": cb["mean"] / tl["mean"],
        "share_of_train_step_median": cb["median"] / ours["train_step_us"]["median"],
        "goal": f"callback per logging step <= {GOAL_RATIO:g}x Trainer's own logging step (median)",
        "goal_met": cb["median"] / tl["median"] <= GOAL_RATIO,
    }


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    """(figure, ours, baseline, ratio, goal, met?) rows for run_all's table."""
    if "missing" in res:
        return [("HF PlaybookCallback per logging step", "", res["missing"], "", "", "")]
    cb, tl = res["ours"]["callback_us"], res["baseline"]["trainer_log_step_us"]
    step = res["ours"]["train_step_us"]
    return [
        ("HF PlaybookCallback per logging step (median)", f"{cb['median']:.1f} us",
         f"Trainer's logging step {tl['median']:.1f} us", ratio(res["ratio_median"]), f"<= {GOAL_RATIO:g}x",
         "yes" if res["goal_met"] else "NO"),
        ("HF PlaybookCallback per logging step (mean, flushes)", f"{cb['mean']:.1f} us",
         f"Trainer's logging step {tl['mean']:.1f} us", ratio(res["ratio_mean"]), "", ""),
        ("HF PlaybookCallback vs a whole training step", f"{cb['median']:.1f} us",
         f"tiny GPT-2 step {step['median']:.0f} us", ratio(res["share_of_train_step_median"]), "", ""),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    res = run(args.steps)
    print_result(res)
    for row in summary_rows(res):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
