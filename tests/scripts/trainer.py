"""A small stdlib 'training' script for runner tests: real process, real reporting.

    python trainer.py --steps N --lr LR --mode ok|crash|nan|hang|segv|ignore_term|cuda_oom|print
"""

import argparse
import json
import math
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from runner.report import Reporter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--mode", default="ok")
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    if os.environ.get("PLAYBOOK_TRIAL_DIR"):
        with open(os.path.join(os.environ["PLAYBOOK_TRIAL_DIR"], "argv.json"), "w") as f:
            json.dump(sys.argv[1:], f)
        with open(os.path.join(os.environ["PLAYBOOK_TRIAL_DIR"], "env.json"), "w") as f:
            json.dump({k: v for k, v in os.environ.items()
                       if k.startswith(("PLAYBOOK_", "CUDA_"))}, f)
    if args.mode == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    report = Reporter(flush_every=8, flush_interval_s=0.05)
    loss = 2.0
    for step in range(args.steps):
        loss = loss * (1 - min(args.lr, 0.5)) + 0.01
        if args.mode == "nan" and step == args.steps // 2:
            loss = float("nan")
        if args.mode == "print":
            print(f"step {step} loss={loss:.5f} acc={1 - loss / 2:.4f}", flush=True)
        else:
            report.log(step, train_loss=loss, val_loss=loss + 0.05, grad_norm=1.0 / (step + 1))
        time.sleep(args.sleep)
        if args.mode == "crash" and step == 3:
            print("Traceback (most recent call last):\nValueError: bad batch shape", file=sys.stderr)
            return 3
        if args.mode == "cuda_oom" and step == 2:
            print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
            return 1
        if args.mode == "segv" and step == 2:
            report.flush()
            os.kill(os.getpid(), signal.SIGSEGV)
        if args.mode == "nan" and math.isnan(loss):
            loss = 2.0
    while args.mode in ("hang", "ignore_term"):
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
