"""Train a small MLP on the generated 16x16 digits (glyphs.py) and report to playbook-tui.

    python train.py --lr 0.1 --width 128 --steps 300

Schedule: SGD with Nesterov momentum, learning rate cosine-decayed from --lr
to 0 over --steps. Too high a --lr diverges (NaN loss): the script reports it
and exits 1. Runs alone too: outside the runner the Reporter is a no-op and
progress is printed at each evaluation. Uses CUDA when there is one, else one
CPU thread (the runner runs trials side by side; one should not take every core).
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

import glyphs

MEMORY_EVERY = 10  # steps between peak-memory reports (the batch-size probe shows them)
DATA_SEED = 0  # fixed: every trial sees the same data; --seed varies init and batch order


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (cosine-decayed to 0)")
    p.add_argument("--width", type=int, default=128, help="hidden units in each of the 2 layers")
    p.add_argument("--momentum", type=float, default=0.9, help="Nesterov momentum of SGD")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=300, help="training steps (max_train_steps)")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=8000)
    p.add_argument("--val-size", type=int, default=2000)
    p.add_argument("--out", type=Path, default=None,
                   help="trial directory: save the best state_dict there and mark it as a checkpoint")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (ignored on CUDA)")
    return p.parse_args(argv)


def mlp(width: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(glyphs.SIZE * glyphs.SIZE, width), torch.nn.ReLU(),
        torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, glyphs.CLASSES),
    )


class NesterovSGD:
    """torch.optim.SGD(momentum=m, nesterov=True, weight_decay=wd), step for step.

    Written out because constructing any torch.optim optimizer imports
    torch._dynamo (about 1.3 s on a CPU), longer than this whole training run.
    """

    def __init__(self, params: list[torch.nn.Parameter], momentum: float, weight_decay: float):
        self.params, self.momentum, self.weight_decay = params, momentum, weight_decay
        self.bufs = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        for p, buf in zip(self.params, self.bufs, strict=True):
            g = p.grad.add(p, alpha=self.weight_decay) if self.weight_decay else p.grad
            buf.mul_(self.momentum).add_(g)
            p.add_(g.add(buf, alpha=self.momentum) if self.momentum else g, alpha=-lr)


@torch.no_grad()
def evaluate(model, x, y, batch: int = 1000) -> tuple[float, float]:
    """(val_loss, val_error) over the whole validation set."""
    model.eval()
    loss_sum, wrong = 0.0, 0
    for i in range(0, len(x), batch):
        logits = model(x[i:i + batch])
        loss_sum += float(F.cross_entropy(logits, y[i:i + batch], reduction="sum"))
        wrong += int((logits.argmax(1) != y[i:i + batch]).sum())
    model.train()
    return loss_sum / len(x), wrong / len(x)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    report = Reporter()

    x_train, y_train, x_val, y_val = (
        t.to(device) for t in glyphs.split(args.train_size, args.val_size, seed=DATA_SEED))
    torch.manual_seed(args.seed)
    model = mlp(args.width).to(device)
    params = list(model.parameters())
    opt = NesterovSGD(params, args.momentum, args.weight_decay)
    batches = torch.Generator(device="cpu").manual_seed(args.seed)

    checkpoints = BestCheckpoint(args.out, report)
    last = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x_train), (args.batch_size,), generator=batches).to(device)
        # Cosine decay to 0: the playbook's default when the step budget is fixed.
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.steps))
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        for p in params:
            p.grad = None
        loss.backward()
        norm = grad_norm(params)  # unclipped total L2 norm, logged every step
        opt.step(lr)
        # One sync per step to catch divergence at once; negligible for a model this small.
        loss_value = loss.item()
        now = time.perf_counter()
        report.log(step, train_loss=loss_value, grad_norm=norm, lr=lr,
                   examples_per_s=args.batch_size / max(now - last, 1e-9))
        last = now
        if step % MEMORY_EVERY == 0 or step == args.steps:
            report.log(step, peak_memory_mb=peak_memory_mb(device))
        if not math.isfinite(loss_value):
            # The runner marks the trial diverged from this point; training on is wasted time.
            print(f"diverged: train_loss={loss_value} at step {step} (lr={args.lr:g})", file=sys.stderr)
            report.flush()
            return 1
        if step % args.eval_every == 0 or step == args.steps:
            val_loss, val_error = evaluate(model, x_val, y_val)
            report.log(step, val_error=val_error, val_loss=val_loss)
            checkpoints.offer(step, model, val_error)
            print(f"step {step:5d}  train_loss {loss_value:.4f}  val_loss {val_loss:.4f}  "
                  f"val_error {val_error:.4f}", flush=True)
            last = time.perf_counter()  # eval time is not training throughput
    report.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
