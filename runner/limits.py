"""Bounds on what a study file may ask for, checked at validation, before anything is planned.

Planning materialises every trial (values, argv, a row each) and formats every
placeholder, so a file asking for a billion trials or a format width of 10^11
characters would exhaust memory or hang long before a trial runs. Each bound
sits far above any real study and is named in the error, so a user who needs
more knows which number to change (add-trials extends a study past them).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.spec import ParamSpec

MAX_FILE_BYTES = 1 << 20  # a study file is hand-written TOML: a few KB
MAX_NAME_CHARS = 100  # the name is a folder (runs/NAME/trial-NNNN) and a column in every table
MAX_TRIALS = 10_000  # study.trials: quasi-random samples per scientific value
MAX_POINTS = 1_000  # params.X.points: grid points of a scientific range
MAX_VALUES = 10_000  # params.X.values: entries of one list
MAX_PLANNED_TRIALS = 10_000  # trials one file plans in all: samples x scientific grid + manual
MAX_TEXT_CHARS = 4_096  # one string value; it becomes one argv element (a path fits)
MAX_FORMAT_NUMBER = 1_000  # a width or precision in a placeholder's format, {lr:.6g}
MAX_INTEGER = 2**63 - 1  # what an SQLite INTEGER column holds

_NUMBER_RE = re.compile(r"\d+")


def name_problem(name: str) -> str | None:
    if len(name) > MAX_NAME_CHARS:
        return (f"study.name: {len(name)} characters; expected at most {MAX_NAME_CHARS} "
                "(MAX_NAME_CHARS: it names the study's folder of trial folders)")
    return None


def planned_trial_count(trials: int, params: list[ParamSpec], manual: int) -> int:
    """How many trials planning would create, computed without planning them (an upper bound:
    an int range gridded finer than its integers gives fewer)."""
    grid = math.prod(len(p.values) if p.kind == "choice" else (p.points or 1)
                     for p in params if p.role == "scientific")
    has_nuisance = any(p.role == "nuisance" for p in params)
    samples = trials if has_nuisance else min(trials, 1)
    return samples * grid + manual


def planned_problem(trials: int, params: list[ParamSpec], manual: int) -> str | None:
    total = planned_trial_count(trials, params, manual)
    if total <= MAX_PLANNED_TRIALS:
        return None
    sci = [p for p in params if p.role == "scientific"]
    grid = " x ".join(f"{len(p.values) if p.kind == 'choice' else p.points} {p.name}" for p in sci)
    return (f"study.trials: the file plans {total:,} trials ({trials} trials"
            f"{' x ' + grid if grid else ''}{f' + {manual} manual' if manual else ''}); "
            f"expected at most {MAX_PLANNED_TRIALS:,} (MAX_PLANNED_TRIALS); "
            "plan fewer, or add more later with `playbook-runner add-trials`")


def too_many(field: str, count: int, bound: int, bound_name: str) -> str | None:
    if count > bound:
        return f"{field}: {count:,} given; expected at most {bound:,} ({bound_name})"
    return None


def oversized_texts(value: Any, field: str) -> Iterator[str]:
    """A problem for each string in `value` (a scalar or a nested list/table) over MAX_TEXT_CHARS."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            yield (f"{field}: a string of {len(value):,} characters; expected at most "
                   f"{MAX_TEXT_CHARS:,} (MAX_TEXT_CHARS)")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from oversized_texts(item, f"{field}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from oversized_texts(item, f"{field}[{i}]")


def format_spec_problems(token: str) -> Iterator[str]:
    """Placeholders whose format asks for a huge width or precision, or holds a placeholder."""
    for _, field_name, spec, _ in string.Formatter().parse(token):
        if field_name is None or not spec:
            continue
        if "{" in spec:
            yield (f"study.command: {{{field_name}:{spec}}} has a placeholder inside its format; "
                   "expected a fixed format such as {lr:.3g}")
            continue
        biggest = max((int(n) for n in _NUMBER_RE.findall(spec)), default=0)
        if biggest > MAX_FORMAT_NUMBER:
            yield (f"study.command: {{{field_name}:{spec}}} asks for a width or precision of {biggest:,}; "
                   f"expected at most {MAX_FORMAT_NUMBER:,} (MAX_FORMAT_NUMBER)")


def sample_values(p: ParamSpec) -> list[Any]:
    """Values standing in for what planning gives `p`, of the same types: each choice, the range's
    ends (ints for an int range), the fixed value."""
    if p.kind == "fixed":
        return [p.value]
    if p.kind == "choice":
        return list(p.values)
    if p.kind == "int":
        return [int(p.low), int(p.high)]
    return [float(p.low), float(p.high)]


def fill_problems(token: str, samples: dict[str, list[Any]]) -> Iterable[str]:
    """Fill `token` with every sample value of each of its placeholders (the others at their first):
    a format that cannot take a value (`{lr:d}` with lr = 0.01) fails here, not while planning."""
    names = [f for _, f, _, _ in string.Formatter().parse(token) if f is not None]
    base = {n: samples[n][0] for n in names if samples.get(n)}
    for name in dict.fromkeys(names):
        for value in samples.get(name, []):
            try:
                token.format(**{**base, name: value})
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                return [f"study.command: {token!r} cannot be filled with {name} = {value!r}: {exc}"]
    return []
