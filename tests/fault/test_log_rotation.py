"""The shim's log rotation and the ingest side that reads across it: every line once, in order."""

from __future__ import annotations

import os
import subprocess
import sys

from runner.ingest import read_log_lines
from runner.shim import RotatingLog

LIMIT = 1000  # bytes per file: many rotations from a few hundred lines


def test_reader_sees_every_line_once_across_rotations(tmp_path):
    path = str(tmp_path / "stdout.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    log = RotatingLog(fd, path, limit=LIMIT)
    offset, seen, sent = 0, [], []
    for i in range(300):
        line = f"step {i} loss={1 / (i + 1):.5f}\n".encode()
        sent.append(line.rstrip(b"\n"))
        if i % 7 == 3:  # a line torn across two writes
            log.write(line[:5])
            log.write(line[5:])
        else:
            log.write(line)
        if i % 5 == 0:  # the reader is behind by less than one file
            lines, offset = read_log_lines(path, offset)
            seen += lines
    while True:
        lines, new = read_log_lines(path, offset)
        seen += lines
        if new == offset:
            break
        offset = new
    os.close(fd)
    assert seen == sent
    longest = max(len(line) + 1 for line in sent)  # a torn line is finished before rotating
    assert os.path.getsize(path) <= LIMIT + longest and os.path.getsize(path + ".1") <= LIMIT + longest


def test_a_reader_far_behind_skips_what_was_rotated_away_and_resumes(tmp_path):
    path = str(tmp_path / "stdout.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    log = RotatingLog(fd, path, limit=LIMIT)
    for i in range(400):  # four files' worth: the reader comes back two rotations late
        log.write(f"line {i:04d}\n".encode())
    lines, offset = read_log_lines(path, 0)
    while True:  # drain: the oldest lines are gone, the ones kept come back in order
        more, new = read_log_lines(path, offset)
        if new == offset:
            break
        lines, offset = lines + more, new
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], 400)) and numbers[0] > 0
    os.close(fd)


def test_shim_output_reaches_the_logs_and_the_exit_file(tmp_path):
    out, err, exit_file = tmp_path / "stdout.log", tmp_path / "stderr.log", tmp_path / "exit.json"
    script = "import sys; print('to out'); print('to err', file=sys.stderr); sys.exit(3)"
    with open(out, "ab") as o, open(err, "ab") as e:
        code = subprocess.run([sys.executable, "-m", "runner.shim", str(exit_file), str(out), str(err),
                               "--", sys.executable, "-c", script], stdout=o, stderr=e, timeout=30).returncode
    assert code == 3 and '"returncode": 3' in exit_file.read_text()
    assert out.read_text() == "to out\n" and err.read_text() == "to err\n"
