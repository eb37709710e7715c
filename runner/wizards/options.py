"""Every wizard's options in one place: their flags, defaults, help and what a start needs.

The headless commands (runner.wizard_cli) add these to their subcommands, plus the options
of driving a wizard from a terminal (--yes, --json, --cpu-slots, --grace); the TUI's start
dialog parses the same flags from one line of text with `parse`, without the CLI (which
pulls in the runner service). `start` creates or resumes the wizard a parsed line asks for.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from runner.playbook.adopt import COMPLEXITIES, DEFAULT_SEEDS
from runner.wizards.engine import Kind
from runner.wizards.substudy import WizardError, parse_assignments

HELP = {
    "probe-batch": "batch-size throughput probe: doubling sizes until memory runs out",
    "warmup": "learning-rate sweep, then the warmup sweep at 10x the unstable lr",
    "decide": "adopt or not: seeds for baseline and candidate, Welch test, bootstrap CI",
    "length": "training length: steps to a loss target from a constant-lr sweep; rounds 1 and 2 when compute-bound",
}
# One line per kind for the TUI's start dialog: what the options look like.
USAGE = {
    "probe-batch": "STUDY [--start 8] [--cap 4096] [--steps 30] [--set NAME=VALUE] | --command 'CMD {batch_size}'",
    "warmup": "STUDY [--low LR] [--high LR] [--points 7] [--horizon STEPS] [--early-check] [--also-100x]",
    "decide": "BASELINE CANDIDATE [--seeds 5] [--complexity none|some|'a lot'] (STUDY, STUDY/N or STUDY:P=V)",
    "length": "STUDY [--low LR --high LR --points 5] [--horizon STEPS] [--target LOSS] [--sweep-set NAME=V] "
              "[--rounds --round1-steps N --round2-steps N --keep 3 --vary NAME=V1,V2]",
}


def _probe(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?", help="study whose command takes the batch size")
    p.add_argument("--command", help="a bare command instead, with a {batch_size} placeholder")
    p.add_argument("--batch-param", default="batch_size")
    p.add_argument("--start", type=int, default=8, help="first batch size (default 8)")
    p.add_argument("--cap", type=int, default=4096, help="largest batch size to try (default 4096)")
    p.add_argument("--steps", type=int, default=30, help="training steps per size (default 30)")
    p.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the throughput")
    p.add_argument("--train-steps", type=int, help="steps to estimate the training time for")
    p.add_argument("--gpus-per-trial", type=int, help="default: 1 when a GPU is found, else 0 (CPU)")
    _fixed_values(p)


def _warmup(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--lr-param", default="learning_rate")
    p.add_argument("--warmup-param", default="warmup_steps")
    p.add_argument("--low", type=float, help="lowest lr of the sweep (default: the study's range)")
    p.add_argument("--high", type=float, help="highest lr of the sweep (default: the study's range)")
    p.add_argument("--points", type=int, default=7, help="learning rates in the log grid (default 7)")
    p.add_argument("--horizon", type=int, help="steps of the lr sweep (default: a quarter of max_train_steps)")
    p.add_argument("--max-train-steps", type=int, help="steps of the warmup trials (default: the study's)")
    p.add_argument("--loss-metric", default="train_loss")
    p.add_argument("--grad-metric", default="grad_norm")
    p.add_argument("--early-check", action="store_true", help="also run ~500 steps at 2 x lr*, eval every step")
    p.add_argument("--also-100x", action="store_true", help="also run the second warmup sweep at 100x")
    p.add_argument("--concurrency", type=int, default=2)
    _fixed_values(p)


def _decide(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline", help="STUDY (its best trial), STUDY/N, or STUDY:PARAM=VALUE")
    p.add_argument("candidate", help="same forms as the baseline")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds per side (default 5)")
    p.add_argument("--complexity", choices=COMPLEXITIES, help="how much complexity the change adds")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--name", help="wizard name (default: derived from the study); the same name resumes it")


def _length(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--lr-param", default="learning_rate")
    p.add_argument("--schedule-param", default="schedule",
                   help="the study's parameter naming the lr schedule: constant | linear | cosine")
    p.add_argument("--decay-param", default="decay_steps",
                   help="linear: steps of the final decay; cosine: the cosine's period (default decay_steps)")
    p.add_argument("--low", type=float, help="lowest lr of the sweeps (default: the study's range)")
    p.add_argument("--high", type=float, help="highest lr of the sweeps (default: the study's range)")
    p.add_argument("--points", type=int, default=5, help="learning rates in the constant-lr sweep (default 5)")
    p.add_argument("--horizon", type=int, help="steps of the constant-lr sweep (default: max_train_steps)")
    p.add_argument("--target", type=float, help="training-loss target (default: proposed from the sweep)")
    p.add_argument("--loss-metric", default="train_loss")
    p.add_argument("--sweep-set", action="append", default=[], metavar="NAME=VALUE",
                   help="a value for the sweep only, e.g. --sweep-set weight_decay=0 (no regularization)")
    p.add_argument("--skip-sweep", action="store_true", help="headless: skip the constant-lr sweep")
    p.add_argument("--rounds", action="store_true", help="headless: also run rounds 1 and 2 (compute-bound)")
    p.add_argument("--round1-steps", type=int, help="steps of round 1 (default: a quarter of round 2's)")
    p.add_argument("--round2-steps", type=int, help="steps of round 2 (default: the study's max_train_steps)")
    p.add_argument("--round1-points", type=int, default=6, help="learning rates in round 1 (default 6)")
    p.add_argument("--keep", type=int, default=3, help="round 1's best configurations run again long (default 3)")
    p.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2",
                   help="round 1 also crosses the lr grid with these values of another parameter (e.g. width)")
    p.add_argument("--schedule", choices=("linear", "cosine"), help="the rounds' schedule (default: the study's)")
    p.add_argument("--decay-steps", type=int,
                   help="round 1's decay_steps (default: half of round 1 for linear, all of it for cosine)")
    p.add_argument("--concurrency", type=int, default=2)
    _fixed_values(p)


def _fixed_values(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="wizard name (default: derived from the study); the same name resumes it")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a parameter held fixed (default: the study's best trial)")
    p.add_argument("--from-trial", type=int, help="take the fixed values from this trial number")


ADDERS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "probe-batch": _probe, "warmup": _warmup, "decide": _decide, "length": _length}
KINDS = tuple(ADDERS)


def add_options(kind: str, p: argparse.ArgumentParser) -> None:
    """Add the wizard options of `kind` to a parser (the CLI's subcommand, or `parse`'s own)."""
    ADDERS[kind](p)


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of exiting: the TUI shows the message
        raise _ArgError(f"{self.prog}: {message}")


def parse(kind: str, argv: list[str]) -> argparse.Namespace:
    """`argv` parsed as the options of a `kind` wizard; raises WizardError with argparse's message."""
    if kind not in ADDERS:
        raise WizardError(f"unknown wizard {kind!r}; expected one of {', '.join(KINDS)}")
    parser = _Parser(prog=kind, add_help=False)
    add_options(kind, parser)
    try:
        args = parser.parse_args(argv)
    except _ArgError as exc:
        raise WizardError(str(exc)) from exc
    args.command_name = kind
    return args


