"""Metric series stored in blocks: up to BLOCK_POINTS consecutive points of one series per row.

A row per point made every live ingest pass pay SQLite's per-row cost (B-tree insert,
key comparison, page splits) for every value reported; a row per block pays it once
per BLOCK_POINTS points, and the block's summary columns (first and last step, count,
min, max, last value) let a downsampled read skip unpacking any block that falls
inside one bucket, so a curve costs about the same whatever the series' length.

Packing is pure: no SQL here (store.metrics owns the table). Values and wall times are
float64 arrays with NaN for "none" (a NaN value, an unknown wall time); steps are an
int64 array, or nothing when they are evenly spaced (first..last by a fixed stride),
which they nearly always are.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from operator import lt

BLOCK_POINTS = 128
NAN = float("nan")
_SWAP = sys.byteorder == "big"  # blobs are little-endian, so a database file moves between machines

# trial_id, name, first_step, last_step, n, lo, hi, last_value, last_wall, steps, vals, walls
BlockRow = tuple


def _pack(typecode: str, items: Sequence) -> bytes:
    arr = array(typecode, items)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def _unpack(typecode: str, blob: bytes) -> array:
    arr = array(typecode)
    arr.frombytes(blob)
    if _SWAP:
        arr.byteswap()
    return arr


def finite_range(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(min, max) ignoring NaN; (None, None) if every value is NaN.

    min() skips a NaN anywhere but in first place (every comparison with it is
    false), so only a NaN result needs the slower filtered pass.
    """
    lo, hi = min(values), max(values)
    if lo != lo or hi != hi:
        finite = [v for v in values if v == v]
        if not finite:
            return None, None
        lo, hi = min(finite), max(finite)
    return lo, hi


def _none_if_nan(x: float) -> float | None:
    return None if x != x else x


def block_row(trial_id: int, name: str, steps: Sequence[int], values: Sequence[float],
              walls: Sequence[float]) -> BlockRow:
    """One block's row; `steps` strictly increasing, the three sequences of equal length."""
    n = len(steps)
    first, last = steps[0], steps[-1]
    stride = (last - first) // (n - 1) if n > 1 else 1
    even = n == 1 or (first + stride * (n - 1) == last and list(steps) == list(range(first, last + 1, stride)))
    lo, hi = finite_range(values)
    return (trial_id, name, first, last, n, lo, hi, _none_if_nan(values[-1]), _none_if_nan(walls[-1]),
            None if even else _pack("q", steps), _pack("d", values), _pack("d", walls))


def block_rows(trial_id: int, name: str, steps: Sequence[int], values: Sequence[float],
               walls: Sequence[float], size: int = BLOCK_POINTS) -> list[BlockRow]:
    """Rows for a run of points (steps strictly increasing), `size` points a block."""
    return [block_row(trial_id, name, steps[i:i + size], values[i:i + size], walls[i:i + size])
            for i in range(0, len(steps), size)]


@dataclass(frozen=True)
class Block:
    """One stored block, unpacked: steps is a range when they are evenly spaced."""

    steps: Sequence[int]
    values: array
    walls: array


def unpack(first: int, last: int, n: int, steps_blob: bytes | None, vals_blob: bytes,
           walls_blob: bytes) -> Block:
    if steps_blob is None:
        stride = (last - first) // (n - 1) if n > 1 else 1
        steps: Sequence[int] = range(first, last + 1, stride)
    else:
        steps = _unpack("q", steps_blob)
    return Block(steps, _unpack("d", vals_blob), _unpack("d", walls_blob))


def is_increasing(steps: Sequence[int]) -> bool:
    return all(map(lt, steps, steps[1:]))


def merge(old: list[Block], steps: Sequence[int], values: Sequence[float],
          walls: Sequence[float]) -> tuple[list[int], list[float], list[float]]:
    """Stored points and new ones as one run in step order; a new point replaces a stored one
    at the same step, and among new points the last reported wins."""
    points: dict[int, tuple[float, float]] = {}
    for block in old:
        points.update(zip(block.steps, zip(block.values, block.walls, strict=True), strict=True))
    points.update(zip(steps, zip(values, walls, strict=True), strict=True))
    order = sorted(points)
    return order, [points[s][0] for s in order], [points[s][1] for s in order]


def values_of(arr: Sequence[float]) -> list[float | None]:
    """Stored floats as the store's readers see them: None where NaN."""
    return [None if v != v else v for v in arr]
