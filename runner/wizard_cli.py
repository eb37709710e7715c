"""The wizards' headless forms: `playbook-runner probe-batch | warmup | decide | length | wizards`.

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
from runner.service import DEFAULT_GRACE_S, Runner
from runner.text import printable
from runner.wizards import options, view
from runner.wizards.engine import Kind, Question, Status
from runner.wizards.start import by_name
from store import connect, studies
from store import wizards as wizard_store


def add_parsers(sub) -> None:
    for kind in options.KINDS:
        p = sub.add_parser(kind, help=options.HELP[kind])
        options.add_options(kind, p)
        _driving(p)
        p.set_defaults(func=cmd_start, command_name=kind)

    ls = sub.add_parser("wizards", help="stored wizards, or one wizard's verdict and evidence")
    ls.add_argument("name", nargs="?")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_wizards)


def _driving(p: argparse.ArgumentParser) -> None:
    """The options of following a wizard in a terminal (the wizard's own are in runner.wizards.options)."""
    p.add_argument("--yes", "-y", action="store_true", help="confirm every stage without asking")
    p.add_argument("--json", action="store_true", help="print the result with every number as JSON")
    p.add_argument("--cpu-slots", type=int, default=None)
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)


def cmd_start(args, db_path: Path) -> int:
    db = connect(db_path)
    return _drive(options.start(db, db_path, args), args, db_path, options.optional_answers(args))


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
        print("no wizards yet: playbook-runner probe-batch | warmup | decide | length ...")
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
            if optional[stage] == "skip":  # its plan was just printed: say that it will not run
                say(f"  skipped, as the command's options say (stage {stage} is optional)")
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
