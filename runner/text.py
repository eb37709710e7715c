"""Showing text that came from a trial (log lines, metric names, stderr) safely."""

from __future__ import annotations

import re

# C0/C1 control characters (ESC included) except tab and newline, and the invisible
# characters that reorder or break a line (bidi overrides and isolates, LRM/RLM/ALM,
# the Unicode line and paragraph separators): shown as escapes so a log line or a
# name can never move the cursor, set the clipboard, retitle the terminal, or show
# its text in another order than it has.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_UNSAFE}]")
_CONTROL_OR_NEWLINE = re.compile(f"[\n{_UNSAFE}]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with control and bidi characters replaced by visible escapes (\\x1b, \\u202e);
    newlines kept, for text meant to span lines (a log, an error's list of problems)."""
    return _CONTROL.sub(_escape, text)


def printable_line(text: str) -> str:
    """`text` as one line: like printable(), and a newline shown as \\x0a too. For names and
    values that sit inside a line (a metric in a progress line, a legend, a table cell)."""
    return _CONTROL_OR_NEWLINE.sub(_escape, text)


def baseline_line(params: dict, source: str, adopted_at: float, objective_mean: float | None) -> str:
    """The adopted baseline as every view says it (text `status`, the TUI's list and header):
    'baseline: lr=0.01, width=128 (adopted 2026-12-02 from tiny/3, mean 0.091)'."""
    import time

    values = ", ".join(f"{k}={f'{v:.4g}' if isinstance(v, float) else v}" for k, v in sorted(params.items()))
    when = time.strftime("%Y-%m-%d", time.localtime(adopted_at))
    mean = f", mean {objective_mean:.4g}" if objective_mean is not None else ""
    return printable_line(f"baseline: {values or '(defaults)'} (adopted {when} from {source}{mean})")


def out_of_order_note(count: int, sample: str | None) -> str:
    """What status, analyze and the trial screen say about metrics.jsonl points that came at or
    below a step their series already had (store.metrics counts them)."""
    return (f"{count} reported point(s) repeated or went back in step, merged by step with the last value "
            f"kept (a resumed run logging steps again, or a step counter that restarts?): {sample or '?'}")
