"""A 'training' script that only prints, the way common examples do (stdlib only, no Reporter).

    python printed_log.py --epochs E --batches B --log-interval K --lr LR [--style lstm|steps]

--style lstm (default) prints the word-level LSTM language model example's shapes, the
batch index restarting every epoch:

    | epoch   1 |    20/  167 batches | lr 20.00 | ms/batch 50.1 | loss  8.80 | ppl  6634.2
    -----------------------------------------------------------------------------------------
    | end of epoch   1 | time: 12.3s | valid loss  6.88 | valid ppl   972.4
    -----------------------------------------------------------------------------------------

--style steps prints `step 50.00 loss 1.2345` (a step printed as a float), and one line
with a step that is not a whole number (`step 50.50 ...`).
"""

import argparse
import math
import sys
import time

RULE = "-" * 89


def lstm(args) -> None:
    loss = 8.8
    for epoch in range(1, args.epochs + 1):
        began = time.time()
        for batch in range(args.log_interval, args.batches, args.log_interval):
            loss = loss * (1 - args.lr / 1000) + 0.01
            print(f"| epoch {epoch:3d} | {batch:5d}/{args.batches:5d} batches | lr {args.lr:.2f} | "
                  f"ms/batch {50.1:.1f} | loss {loss:5.2f} | ppl {math.exp(loss):7.1f}", flush=True)
            time.sleep(args.sleep)
        valid = loss - 1.9
        print(RULE)
        print(f"| end of epoch {epoch:3d} | time: {time.time() - began:4.1f}s | valid loss {valid:5.2f} | "
              f"valid ppl {math.exp(valid):7.1f}")
        print(RULE, flush=True)


def steps(args) -> None:
    loss = 2.0
    for step in range(0, args.batches, args.log_interval):
        loss *= 0.9
        print(f"step {step:.2f} loss {loss:.4f}", flush=True)
    print(f"step {args.batches - 0.5:.2f} loss {loss:.4f}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batches", type=int, default=167)
    p.add_argument("--log-interval", type=int, default=20)
    p.add_argument("--lr", type=float, default=20.0)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--style", default="lstm", choices=("lstm", "steps"))
    args = p.parse_args()
    (lstm if args.style == "lstm" else steps)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
