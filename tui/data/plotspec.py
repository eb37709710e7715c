"""What a plot shows, as plain data: PlotSpec and its Series, built by pure functions
(tui.data.plots, tui.data.wizard_data) and drawn by tui.widgets.plot.PlotWidget."""

from __future__ import annotations

from dataclasses import dataclass

# Series colors are Textual theme colors: plotext draws color N as ANSI code N+1,
# and the built Text maps those codes back to the theme's value of the name.
COLORS = ("primary", "warning", "success", "accent", "secondary", "error", "foreground")
LINE, POINTS, BARS = "line", "points", "bars"


@dataclass(frozen=True)
class Series:
    """One thing drawn: a curve, scattered points or bars."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    color: str = "primary"  # one of COLORS
    kind: str = LINE  # LINE | POINTS | BARS
    marker: str = ""  # plotext marker for POINTS ("dot", "x", ...); LINE draws in "hd"


@dataclass(frozen=True)
class PlotSpec:
    """Everything a plot shows; built by pure functions (tui.data.plots), compared by value."""

    title: str = ""
    series: tuple[Series, ...] = ()
    xlog: bool = False
    xticks: tuple[tuple[float, ...], tuple[str, ...]] | None = None  # positions, labels
    vlines: tuple[tuple[float, str, str], ...] = ()  # (x, label, color): a marked value, e.g. p90
    empty: str = "no points yet"

    @property
    def has_data(self) -> bool:
        return any(s.xs for s in self.series)
