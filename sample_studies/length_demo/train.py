"""Fit a small MLP to a fixed training set with a chosen lr schedule, and report to playbook-tui.

    python train.py --lr 0.1 --schedule linear --decay-steps 100 --steps 400

The sample of the training-length wizard. Data: 256 training examples (32-d Gaussian
inputs, 4 classes from a fixed random teacher, 10% of the labels replaced at random, so
fitting them all takes memorizing), a held-out set of 2000 from the same teacher. SGD
with momentum 0.9 on minibatches of 64 drawn from the fixed training set.

Schedules (the parameter names the wizard's study uses):
  constant  the peak lr every step (decay_steps ignored);
  linear    the peak lr for max_train_steps - decay_steps steps, then linearly to 0 over
            the last decay_steps steps;
  cosine    from the peak lr to 0 along a half cosine over decay_steps steps (0 after them).
Reports train_loss and lr every step, val_loss and val_error every --eval-every steps.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

try:
    from runner.report import Reporter
except ImportError:  # playbook-tui not installed in this interpreter: use the repo checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from runner.report import Reporter

INPUTS, CLASSES = 32, 4
TRAIN_SIZE, VAL_SIZE = 256, 2000
DATA_SEED = 0  # the teacher, the training set and the held-out set never change; --seed moves init and batches
LABEL_NOISE = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    p.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant")
    p.add_argument("--decay-steps", type=int, default=0, help="linear: final decay length; cosine: its period")
    p.add_argument("--steps", type=int, default=400, help="training steps (max_train_steps)")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def lr_at(step: int, peak: float, schedule: str, steps: int, decay_steps: int) -> float:
    """The lr of 1-based `step` under the schedule (see the module docstring)."""
    if schedule == "constant" or decay_steps <= 0:
        return peak
    if schedule == "linear":
        start = steps - decay_steps  # the last step at the peak
        return peak if step <= start else peak * max(0.0, (steps - step) / decay_steps)
    return peak * 0.5 * (1 + math.cos(math.pi * min(step, decay_steps) / decay_steps))


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(DATA_SEED)
    teacher = torch.randn(INPUTS, CLASSES, generator=g)
    x = torch.randn(TRAIN_SIZE + VAL_SIZE, INPUTS, generator=g)
    y = torch.tanh(x @ teacher).argmax(1)
    noisy = torch.rand(TRAIN_SIZE, generator=g) < LABEL_NOISE
    y[:TRAIN_SIZE] = torch.where(noisy, torch.randint(0, CLASSES, (TRAIN_SIZE,), generator=g), y[:TRAIN_SIZE])
    return x[:TRAIN_SIZE], y[:TRAIN_SIZE], x[TRAIN_SIZE:], y[TRAIN_SIZE:]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    report = Reporter()
    x_train, y_train, x_val, y_val = data()
    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(INPUTS, args.width), torch.nn.ReLU(),
                                torch.nn.Linear(args.width, args.width), torch.nn.ReLU(),
                                torch.nn.Linear(args.width, CLASSES))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    batches = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        lr = lr_at(step, args.lr, args.schedule, args.steps, args.decay_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, TRAIN_SIZE, (args.batch_size,), generator=batches)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.item()
        report.log(step, train_loss=value, lr=lr)
        if not math.isfinite(value):
            print(f"diverged: train_loss={value} at step {step} (lr={args.lr:g})", file=sys.stderr)
            report.flush()
            return 1
        if step % args.eval_every == 0 or step == args.steps:
            with torch.no_grad():
                logits = model(x_val)
                val_loss = float(F.cross_entropy(logits, y_val))
                val_error = float((logits.argmax(1) != y_val).float().mean())
            report.log(step, val_loss=val_loss, val_error=val_error)
            print(f"step {step:4d}  train_loss {value:.4f}  val_loss {val_loss:.4f}  lr {lr:.4g}", flush=True)
    report.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
