"""Shipping an attempt's files from where it runs into the runner's trial folder, for any back end
whose trials run where the runner's folder cannot be written (runner.executors.ray today).

Two halves of one protocol, by stream (metrics.jsonl, stdout.log, stderr.log) and byte position
in the whole stream (the shim rotates stdout/stderr: LOG.1 and LOG, with LOG.start saying where
LOG begins, see runner.shim):

- where the trial runs, `read_streams` answers "the bytes past these positions" a bounded chunk
  at a time, and says whether more is left, so the exit record is handed out only after the last
  byte before it (exit after drain);
- on the runner, a `Shipment` keeps the positions its copies reach (resumed from the files after a
  runner restart), appends each reply's bytes (rotating as the shim does, noting bytes rotated away
  before they were asked for), and writes the launch, placement and exit records.

A back end supplies one callable, `read(positions) -> reply | None` (None: no answer yet), whose
reply is {"chunks": {stream: (begin, bytes)}, "launch": ..., "placement": ..., "exit": ...}
(`Shipment.pump`). Standard library, runner.process and runner.shim only: imported on the nodes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner.process import TrialPaths
from runner.shim import RotatingLog

STREAMS = ("metrics", "stdout", "stderr")
CHUNK_BYTES = 1 << 20  # per stream and read: bounds one reply, the next read asks for the rest
ROTATED = ("stdout", "stderr")  # metrics.jsonl is never rotated


# -- where the trial runs ----------------------------------------------------


def stream_start(path: Path) -> int:
    """Where the current file begins in the whole stream (the shim's rotation, see runner.shim)."""
    try:
        return int(Path(f"{path}.start").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_stream(path: Path, position: int, limit: int = CHUNK_BYTES) -> tuple[int, bytes, bool]:
    """Bytes of a (possibly rotated) stream from `position`: (where they begin, the bytes, more left).

    The beginning is later than `position` only when the bytes there were rotated away before
    they were asked for (more than a whole log file behind).
    """
    start = stream_start(path)
    if position >= start:
        source, at = path, position - start
    else:
        previous = Path(f"{path}.1")
        previous_start = start - file_size(previous)
        position = max(position, previous_start)
        source, at = previous, position - previous_start
    try:
        with open(source, "rb") as f:
            f.seek(at)
            data = f.read(limit)
    except OSError:
        data = b""
    if stream_start(path) != start:  # rotated while we read: ask again next time
        return position, b"", True
    end = start + file_size(path)
    return position, data, position + len(data) < end


def read_streams(paths: TrialPaths, positions: dict[str, int]) -> tuple[dict[str, tuple[int, bytes]], bool]:
    """Every stream's next chunk past `positions`: ({stream: (begin, bytes)}, whether more is left)."""
    chunks, more = {}, False
    for stream in STREAMS:
        begin, data, left = read_stream(getattr(paths, stream), positions.get(stream, 0))
        chunks[stream] = (begin, data)
        more = more or left
    return chunks, more


def has_news(paths: TrialPaths, positions: dict[str, int]) -> bool:
    """Whether anything was written past `positions`, or the attempt ended."""
    if paths.exit.exists():
        return True
    return any(stream_start(p) + file_size(p) > positions.get(stream, 0)
               for stream in STREAMS if (p := getattr(paths, stream)))


# -- on the runner -------------------------------------------------------------


def stream_position(path: Path) -> int:
    """How much of a stream the runner's copy holds: its current file's start plus its size."""
    return stream_start(path) + file_size(path)


def append(path: Path, data: bytes, rotate: bool) -> None:
    """Append to the runner's copy; stdout and stderr rotate as the shim rotates them locally."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        if not rotate:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            return
        log = RotatingLog(fd, str(path))
        log.start = stream_start(path)
        log.write(data)
    finally:
        os.close(fd)


def write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, path)


@dataclass
class Shipment:
    """What the runner's trial folder holds of one attempt's files, and what came with them."""

    paths: TrialPaths
    attempt: int
    positions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))
    launch: dict | None = None  # the attempt's launch record, once it came (written to launch.json)
    placed: bool = False  # placement.json holds where it runs
    exit: dict | None = None  # its exit record, once everything before it came (written to exit.json)

    @classmethod
    def resume(cls, paths: TrialPaths, attempt: int, *, launch: dict | None, placed: bool,
               exit: dict | None) -> Shipment:
        """Go on from what a previous runner's copies hold: nothing is shipped twice."""
        positions = {s: stream_position(getattr(paths, s)) if s in ROTATED else file_size(getattr(paths, s))
                     for s in STREAMS}
        return cls(paths, attempt, positions, launch=launch, placed=placed, exit=exit)

    def pump(self, read: Callable[[dict[str, int]], dict | None]) -> bool:
        """Ask `read` for what lies past the positions and take it; True once the attempt's exit came."""
        reply = read(dict(self.positions))
        if reply is not None:
            self.take(reply)
        return self.exit is not None

    def take(self, reply: dict) -> None:
        """Append a reply's bytes to the runner's copies; note who runs it and where; its end."""
        for stream, (begin, data) in reply["chunks"].items():
            path = getattr(self.paths, stream)
            if begin > self.positions[stream]:  # rotated away where it runs before it was shipped
                lost = begin - self.positions[stream]
                append(path, f"[playbook: {lost} bytes of {stream} were rotated away on the node]\n".encode(),
                       rotate=True)
            if data:
                append(path, data, rotate=stream in ROTATED)
            self.positions[stream] = begin + len(data)
        placement = reply.get("placement") or {}
        launched = reply.get("launch")
        if self.launch is None and launched and launched.get("attempt") == self.attempt:
            self.launch = {**launched, "node_id": placement.get("node_id")}
            write_json(self.paths.launch, self.launch)
        if not self.placed and placement:
            write_json(self.paths.placement, placement)
            self.placed = True
        if reply.get("exit") is not None:
            self.end(reply["exit"])

    def end(self, record: dict) -> None:
        """The attempt's exit record, written last: ingest takes the files as complete from here."""
        self.exit = record
        write_json(self.paths.exit, record)
