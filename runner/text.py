"""Showing text that came from a trial (log lines, metric names, stderr) safely."""

from __future__ import annotations

import re

# C0/C1 control characters (ESC included) except tab; shown as escapes so a
# log line can never move the cursor, set the clipboard or retitle the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters replaced by visible escapes (\\x1b...)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
