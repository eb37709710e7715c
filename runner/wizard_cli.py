"""The wizards' headless forms: `playbook-runner probe-batch | warmup | decide | wizards`.

Each command creates the wizard (or resumes the stored one of that name), then drives
it: confirm a stage (prompt, or --yes), run its trials (in this process when no runner
owns the database, else through that runner), and print the verdict with its evidence.
Interrupting it loses nothing: running it again resumes from the store.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from runner.owner import live_owner
from runner.playbook import adopt
from runner.service import DEFAULT_GRACE_S, Runner
from runner.text import printable
from runner.wizards import view
from runner.wizards.engine import Kind, Question, Status
from runner.wizards.start import by_name, start_decide, start_probe, start_warmup
from runner.wizards.substudy import WizardError, parse_assignments
from store import connect, studies
from store import wizards as wizard_store


def add_parsers(sub) -> None:
    probe = sub.add_parser("probe-batch", help="batch-size throughput probe: doubling sizes until memory runs out")
    probe.add_argument("study", nargs="?", help="study whose command takes the batch size")
    probe.add_argument("--command", help="a bare command instead, with a {batch_size} placeholder")
    probe.add_argument("--batch-param", default="batch_size")
    probe.add_argument("--start", type=int, default=8, help="first batch size (default 8)")
    probe.add_argument("--cap", type=int, default=4096, help="largest batch size to try (default 4096)")
    probe.add_argument("--steps", type=int, default=30, help="training steps per size (default 30)")
    probe.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the throughput")
    probe.add_argument("--train-steps", type=int, help="steps to estimate the training time for")
    probe.add_argument("--gpus-per-trial", type=int, help="default: 1 when a GPU is found, else 0 (CPU)")
    _common(probe, set_values=True)
    probe.set_defaults(func=cmd_start, command_name="probe-batch")

    warm = sub.add_parser("warmup", help="learning-rate sweep, then the warmup sweep at 10x the unstable lr")
    warm.add_argument("study")
    warm.add_argument("--lr-param", default="learning_rate")
    warm.add_argument("--warmup-param", default="warmup_steps")
    warm.add_argument("--low", type=float, help="lowest lr of the sweep (default: the study's range)")
    warm.add_argument("--high", type=float, help="highest lr of the sweep (default: the study's range)")
    warm.add_argument("--points", type=int, default=7, help="learning rates in the log grid (default 7)")
    warm.add_argument("--horizon", type=int, help="steps of the lr sweep (default: a quarter of max_train_steps)")
    warm.add_argument("--max-train-steps", type=int, help="steps of the warmup trials (default: the study's)")
    warm.add_argument("--loss-metric", default="train_loss")
    warm.add_argument("--grad-metric", default="grad_norm")
    warm.add_argument("--early-check", action="store_true", help="also run ~500 steps at 2 x lr*, eval every step")
    warm.add_argument("--also-100x", action="store_true", help="also run the second warmup sweep at 100x")
    warm.add_argument("--concurrency", type=int, default=2)
    _common(warm, set_values=True)
    warm.set_defaults(func=cmd_start, command_name="warmup")

    dec = sub.add_parser("decide", help="adopt or not: seeds for baseline and candidate, Welch test, bootstrap CI")
    dec.add_argument("baseline", help="STUDY (its best trial), STUDY/N, or STUDY:PARAM=VALUE")
    dec.add_argument("candidate", help="same forms as the baseline")
    dec.add_argument("--seeds", type=int, default=adopt.DEFAULT_SEEDS, help="seeds per side (default 5)")
    dec.add_argument("--complexity", choices=adopt.COMPLEXITIES, help="how much complexity the change adds")
    dec.add_argument("--concurrency", type=int, default=2)
    _common(dec)
    dec.set_defaults(func=cmd_start, command_name="decide")

    ls = sub.add_parser("wizards", help="stored wizards, or one wizard's verdict and evidence")
    ls.add_argument("name", nargs="?")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_wizards)


def _common(p: argparse.ArgumentParser, set_values: bool = False) -> None:
    p.add_argument("--name", help="wizard name (default: derived from the study); the same name resumes it")
    p.add_argument("--yes", "-y", action="store_true", help="confirm every stage without asking")
    p.add_argument("--json", action="store_true", help="print the result with every number as JSON")
    p.add_argument("--cpu-slots", type=int, default=None)
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    if set_values:
        p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="value of a parameter held fixed (default: the study's best trial)")
        p.add_argument("--from-trial", type=int, help="take the fixed values from this trial number")


def start_from_args(db, db_path: Path, args) -> Kind:
    """Create or resume the wizard a parsed command line asks for (the CLI and the TUI's dialog)."""
    if args.command_name == "probe-batch":
        return start_probe(db, db_path, study=args.study, command=args.command, name=args.name,
                           batch_param=args.batch_param, start=args.start, cap=args.cap, steps=args.steps,
                           skip=args.skip, train_steps=args.train_steps, gpus_per_trial=args.gpus_per_trial,
                           overrides=parse_assignments(args.set), from_trial=args.from_trial)
    if args.command_name == "warmup":
        return start_warmup(db, db_path, study=args.study, name=args.name, lr_param=args.lr_param,
                            warmup_param=args.warmup_param, low=args.low, high=args.high, points=args.points,
                            horizon=args.horizon, max_train_steps=args.max_train_steps,
                            loss_metric=args.loss_metric, grad_metric=args.grad_metric,
                            concurrency=args.concurrency, overrides=parse_assignments(args.set),
                            from_trial=args.from_trial)
    return start_decide(db, db_path, baseline=args.baseline, candidate=args.candidate, name=args.name,
                        seeds=args.seeds, complexity=args.complexity, concurrency=args.concurrency)


def optional_answers(args) -> dict[str, str]:
    """How the optional stages are answered without asking (warmup's flags)."""
    if args.command_name != "warmup":
        return {}
    return {"early-check": "run" if args.early_check else "skip",
            "warmup-100x": "run" if args.also_100x else "skip"}


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of exiting: the TUI shows the message
        raise _ArgError(f"{self.prog}: {message}")


def parse_wizard_args(kind: str, argv: list[str]):
    """Parse `kind argv...` with the CLI's own options; raises WizardError with argparse's message."""
    parser = _Parser(prog="wizard", add_help=False)
    add_parsers(parser.add_subparsers(dest="wizard", parser_class=_Parser))
    try:
        return parser.parse_args([kind, *argv])
    except _ArgError as exc:
        raise WizardError(str(exc)) from exc


def cmd_start(args, db_path: Path) -> int:
    db = connect(db_path)
    return _drive(start_from_args(db, db_path, args), args, db_path, optional_answers(args))


def cmd_wizards(args, db_path: Path) -> int:
    db = connect(db_path)
    if args.name:
        kind = by_name(db, db_path, args.name)
        status = kind.advance()
        _finish_output(status, args.json)
        return 0
    rows = wizard_store.list_all(db)
    if args.json:
        json.dump([{"name": w.name, "kind": w.kind, "base_study": w.base_study, "stage": w.stage,
                    "verdict": w.verdict} for w in rows], sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print("no wizards yet: playbook-runner probe-batch | warmup | decide ...")
    for w in rows:
        print(printable(f"{w.name:40} {w.kind:12} {w.stage:14} {w.verdict or '-'}"))
    return 0


# -- driving ------------------------------------------------------------------------------


def _drive(kind: Kind, args, db_path: Path, optional: dict[str, str]) -> int:
    say = (lambda *_: None) if args.json else (lambda text: print(printable(text), flush=True))
    say(f"wizard {kind.wizard.name} ({kind.kind}); resume it any time with the same command")

    def answer(q: Question, status: Status) -> str | None:
        stage = q.key.split(":", 1)[1] if q.key.startswith("confirm:") else None
        if stage in optional and (args.yes or "skip" in q.choices and optional[stage] == "skip"):
            return optional[stage]
        if args.yes and q.key.startswith("confirm:"):
            return q.choices[0]
        if not sys.stdin.isatty():
            return None
        return _ask(q)

    status = drive(kind, db_path, answer=answer, say=say, cpu_slots=args.cpu_slots, grace=args.grace)
    if status.done:
        _finish_output(status, args.json)
        return 0
    if status.question is not None:
        print(f"paused: {status.question.text} Run again with {_resume_hint(status.question)}, "
              f"or answer in the TUI.", file=sys.stderr)
        if args.json:
            _finish_output(status, True)
        return 3
    return 1


def _resume_hint(q: Question) -> str:
    """The flag that answers `q` on the next run: --yes confirms a stage, --KEY gives an answer."""
    if q.key.startswith("confirm:"):
        return "--yes"
    return f"--{q.key} " + "|".join(f"'{c}'" if " " in c else c for c in q.choices)


def drive(kind: Kind, db_path: Path, *, answer: Callable[[Question, Status], str | None],
          say: Callable[[str], None], cpu_slots: int | None = None, grace: float = DEFAULT_GRACE_S,
          poll_s: float = 1.0) -> Status:
    """Advance the wizard until it is done or a question goes unanswered; runs a runner when none is alive."""
    runner: Runner | None = None
    shown: dict[str, str] = {}
    try:
        while True:
            status = kind.advance()
            _progress(kind, status, shown, say)
            if status.done:
                return status
            if status.question is not None:
                value = answer(status.question, status)
                if value is None:
                    return status
                kind.answer(status.question.key, value)
                continue
            if runner is None and live_owner(kind.db) is None:
                runner = Runner(db_path, cpu_slots=cpu_slots, grace_s=grace, log=say)
                runner.start()
            if runner is not None:
                deadline = time.monotonic() + poll_s
                runner.serve(until=lambda end=deadline: time.monotonic() >= end)
            else:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        # Stopping the running trials would leave them 'stopped' for good, and the stage would
        # read them as failed sizes or missing seeds; left running, the next runner adopts them.
        left = len(runner.live) if runner is not None else 0
        if left:
            say(f"interrupted: {left} running trial(s) keep running and are adopted when you resume "
                f"(playbook-runner stop STUDY stops them)")
        say("interrupted: the finished trials are kept; run the same command to resume")
        raise SystemExit(130) from None
    finally:
        if runner is not None:
            runner.close()


def _progress(kind: Kind, status: Status, shown: dict[str, str], say) -> None:
    key = f"stage:{status.stage}"
    if shown.get(key) != "shown" and not status.done:
        shown[key] = "shown"
        say(f"stage {status.stage}: {status.stage_title}")
        for line in status.plan_lines:
            say(f"  {line}")
    for name in status.running:
        study = studies.by_name(kind.db, name)
        line = view.progress_line(kind.db, study)
        if shown.get(name) != line:
            shown[name] = line
            say(line)


def _ask(q: Question) -> str | None:
    choices = "/".join(q.choices)
    while True:
        try:
            text = input(f"{q.text} [{choices}] (enter = {q.choices[0]}, q = pause) ").strip().lower()
        except EOFError:
            return None
        if text in ("q", "quit"):
            return None
        if not text:
            return q.choices[0]
        if text in q.choices:
            return text


def _finish_output(status: Status, as_json: bool) -> None:
    w = status.wizard
    if as_json:
        json.dump({"wizard": w.name, "kind": w.kind, "base_study": w.base_study, "stage": w.stage,
                   "verdict": w.verdict, "result": w.result, "stages": status.stage_results},
                  sys.stdout, indent=2, allow_nan=False)
        print()
        return
    for line in view.render(w, status.stage_results):
        print(printable(line))