def start(db: Database, db_path: Path, args: argparse.Namespace) -> Kind:
    """Create or resume the wizard parsed options ask for (the CLI and the TUI's dialog)."""
    from runner.wizards import start as s

    kind = args.command_name
    if kind == "probe-batch":
        return s.start_probe(db, db_path, study=args.study, command=args.command, name=args.name,
                             batch_param=args.batch_param, start=args.start, cap=args.cap, steps=args.steps,
                             skip=args.skip, train_steps=args.train_steps, gpus_per_trial=args.gpus_per_trial,
                             overrides=parse_assignments(args.set), from_trial=args.from_trial)
    if kind == "warmup":
        return s.start_warmup(db, db_path, study=args.study, name=args.name, lr_param=args.lr_param,
                              warmup_param=args.warmup_param, low=args.low, high=args.high, points=args.points,
                              horizon=args.horizon, max_train_steps=args.max_train_steps,
                              loss_metric=args.loss_metric, grad_metric=args.grad_metric,
                              concurrency=args.concurrency, overrides=parse_assignments(args.set),
                              from_trial=args.from_trial)
    if kind == "length":
        from runner.wizards.length import parse_vary, start_length

        return start_length(db, db_path, study=args.study, name=args.name, lr_param=args.lr_param,
                            schedule_param=args.schedule_param, decay_param=args.decay_param, low=args.low,
                            high=args.high, points=args.points, horizon=args.horizon, target=args.target,
                            loss_metric=args.loss_metric, sweep_overrides=parse_assignments(args.sweep_set),
                            round1_steps=args.round1_steps, round2_steps=args.round2_steps,
                            round1_points=args.round1_points, keep=args.keep, vary=parse_vary(args.vary),
                            schedule=args.schedule,
                            decay_steps=args.decay_steps, concurrency=args.concurrency,
                            overrides=parse_assignments(args.set), from_trial=args.from_trial)
    return s.start_decide(db, db_path, baseline=args.baseline, candidate=args.candidate, name=args.name,
                          seeds=args.seeds, complexity=args.complexity, concurrency=args.concurrency)


def optional_answers(args: argparse.Namespace) -> dict[str, str]:
    """How a headless run answers the optional stages without asking (the flags that choose them)."""
    if args.command_name == "warmup":
        return {"early-check": "run" if args.early_check else "skip",
                "warmup-100x": "run" if args.also_100x else "skip"}
    if args.command_name == "length":
        rounds = "run" if args.rounds else "skip"
        return {"sweep": "skip" if args.skip_sweep else "run", "round-1": rounds, "round-2": rounds}
    return {}


def proposal(kind: str, study_names: list[str]) -> str:
    """What the TUI's start dialog proposes: the first sensible study, with the usual options."""
    first = study_names[0] if study_names else "STUDY"
    if kind == "warmup":
        first = next((n for n in study_names if "transformer" in n), first)
        return f"{first} --points 6"
    if kind == "decide":
        return f"{first}/1 {first}/2 --seeds 5"
    if kind == "length":
        first = next((n for n in study_names if "length" in n), first)
        return f"{first} --points 5"
    return f"{first} --start 16 --cap 1024 --steps 30"
