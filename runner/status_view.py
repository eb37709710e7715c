"""`playbook-runner status` as plain text, from the same record as `--json`.

Plain string formatting, not rich: a 1,000-trial table renders in milliseconds instead of a
second, and the command stays instant (issue #16). Colour only where stdout is a terminal (and
NO_COLOR is unset). A long table is folded: its first and last trials, every running one and the
best, with a line saying how many are left out and in which states (`status --all` shows all).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from runner.playbook.outcome import FAILED_TO_TRAIN, PARTIAL_MARK, counts_line
from runner.text import baseline_line, out_of_order_note, printable_line

FOLD_OVER = 50  # a table of more trials than this is folded
FOLD_KEEP = 10  # trials kept at each end of a folded table

STATE_COLOR = {"completed": "32", "failed": "31", "running": "36", "starting": "36",
               "queued": "2", "stopped": "33", "lost": "35"}  # ANSI SGR codes
RED, YELLOW, GREEN, BOLD, DIM = "31", "33", "32", "1", "2"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(value) -> str:
    """Trial-supplied strings made literal: no control character reaches the terminal."""
    return printable_line("" if value is None else str(value))


def wants_color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def render_status(report: dict, out: TextIO | None = None, *, show_all: bool = False,
                  color: bool | None = None) -> None:
    out = out or sys.stdout
    paint = _painter(wants_color(out) if color is None else color)
    lines = []
    runner = report["runner"]
    lines.append(f"runner: pid {runner['pid']} on {_cell(runner['host'])}" if runner
                 else "runner: none alive for this database")
    if not report["studies"]:
        lines.append("no studies yet: playbook-runner run sample_studies/digits/study.toml")
    for study in report["studies"]:
        lines.append("")
        lines.extend(study_lines(study, paint, show_all=show_all))
    out.write("\n".join(lines) + "\n")


def _painter(on: bool) -> Callable[[str, str], str]:
    if not on:
        return lambda text, code: text
    return lambda text, code: f"\x1b[{code}m{text}\x1b[0m" if code and text else text


def study_lines(study: dict, paint: Callable[[str, str], str], *, show_all: bool = False) -> list[str]:
    """One study: its header, the trial table (folded unless show_all), the notes."""
    c = study["counts"]
    objective = study["objective"]
    best = (f"best {objective['metric']} = {_fmt(study['best_value'])} (trial {study['best_trial']})"
            if study["best_value"] is not None else "no objective reported yet")
    name = study.get("label") or study["name"]
    links = "".join(f" ({word} {study[key]})" for word, key in (("after", "previous"), ("refines", "refines"))
                    if study.get(key))
    lines = [paint(_cell(name), BOLD) + paint(_cell(links), DIM)
             + f"  [{'active' if study['active'] else 'idle'}]  "
             + counts_line(c, study.get("infeasible_by") or {}) + f"  |  {_cell(best)}"]
    if study["goal"]:
        lines.append(_cell("goal: " + study["goal"]))
    lines.append(_cell(f"config: {study['config_path']}   reproduce: {study['reproduce_command']}"))
    if study.get("baseline"):
        b = study["baseline"]
        lines.append(paint(baseline_line(b["params"], b["source"], b["adopted_at"], b["objective_mean"]), GREEN))
    trials = study["trials"]
    shown = trials if show_all else fold(trials, study.get("best_trial"))
    lines.extend(_table(trials, shown, objective["metric"], paint))
    lines.append(paint(f"* scientific parameter   {PARTIAL_MARK} partial: ended before max_train_steps "
                       "(never the best)", DIM))
    lines.extend(_waiting_lines(trials, paint))
    visible = {t["number"] for t in shown if isinstance(t, dict)}
    notes = [(t["number"], n) for t in trials for n in _notes(t, paint)]
    lines.extend(n for number, n in notes if number in visible)
    if hidden := sum(1 for number, _ in notes if number not in visible):
        lines.append(paint(f"{hidden} more note(s) on trials not shown (status --all)", DIM))
    return lines


def fold(trials: list[dict], best_trial: int | None) -> list[dict | str]:
    """The rows of a long table: the first and last FOLD_KEEP trials, every running one and the
    best, in order, and in each gap a line that counts what it leaves out, by state."""
    if len(trials) <= FOLD_OVER:
        return list(trials)
    last = len(trials) - FOLD_KEEP
    keep = [i < FOLD_KEEP or i >= last or t["state"] in ("running", "starting") or t["number"] == best_trial
            for i, t in enumerate(trials)]
    rows: list[dict | str] = []
    gap: list[dict] = []
    for t, kept in zip(trials, keep, strict=True):
        if not kept:
            gap.append(t)
            continue
        if gap:
            rows.append(_gap_line(gap))
            gap = []
        rows.append(t)
    return rows


def _gap_line(gap: list[dict]) -> str:
    states = Counter(t["state"] for t in gap)
    by_state = ", ".join(f"{s} {n}" for s, n in states.most_common())
    return f"… {len(gap)} trial(s) not shown ({by_state}; status --all shows every trial)"


def _state_text(t: dict) -> str:
    return t.get("outcome") or t["state"] + (f" ({t['reason']})" if t["reason"] else "")


def _table(trials: list[dict], shown: list[dict | str], metric: str,
           paint: Callable[[str, str], str]) -> list[str]:
    """The trial table: one column per parameter that varies, then the objective and progress."""
    param_names = sorted({k for t in trials for k in t["params"]})
    varied = [n for n in param_names if len({repr(t["params"].get(n)) for t in trials}) > 1]
    roles = {n: next((t["roles"].get(n) for t in trials if n in t["roles"]), "") for n in varied}
    header = ["#", "state", *[("*" if roles[n] == "scientific" else "") + n for n in varied],
              f"best {metric}", "@step", "progress"]
    left = {1}  # the state column; every other one is a number, right-aligned
    rows = []
    for t in shown:
        if isinstance(t, str):
            rows.append(t)
            continue
        progress = (f"{t['last_step'] if t['last_step'] is not None else '-'}/"
                    f"{t.get('progress_total') or t['max_train_steps']}")
        rows.append([str(t["number"]), _state_text(t), *[_fmt(t["params"].get(n, "-")) for n in varied],
                     _fmt(t["best_value"]) if t["best_value"] is not None else "-",
                     str(t["best_step"]) if t["best_step"] is not None else "-", progress])
    cells = [[_cell(v) for v in header]] + [[_cell(v) for v in r] if isinstance(r, list) else r for r in rows]
    widths = [max(len(r[i]) for r in cells if isinstance(r, list)) for i in range(len(header))]

    def line(values: list[str], state_style: str = "") -> str:
        out = []
        for i, (v, w) in enumerate(zip(values, widths, strict=True)):
            text = v.ljust(w) if i in left else v.rjust(w)
            out.append(paint(text, state_style) if i == 1 else text)
        return "  ".join(out).rstrip()

    lines = [paint(line(cells[0]), BOLD), "  ".join("─" * w for w in widths)]
    data = [t for t in shown if isinstance(t, dict)]
    styles = iter(_state_color(t) for t in data)
    lines += [paint(r, DIM) if isinstance(r, str) else line(r, next(styles)) for r in cells[1:]]
    return lines


def _state_color(t: dict) -> str:
    if t.get("feasible") is False:
        return STATE_COLOR["failed"]
    if t.get("partial"):
        return STATE_COLOR["stopped"]
    return STATE_COLOR.get(t["state"], "")


def _waiting_lines(trials: list[dict], paint: Callable[[str, str], str]) -> list[str]:
    """Why the queued trials wait (the runner's words, stored on them), one line per reason, and
    started ones a cluster has not placed yet."""
    reasons = Counter((t["detail"], t["state"]) for t in trials
                      if t["state"] in ("queued", "starting") and t.get("detail"))
    return [paint(_cell(f"{why} ({n} {state} trial(s))"), YELLOW) for (why, state), n in reasons.most_common()]


def _notes(t: dict, paint: Callable[[str, str], str]) -> list[str]:
    n = t["number"]
    notes = []
    if t.get("outcome") == FAILED_TO_TRAIN:
        notes.append(paint(_cell(f"trial {n} {FAILED_TO_TRAIN} ({t['outcome_why']})"), RED))
    if t.get("bad_lines"):
        notes.append(paint(_cell(f"trial {n}: {t['bad_lines']} metric line(s) dropped; "
                                 f"the first: {t.get('bad_line_sample') or '?'}"), YELLOW))
    if t.get("out_of_order"):
        notes.append(paint(_cell(f"trial {n}: {out_of_order_note(t['out_of_order'], t.get('out_of_order_sample'))}"),
                           YELLOW))
    for note in (t.get("capture") or {}).get("notes", []):
        notes.append(paint(_cell(f"trial {n}: {note}"), YELLOW))
    return notes
