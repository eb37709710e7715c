"""A stdlib trial script that misbehaves on purpose, for the fault tests.

    python faulty.py MODE [--steps N] [--sleep S] [--rate R] [--seconds T] [--tag X]

Modes:
  steady   report one point per step (3 metrics), `--sleep` between steps
  forker   fork two children that sleep forever, write their pids to children.json, hang
  flood    write 100 MB to stdout within `--seconds`, then exit 0
  raw      write hand-made metric lines (malformed ones included) straight to the metrics file
  fast     report `--rate` steps/s for `--seconds` seconds through the Reporter
  burst    wait `--sleep` s, then append `--steps` metric lines at once and exit
  stubborn ignore SIGTERM, report a point every 0.05 s forever
  argv     write sys.argv[1:] to argv.json and exit
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
from runner.report import Reporter  # noqa: E402

FLOOD_BYTES = 100 * 2**20
TRIAL_DIR = os.environ.get("PLAYBOOK_TRIAL_DIR", ".")


def steady(args) -> int:
    report = Reporter(flush_every=4, flush_interval_s=0.05)
    for step in range(args.steps):
        report.log(step, train_loss=1.0 / (step + 1), val_loss=1.1 / (step + 1), grad_norm=0.5)
        time.sleep(args.sleep)
    return 0


def forker(args) -> int:
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            while True:  # a data-loader worker that never exits on its own
                time.sleep(0.1)
        children.append(pid)
    with open(os.path.join(TRIAL_DIR, "children.json.tmp"), "w") as f:
        json.dump(children, f)
    os.replace(os.path.join(TRIAL_DIR, "children.json.tmp"), os.path.join(TRIAL_DIR, "children.json"))
    while True:
        time.sleep(0.1)


def flood(args) -> int:
    line = (b"x" * 1023) + b"\n"
    block = line * 64
    out = sys.stdout.buffer
    blocks = FLOOD_BYTES // len(block)
    start = time.monotonic()
    for i in range(blocks):
        out.write(block)
        ahead = start + args.seconds * (i + 1) / blocks - time.monotonic()
        if ahead > 0:  # spread over --seconds (0: as fast as the disk takes it)
            out.flush()
            time.sleep(ahead)
    out.flush()
    Reporter().log(0, train_loss=1.0)  # the objective, so a clean exit is a result (not no_objective)
    return 0


# Each entry is written as is; "|" marks where the writer pauses mid-line (a torn write).
RAW_LINES = [
    '{"step": 0, "m": {"train_loss": 2.0}}\n',
    "this is not json\n",
    '{"step": 1, "m": {"train_loss": 1.9, "huge": 1e308}}\n',
    '{"step": 2, "m": {"train_loss": 1.8, "too_big": ' + "1" + "0" * 400 + "}}\n",
    '{"step": 3, "m": {"train_loss": 1.7}, "unknown": {"x": 1}, "also": [1, 2]}\n',
    '{"step": 5, "m": {"train_loss": 1.5}}\n',
    '{"step": 4, "m": {"train_loss": 1.6}}\n',  # out of order
    '{"step": 5, "m": {"train_loss": 1.45}}\n',  # repeated: the last value wins
    '{"step": 6, "m": {"acc": Infinity, "gn": -Infinity}}\n',
    '{"step": 7, "m": {"train_lo|ss": 1.3}}\n',  # torn: completed after a pause
    "\n",
    '{"step": 8, "m": {"train_loss": NaN}}\n',  # divergence
    '{"step": 9, "m": {"train_loss": 1.1}',  # the last line is never completed
]


def raw(args) -> int:
    path = os.environ["PLAYBOOK_METRICS_FILE"]
    with open(path, "a") as f:
        for entry in RAW_LINES:
            for i, piece in enumerate(entry.split("|")):
                if i:
                    time.sleep(0.6)  # long enough for the runner to see the half line
                f.write(piece)
                f.flush()
    time.sleep(args.sleep)
    return 0


def fast(args) -> int:
    report = Reporter(flush_every=256, flush_interval_s=0.25)
    step, start = 0, time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= args.seconds:
            break
        due = int(elapsed * args.rate)
        while step < due:
            report.log(step, loss=1.0 / (step + 1))
            step += 1
        time.sleep(0.01)
    report.close()
    return 0


def burst(args) -> int:
    time.sleep(args.sleep)
    with open(os.environ["PLAYBOOK_METRICS_FILE"], "a") as f:
        for step in range(args.steps):
            f.write(f'{{"step": {step}, "t": 1.5, "m": {{"train_loss": {1 / (step + 1)!r}}}}}\n')
    return 0


def stubborn(args) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    report = Reporter(flush_every=1, flush_interval_s=0.05)
    step = 0
    while True:
        report.log(step, train_loss=1.0)
        step += 1
        time.sleep(0.05)


def write_argv(args) -> int:
    with open(os.path.join(TRIAL_DIR, "argv.json"), "w") as f:
        json.dump(sys.argv[1:], f)
    return 0


MODES = {"steady": steady, "forker": forker, "flood": flood, "raw": raw, "fast": fast,
         "stubborn": stubborn, "burst": burst, "argv": write_argv}


def main() -> int:
    if sys.argv[1:2] == ["argv"]:  # before parsing: a value like --steps=0 must not be read as an option
        return write_argv(None)
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--tag", action="append", default=[])
    args, _ = p.parse_known_args()
    return MODES[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
