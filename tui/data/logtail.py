"""Following a trial's log file from a saved offset, with bounded work per read (no Textual here).

Like toolong, never load a whole file: the first read takes the last
`first_bytes`, later reads take what was appended since, at most `max_bytes`
(past that, the middle is skipped and a line says how much). Lines come back
printable (control characters as visible escapes), never markup.
"""

from __future__ import annotations

import codecs
import os
import threading
from pathlib import Path

from runner.text import printable

FIRST_BYTES = 64 * 1024
MAX_BYTES = 256 * 1024


class LogTail:
    """Complete new lines of one file, each call; safe to call from any one thread at a time."""

    def __init__(self, path: str | Path, first_bytes: int = FIRST_BYTES, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        self.first_bytes = first_bytes
        self.max_bytes = max_bytes
        self.offset: int | None = None  # None until the first read
        self._inode: int | None = None
        self._partial: str | None = ""  # an unfinished last line, kept until its newline arrives
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()  # a superseded worker may still be reading

    def read(self) -> list[str]:
        with self._lock:
            try:
                with open(self.path, "rb") as f:
                    return self._read(f, os.fstat(f.fileno()))
            except FileNotFoundError:
                return []

    def _read(self, f, stat: os.stat_result) -> list[str]:
        notes: list[str] = []
        if self.offset is not None and (stat.st_ino != self._inode or stat.st_size < self.offset):
            # Replaced or truncated (a requeued trial's files move to attempt-N/): start over.
            notes.append("── the file was replaced; reading it from the start ──")
            self._restart(0)
        self._inode = stat.st_ino
        if self.offset is None:
            self._restart(max(0, stat.st_size - self.first_bytes))
            if self.offset:
                notes.append(f"── {_size(self.offset)} earlier not shown ──")
        elif stat.st_size - self.offset > self.max_bytes:
            skipped = stat.st_size - self.first_bytes - self.offset
            notes.append(f"── {_size(skipped)} skipped (written faster than shown) ──")
            self._restart(stat.st_size - self.first_bytes)
        mid_line = self._partial is None  # began inside a line: its first piece is not a whole line
        f.seek(self.offset)
        data = f.read(stat.st_size - self.offset)
        self.offset += len(data)
        lines = ((self._partial or "") + self._decoder.decode(data)).split("\n")
        self._partial = lines.pop()
        if mid_line and lines:
            lines = lines[1:]
        elif mid_line:
            self._partial = None  # still inside that first line
        return notes + [printable(_as_shown(line)) for line in lines]

    def _restart(self, offset: int) -> None:
        self.offset = offset
        self._partial = "" if offset == 0 else None  # None: the bytes before offset are unknown
        self._decoder.reset()


def _as_shown(line: str) -> str:
    """What a terminal would show of a line: progress bars redraw with \\r; keep the last."""
    return line.rstrip("\r").rsplit("\r", 1)[-1]


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KiB" if n < 2**20 else f"{n / 2**20:.1f} MiB"
