"""Metric series stored in blocks: consecutive points of one series per row, two kinds.

A row per point made every live ingest pass pay SQLite's per-row cost for every value
reported; a row per block pays it once per block, and the block's summary columns (first
and last step, count, min, max, last value) let a downsampled read skip decoding any block
that falls inside one bucket, so a curve costs about the same whatever the series' length.

Two codecs, so that a live pass never rewrites what an earlier pass stored:

- RAW: one ingest pass's new points of one series, as they came (float64 values and wall
  times, int64 steps unless evenly spaced). These rows are a series' open tail, appended
  pass after pass; each carries `tail`, how many points the open tail holds up to and
  including it, so the writer knows when to seal without reading the tail.
- PACKED: a sealed block of up to SEAL_POINTS points, compressed: steps as their stride
  (nothing stored) or as int64 deltas; values XOR'd or subtracted with the previous one's
  bits (whichever zlib packs smaller; float32 when every value is exactly a float32, as a
  torch loss's .item() is); wall times as deltas of their bits; each column byte-shuffled
  (all first bytes, then all second bytes...) and the whole zlib-compressed. Lossless: every
  value reads back bit for bit (NaN payloads aside, which read as None anyway).

Packing is pure: no SQL here (store.metrics owns the table). Blobs are little-endian, so a
database file moves between machines.
"""

from __future__ import annotations

import sys
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from operator import lt

import numpy as np

# Points in a sealed block. 1,024: the block's fixed cost (its row, key and summary, ~80 bytes)
# is under 0.1 byte a point, zlib finds the repeats in a column (a throughput that cycles
# through a few values packs to ~0.1 byte a point), and a block decodes in ~20 us. Larger
# blocks save <0.3 byte a point more (bench/ingest.py's storage figures) and make a
# downsampled read of a short series decode more points than it draws.
SEAL_POINTS = 1024
RAW, PACKED = 0, 1
NAN = float("nan")
ZLIB_LEVEL = 1  # level 6 packs ~1% smaller and takes twice as long (~0.17 us a point)

_STEPS_EXPLICIT, _VALUES_F32, _VALUES_DELTA = 1, 2, 4
_F8, _I8 = np.dtype("<f8"), np.dtype("<i8")
_SWAP = sys.byteorder == "big"  # blobs are little-endian

# trial_id, name, first_step, last_step, n, lo, hi, last_value, last_wall, codec, tail, data
BlockRow = tuple


def _none_if_nan(x: float) -> float | None:
    return None if x != x else x


def _even_stride(steps: np.ndarray) -> int | None:
    """The fixed stride of strictly increasing steps, None when they are not evenly spaced."""
    n = len(steps)
    if n == 1:
        return 1
    stride = int(steps[1] - steps[0])
    if int(steps[-1] - steps[0]) != stride * (n - 1):
        return None
    return stride if bool(np.all(np.diff(steps) == stride)) else None


def _shuffle(arr: np.ndarray) -> bytes:
    """An array's bytes grouped by position within an item: similar high bytes sit together."""
    return np.ascontiguousarray(arr.view(np.uint8).reshape(-1, arr.itemsize).T).tobytes()


def _unshuffle(buf: bytes, n: int, dtype: str) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    return np.frombuffer(buf, np.uint8).reshape(width, n).T.copy().view(dtype).reshape(n)


def _prev(bits: np.ndarray) -> np.ndarray:
    out = np.empty_like(bits)
    out[0] = 0
    out[1:] = bits[:-1]
    return out


