"""A real 2-process DDP training (gloo, CPU) for the torchrun test: every rank runs the same loop.

    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_trainer.py --steps N [--all-ranks 1]

Each rank trains on its own shard of a generated regression problem; DDP averages
the gradients, so every rank holds the same model. Every rank calls
Reporter.log and Reporter.checkpoint, as unmodified scripts do.
"""

import argparse
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from runner.report import Reporter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--all-ranks", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    report = Reporter(all_ranks=True) if args.all_ranks else Reporter()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g)
    x, y = x[rank::2], y[rank::2]
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for step in range(args.steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        report.log(step, train_loss=loss.item(), lr=args.lr)
        opt.step()
        if step % 5 == 4:
            report.log(step, val_loss=loss.item())
            report.checkpoint(step, f"ckpt_rank{rank}_step{step}.pt", objective=loss.item())
    report.close()
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
