"""Train a tanh MLP with a learnable output scale that needs warmup, and report to playbook-tui.

    python train.py --lr 1 --warmup-steps 100 --steps 2000

The logits are exp(b) * mlp(x) with b learnable and b = ln 100 at the start: the
loss is very sharp along the last layer and along b until training shrinks the
scale. Plain SGD (no momentum), linear warmup from 0 to --lr over
--warmup-steps, then constant. Without warmup, learning rates from about 0.1 up
throw b so far down in the first steps that the logits are ~0 for good: the loss
parks at ln 4 = 1.386 nats (a dead network, not NaN). A 100-step warmup trains at
lr 1. Data: 16-d Gaussian inputs labelled by a fixed random teacher with 10% of
the labels replaced at random (so the loss floor is ~0.4 nats, not 0), a fresh
batch every step. Uses CUDA when there is one, else one CPU thread.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

try:
    from runner.report import Reporter
    from runner.torch_helpers import BestCheckpoint, grad_norm, peak_memory_mb
except ImportError:  # playbook-tui not installed in this interpreter: use the repo checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from runner.report import Reporter
    from runner.torch_helpers import BestCheckpoint, grad_norm, peak_memory_mb

INPUTS, CLASSES = 16, 4
DATA_SEED = 0  # fixed teacher and validation set; --seed varies init and batches
VAL_SEED = 1  # the validation inputs come from their own stream, never seen in training
INIT_SCALE = 100.0  # exp(b) at step 0: large enough that the first steps at high lr kill the net
LAST_LAYER_GAIN = 0.01  # keeps exp(b) * output ~ 1 at init, so the first loss is ~ln 4
MEMORY_EVERY = 50  # steps between peak-memory reports


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.03, help="base learning rate (after warmup)")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warmup from 0 over this many steps")
    p.add_argument("--steps", type=int, default=2000, help="training steps (max_train_steps)")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=64, help="hidden units in each of the 3 hidden layers")
    p.add_argument("--label-noise", type=float, default=0.1, help="share of labels replaced at random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=int, default=2000)
    p.add_argument("--out", type=Path, default=None,
                   help="trial directory: save the best state_dict there and mark it as a checkpoint")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (ignored on CUDA)")
    return p.parse_args(argv)


class ScaledMLP(torch.nn.Module):
    """x -> tanh MLP (no biases) -> times exp(b); b starts at ln INIT_SCALE and is learned."""

    def __init__(self, width: int):
        super().__init__()
        dims = [INPUTS, width, width, width, CLASSES]
        ws = [torch.randn(a, b) / math.sqrt(a) for a, b in zip(dims[:-1], dims[1:], strict=True)]
        ws[-1].mul_(LAST_LAYER_GAIN)
        self.weights = torch.nn.ParameterList(torch.nn.Parameter(w) for w in ws)
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(INIT_SCALE)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights[:-1]:
            x = torch.tanh(x @ w)
        return self.log_scale.exp() * (x @ self.weights[-1])


class Teacher:
    """Labels: argmax of tanh(x A) for a fixed random A, a `noise` share replaced uniformly."""

    def __init__(self, noise: float, device: torch.device):
        g = torch.Generator().manual_seed(DATA_SEED)
        self.a = (torch.randn(INPUTS, CLASSES, generator=g) / math.sqrt(INPUTS)).to(device)
        self.noise, self.device = noise, device

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, INPUTS, generator=gen)
        flip = torch.rand(n, generator=gen) < self.noise
        random = torch.randint(0, CLASSES, (n,), generator=gen)
        x, flip, random = x.to(self.device), flip.to(self.device), random.to(self.device)
        return x, torch.where(flip, random, torch.tanh(x @ self.a).argmax(1))


def lr_at(step: int, base: float, warmup_steps: int) -> float:
    """Linear warmup from 0 (step 1 gets base / warmup_steps), then constant at base."""
    if warmup_steps <= 0:
        return base
    return base * min(1.0, step / warmup_steps)


@torch.no_grad()
def evaluate(model, x, y) -> tuple[float, float]:
    """(val_loss in nats, val_error) over the whole validation set."""
    logits = model(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) != y).float().mean())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    report = Reporter()

    teacher = Teacher(args.label_noise, device)
    x_val, y_val = teacher.batch(args.val_size, torch.Generator().manual_seed(VAL_SEED))
    torch.manual_seed(args.seed)
    model = ScaledMLP(args.width).to(device)
    params = list(model.parameters())
    batches = torch.Generator().manual_seed(args.seed)

    checkpoints = BestCheckpoint(args.out, report)
    last = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = teacher.batch(args.batch_size, batches)
        lr = lr_at(step, args.lr, args.warmup_steps)
        loss = F.cross_entropy(model(x), y)
        for p in params:
            p.grad = None
        loss.backward()
        norm = grad_norm(params)  # unclipped total L2 norm, logged every step
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=lr)
        loss_value = loss.item()  # one sync per step catches divergence at once
        now = time.perf_counter()
        report.log(step, train_loss=loss_value, grad_norm=norm, lr=lr,
                   examples_per_s=args.batch_size / max(now - last, 1e-9))
        last = now
        if step % MEMORY_EVERY == 0 or step == args.steps:
            report.log(step, peak_memory_mb=peak_memory_mb(device))
        if not math.isfinite(loss_value):
            print(f"diverged: train_loss={loss_value} at step {step} (lr={args.lr:g}, "
                  f"warmup_steps={args.warmup_steps})", file=sys.stderr)
            report.flush()
            return 1
        if step % args.eval_every == 0 or step == args.steps:
            val_loss, val_error = evaluate(model, x_val, y_val)
            report.log(step, val_loss=val_loss, val_error=val_error)
            checkpoints.offer(step, model, val_loss)
            print(f"step {step:5d}  train_loss {loss_value:.4f}  val_loss {val_loss:.4f}  "
                  f"val_error {val_error:.4f}  scale {float(model.log_scale.detach().exp()):.3g}", flush=True)
            last = time.perf_counter()  # eval time is not training throughput
    report.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