def _pack(steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> bytes:
    flags, parts = 0, []
    if _even_stride(steps) is None:
        flags |= _STEPS_EXPLICIT
        parts.append(_shuffle(np.diff(steps).astype("<i8")))
    with np.errstate(over="ignore"):  # a value beyond float32's range: then it is not one
        as32 = values.astype(np.float32)
    if np.array_equal(as32.astype(np.float64), values, equal_nan=True):
        flags |= _VALUES_F32
        bits = as32.astype("<f4").view("<u4")
    else:
        bits = values.astype(_F8).view("<u8")
    prev = _prev(bits)
    xor, delta = bits ^ prev, bits - prev
    # XOR suits a noisy value (its sign, exponent and top mantissa bits repeat), the difference a
    # smooth one (a learning-rate schedule): keep the one that leaves more zero bytes, which is
    # what zlib then squeezes (compressing both would cost twice the CPU for ~1% less).
    if np.count_nonzero(delta.view(np.uint8)) < np.count_nonzero(xor.view(np.uint8)):
        flags |= _VALUES_DELTA
        parts.append(_shuffle(delta))
    else:
        parts.append(_shuffle(xor))
    wall_bits = walls.astype(_F8).view("<u8")
    parts.append(_shuffle(wall_bits - _prev(wall_bits)))
    return bytes([flags]) + zlib.compress(b"".join(parts), ZLIB_LEVEL)


def _unpack_packed(first: int, last: int, n: int, data: bytes) -> Block:
    flags, body = data[0], zlib.decompress(data[1:])
    at = 0
    if flags & _STEPS_EXPLICIT:
        size = 8 * (n - 1)
        deltas = _unshuffle(body[at:at + size], n - 1, "<i8")
        at += size
        steps = np.empty(n, np.int64)
        steps[0] = first
        np.cumsum(deltas, out=steps[1:])
        steps[1:] += first
    else:
        steps = _range(first, last, n)
    width, kind = (4, "<u4") if flags & _VALUES_F32 else (8, "<u8")
    coded = _unshuffle(body[at:at + width * n], n, kind)
    at += width * n
    if flags & _VALUES_DELTA:
        bits = np.cumsum(coded, dtype=kind)
    else:
        bits = np.bitwise_xor.accumulate(coded)
    values = bits.view("<f4" if width == 4 else "<f8").astype(np.float64)
    walls = np.cumsum(_unshuffle(body[at:at + 8 * n], n, "<u8"), dtype="<u8").view(_F8)
    return Block(steps, values, walls.astype(np.float64))


def _range(first: int, last: int, n: int) -> np.ndarray:
    stride = (last - first) // (n - 1) if n > 1 else 1
    return np.arange(n, dtype=np.int64) * stride + first


def _raw(steps: Sequence[int], values: Sequence[float], walls: Sequence[float]) -> bytes:
    """A live pass's points as they came: no numpy, this runs for every series every pass."""
    data = _le(array("d", values)) + _le(array("d", walls))
    n = len(steps)
    first, last = steps[0], steps[-1]
    stride = (last - first) // (n - 1) if n > 1 else 1
    if n == 1 or (first + stride * (n - 1) == last and list(steps) == list(range(first, last + 1, stride))):
        return data
    return data + _le(array("q", steps))


def _le(arr: array) -> bytes:
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def _unpack_raw(first: int, last: int, n: int, data: bytes) -> Block:
    values = np.frombuffer(data, _F8, n).astype(np.float64)
    walls = np.frombuffer(data, _F8, n, 8 * n).astype(np.float64)
    steps = (np.frombuffer(data, _I8, n, 16 * n).astype(np.int64) if len(data) > 16 * n
             else _range(first, last, n))
    return Block(steps, values, walls)


def finite_range(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(min, max) ignoring NaN; (None, None) if every value is NaN.

    min() skips a NaN anywhere but in first place (every comparison with it is
    false), so only a NaN result needs the slower filtered pass.
    """
    if isinstance(values, np.ndarray):
        if np.isnan(values).all():
            return None, None
        return float(np.nanmin(values)), float(np.nanmax(values))
    lo, hi = min(values), max(values)
    if lo != lo or hi != hi:
        finite = [v for v in values if v == v]
        if not finite:
            return None, None
        lo, hi = min(finite), max(finite)
    return lo, hi


def block_row(trial_id: int, name: str, steps: Sequence[int], values: Sequence[float],
              walls: Sequence[float], codec: int = PACKED, tail: int = 0) -> BlockRow:
    """One block's row; `steps` strictly increasing, the three sequences of equal length.

    A raw row takes lists as they are; a packed one numpy arrays (or anything np.asarray takes).
    """
    if codec == PACKED:
        steps, values, walls = (np.asarray(x, dtype=t) for x, t in ((steps, np.int64), (values, np.float64),
                                                                   (walls, np.float64)))
        data = _pack(steps, values, walls)
        first, last, last_value, last_wall = int(steps[0]), int(steps[-1]), float(values[-1]), float(walls[-1])
    else:
        data = _raw(steps, values, walls)
        first, last, last_value, last_wall = steps[0], steps[-1], values[-1], walls[-1]
    lo, hi = finite_range(values)
    return (trial_id, name, first, last, len(steps), lo, hi, _none_if_nan(last_value), _none_if_nan(last_wall),
            codec, tail, data)


def block_rows(trial_id: int, name: str, steps: Sequence[int], values: Sequence[float],
               walls: Sequence[float], size: int = SEAL_POINTS) -> list[BlockRow]:
    """Sealed rows for a run of points (steps strictly increasing), `size` points a block."""
    steps, values, walls = (np.asarray(x, dtype=t) for x, t in ((steps, np.int64), (values, np.float64),
                                                               (walls, np.float64)))
    return [block_row(trial_id, name, steps[i:i + size], values[i:i + size], walls[i:i + size])
            for i in range(0, len(steps), size)]


@dataclass(frozen=True)
class Block:
    """One stored block, decoded: int64 steps, float64 values and walls (NaN: none)."""

    steps: np.ndarray
    values: np.ndarray
    walls: np.ndarray


def unpack(first: int, last: int, n: int, codec: int, data: bytes) -> Block:
    if codec == RAW:
        return _unpack_raw(first, last, n, data)
    return _unpack_packed(first, last, n, data)


def concat(blocks: Sequence[Block]) -> Block:
    if len(blocks) == 1:
        return blocks[0]
    if not blocks:
        return Block(np.empty(0, np.int64), np.empty(0), np.empty(0))
    return Block(*(np.concatenate(col) for col in zip(*((b.steps, b.values, b.walls) for b in blocks),
                                                      strict=True)))


def is_increasing(steps: Sequence[int]) -> bool:
    return all(map(lt, steps, steps[1:]))


def merge(old: list[Block], steps: Sequence[int], values: Sequence[float],
          walls: Sequence[float]) -> tuple[list[int], list[float], list[float]]:
    """Stored points and new ones as one run in step order; a new point replaces a stored one
    at the same step, and among new points the last reported wins."""
    points: dict[int, tuple[float, float]] = {}
    for block in old:
        points.update(zip(block.steps.tolist(), zip(block.values.tolist(), block.walls.tolist(),
                                                    strict=True), strict=True))
    points.update(zip(steps, zip(values, walls, strict=True), strict=True))
    order = sorted(points)
    return order, [points[s][0] for s in order], [points[s][1] for s in order]


def values_of(arr) -> list[float | None]:
    """Stored floats as the store's readers see them: None where NaN."""
    return [None if v != v else v for v in (arr.tolist() if isinstance(arr, np.ndarray) else arr)]
