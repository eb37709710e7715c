"""From planned values to runnable trials: numbering, trial folders and the argv list."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from runner.search import plan_values
from runner.spec import StudySpec
from store.trials import NewTrial


def trial_dir(run_dir: str | Path, number: int) -> Path:
    return Path(run_dir) / f"trial-{number:04d}"


def _fields(token: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(token) if f is not None]


def _is_flag(token: str) -> bool:
    """A literal option like `--beta2` or `-b`: no placeholder, and not a number such as `-1`."""
    if not token.startswith("-") or len(token) < 2 or _fields(token):
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def build_argv(template: tuple[str, ...] | list[str], values: dict[str, Any]) -> list[str]:
    """Fill the command's placeholders, one argv element per template token (no shell).

    A token naming a conditional parameter that does not apply to this trial is
    dropped. When that token is a value (`--beta2 {beta2}`) rather than an option
    of its own (`--beta2={beta2}`), the template's literal flag just before it goes
    too. The decision reads the template, never the filled values, so a
    neighbour's value that starts with "-" (`--shift -1`) is never taken for a flag.
    """
    argv: list[str] = []
    after_flag = False  # whether argv[-1] came from a literal flag of the template
    for token in template:
        names = _fields(token)
        if any(n not in values for n in names):
            if after_flag and not token.startswith("-"):
                argv.pop()
            after_flag = False
            continue
        after_flag = _is_flag(token)
        argv.append(token.format(**values) if names else token)
    return argv


def new_trials(spec: StudySpec, run_dir: str | Path, first_number: int = 1) -> list[NewTrial]:
    """Every trial the study file asks for, numbered from `first_number`."""
    out = []
    for i, (source, values) in enumerate(plan_values(spec)):
        number = first_number + i
        out.append(make_trial(spec, run_dir, number, source, values))
    return out


def make_trial(spec: StudySpec, run_dir, number: int, source: str, values: dict) -> NewTrial:
    folder = trial_dir(run_dir, number)
    builtins = {
        "max_train_steps": spec.max_train_steps,
        "trial_dir": str(folder),
        "trial_number": number,
        "study_name": spec.name,
    }
    return NewTrial(
        number=number,
        source=source,
        params=values,
        roles=spec.roles,
        argv=build_argv(spec.argv_template, {**builtins, **values}),
        trial_dir=str(folder),
    )
