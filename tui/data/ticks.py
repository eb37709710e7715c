"""Axis ticks a person reads at a glance: round positions and short labels (pure: numbers in, numbers out).

Linear axes step by 1, 2 or 5 times a power of ten; log axes mark powers of ten,
with 1-2-5 between them when the range spans too few decades to show more than
two; batch sizes and other all-powers-of-two parameters mark powers of two; and
integer axes (steps, seeds, layer counts) never get a fractional tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

Kind = Literal["linear", "log", "pow2", "int"]
Ticks = tuple[tuple[float, ...], tuple[str, ...]]

_MANTISSAS = (1, 2, 5)


def nice_ticks(lo: float, hi: float, *, kind: Kind = "linear", count: int = 5) -> Ticks:
    """About `count` round tick positions within [lo, hi], with their labels."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (), ()
    lo, hi = min(lo, hi), max(lo, hi)
    if kind in ("log", "pow2") and lo <= 0:
        kind = "linear"  # no log of zero: the data says this is not a log axis after all
    if kind == "pow2":
        positions = _pow2(lo, hi, count)
    elif kind == "log":
        positions = _log(lo, hi, count)
    else:
        positions = _linear(lo, hi, count, integer=kind == "int")
    if not positions:  # a range narrower than one round step: its own ends are the best labels
        positions = (lo,) if lo == hi else (lo, hi)
    if kind == "pow2":  # 1024 reads as itself, never as a rounded 1.02k
        return positions, tuple(str(int(p)) if p < 1e6 else short(p) for p in positions)
    return positions, labels(positions)


def value_kind(values: Iterable[object], *, log: bool = False) -> Kind:
    """How an axis of these parameter values is best ticked: 'pow2' when all are powers of two
    (batch sizes), else 'log' on a log-scaled parameter, 'int' when all are integers, else 'linear'."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and all(isinstance(v, int) for v in numbers):
        if len(set(numbers)) > 1 and all(v > 0 and v & (v - 1) == 0 for v in numbers):
            return "pow2"
        return "log" if log and min(numbers) > 0 else "int"
    return "log" if log else "linear"


def _linear(lo: float, hi: float, count: int, *, integer: bool) -> tuple[float, ...]:
    if hi == lo:
        return (float(round(lo)),) if integer and lo == round(lo) else ()
    best: tuple[float, ...] = ()
    exponent = math.floor(math.log10((hi - lo) / max(count - 1, 1))) - 1
    for e in range(exponent, exponent + 3):
        for m in _MANTISSAS:
            if integer and m * 10.0 ** e < 1:
                continue
            ticks = _multiples(lo, hi, m, e)
            # The step whose tick count is closest to `count`; on a tie, the sparser one.
            if ticks and (not best or abs(len(ticks) - count) < abs(len(best) - count)):
                best = ticks
    return best


def _multiples(lo: float, hi: float, mantissa: int, exponent: int) -> tuple[float, ...]:
    """Multiples of mantissa * 10**exponent in [lo, hi], computed so 0.1 * 3 reads 0.3."""
    def value(k: int) -> float:
        return k * mantissa * 10.0 ** exponent if exponent >= 0 else k * mantissa / 10.0 ** -exponent

    step = mantissa * 10.0 ** exponent
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    if last - first > 1000:
        return ()
    return tuple(value(k) for k in range(first, last + 1))


def _log(lo: float, hi: float, count: int) -> tuple[float, ...]:
    decades = range(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9) + 1)
    if len(decades) >= 3:
        every = math.ceil(len(decades) / (count + 1))  # a decade in every `every`, when they are many
        return tuple(_power10(d) for d in decades if d % every == 0)
    between = tuple(m * _power10(d) for d in range(decades.start - 1, decades.stop + 1) for m in _MANTISSAS
                    if lo * (1 - 1e-9) <= m * _power10(d) <= hi * (1 + 1e-9))
    return between if len(between) >= 2 else _linear(lo, hi, count, integer=False)


def _power10(exponent: int) -> float:
    return 10.0 ** exponent if exponent >= 0 else 1 / 10.0 ** -exponent


def _pow2(lo: float, hi: float, count: int) -> tuple[float, ...]:
    exponents = range(math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9) + 1)
    every = max(1, math.ceil(len(exponents) / (count + 2)))  # powers of two are dense: allow a few more
    return tuple(float(2 ** e) for e in exponents if (e - exponents.start) % every == 0)


def labels(positions: Iterable[float]) -> tuple[str, ...]:
    """Compact labels, with just enough digits that no two of them read the same."""
    positions = tuple(positions)
    for digits in range(3, 10):
        shown = tuple(short(p, digits) for p in positions)
        if len(set(shown)) == len(set(positions)):
            return shown
    return shown


def short(x: float, digits: int = 3) -> str:
    """1500 -> '1.5k', 2000000 -> '2M', 0.25 -> '0.25', 0.00025 -> '2.5e-4', 128 -> '128'."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    magnitude = abs(x)
    if magnitude >= 1e4 or (magnitude >= 1e3 and _fits(x / 1e3, digits)):
        for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if magnitude >= scale:
                return _plain(x / scale, digits) + suffix
    if magnitude >= 0.01:
        return _plain(x, digits)
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{_strip(mantissa)}e{int(exponent)}"


def _fits(x: float, digits: int) -> bool:
    """x says itself exactly in `digits` significant digits (1.5k yes; 1.024k no: 1024 stays 1024)."""
    return float(f"{x:.{digits}g}") == round(x, 9)


def _plain(x: float, digits: int) -> str:
    text = f"{x:.{digits}g}"
    if "e" in text:  # 1234567 at 3 digits: say it in full rather than as 1.23e+06
        text = f"{x:.{max(digits - 1 - math.floor(math.log10(abs(x))), 0)}f}"
    return _strip(text) if "." in text else text


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text
