"""A plotext plot as a Textual widget: data in a PlotSpec (tui.data.plotspec), drawn at the widget's size.

textual-plotext pins plotext < 6 and uses its internals, so this is our own thin
wrapper over plotext 6. Every build makes a fresh private figure (plotext's
module-level figure is never touched) with the terminal size limit off, so the
real terminal's size cannot clip it. plotext's Python layer costs about 30 us a
point (8 curves of 400 points: ~100 ms), so builds run in one builder thread, one at
a time under a lock (its C kernel does not document thread safety), and
render() only returns the last built Text.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

from rich.style import Style
from rich.text import Span, Text
from textual.app import RenderResult
from textual.geometry import Region
from textual.message import Message
from textual.widget import Widget

from runner.text import printable_line
from tui.data.plotspec import BARS, COLORS, LINE, POINTS, PlotSpec
from tui.data.ticks import nice_ticks

GLYPH = {LINE: "━", POINTS: "•", BARS: "█"}
_BUILD_LOCK = threading.Lock()
_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plot build")


def header(spec: PlotSpec, colors: dict[str, str]) -> Text:
    """The title and a legend in one line (plotext's own legend would cover the data)."""
    # Titles and labels carry metric names a training script chose: escapes made visible.
    text = Text(printable_line(spec.title), style="bold", no_wrap=True, overflow="ellipsis")
    # A one-character marker ("x", "+") is its own legend glyph: two series of points differ by it.
    items = [(s.label, s.color, s.marker if s.kind == POINTS and len(s.marker) == 1 else GLYPH.get(s.kind, "•"))
             for s in spec.series if s.label and s.xs]
    items += [(label, color, "│") for _, label, color in spec.vlines if label]
    for label, color, glyph in items:
        text.append("  ")
        text.append(glyph, style=Style(color=colors.get(color) or None))
        text.append(f" {printable_line(label)}")
    return text


def build_plot(spec: PlotSpec, width: int, height: int, colors: dict[str, str]) -> Text:
    """The plot as rich Text of `width` x `height` cells (header line included).

    Pure apart from plotext; safe from any thread. `colors` maps COLORS names to
    the theme's color strings (read on the UI thread).
    """
    head = header(spec, colors)
    # Cut here: Textual wraps a long line of the rendered Text whatever its no_wrap says,
    # and a wrapped legend would push the plot's last line (the x labels) out of sight.
    head.truncate(width, overflow="ellipsis")
    if not spec.has_data:
        return Text.assemble(head, "\n\n", Text(spec.empty, style="dim"), no_wrap=True)
    if width < 16 or height < 5:
        return Text.assemble(head, "\n", Text("(too small to plot)", style="dim"), no_wrap=True)
    with _BUILD_LOCK:
        ansi = _plotext_string(spec, width, height - 1)
    body = Text.from_ansi(ansi.rstrip("\n"), no_wrap=True, end="")
    body.spans[:] = [Span(s.start, s.end, _theme_style(s.style, colors)) for s in body.spans]
    return Text.assemble(head, "\n", body, no_wrap=True, overflow="crop")


def _theme_style(style: str | Style, colors: dict[str, str]) -> Style | str:
    color = getattr(style, "color", None)
    number = getattr(color, "number", None)
    if number is None or not 1 <= number <= len(COLORS):
        return style
    value = colors.get(COLORS[number - 1])
    return Style(color=value) if value else style


def _plotext_string(spec: PlotSpec, width: int, height: int) -> str:
    import plotext  # ~0.2 s to import: only once something is plotted

    term = type(plotext.terminal)()  # a private terminal and figure: no shared plot state
    term.limit(False, False)
    fig = term._master
    fig.theme("simple")  # no frame colors: the frame takes the widget's own foreground
    fig.plot_size(width, height)
    points = []
    # A log x axis is drawn over log10(x) with the ticks moved there too: plotext 6.1 given both
    # explicit ticks and its own log scale logs the ticks but not the limits, and draws nothing.
    to_x = math.log10 if spec.xlog else float
    for series in spec.series:
        xs, ys = _finite(series.xs, series.ys, spec.xlog)
        if not xs:
            continue
        xs = [to_x(x) for x in xs]
        points += ys
        pixel = plotext.pixel(foreground=_code(series.color))
        if series.kind == BARS:
            fig.draw(fig.bar(list(xs), list(ys), marker=plotext.marker("full", pixel), width=1))
            points.append(0.0)
            continue
        if series.kind == LINE:
            xs, ys = _thin(xs, ys, 2 * width)  # "hd" marks 2 points per cell: more is wasted work
        line = series.kind == LINE and len(xs) > 1  # a lone point in "hd" is a quarter cell: use a dot
        marker = plotext.marker("hd" if line else series.marker or "dot", pixel)
        signal = fig.signal(list(xs), list(ys), marker=marker)
        if line:
            signal.lines()
        fig.draw(signal)
    for x, _, color in spec.vlines:
        if points and (x > 0 or not spec.xlog):
            line = fig.signal([to_x(x)] * 2, [min(points), max(points)],
                              marker=plotext.marker("hd", plotext.pixel(foreground=_code(color))))
            line.lines()
            fig.draw(line)
    ticks = spec.xticks
    if ticks is None and spec.xlog and points:  # a log axis always gets our ticks: plotext's would be log10s
        xs = [x for s in spec.series for x in _finite(s.xs, s.ys, True)[0]]
        ticks = nice_ticks(min(xs), max(xs), kind="log")
    if points:  # round y ticks too (counts as whole numbers), about one every other row
        kind = "int" if all(float(y).is_integer() for y in points) else "linear"
        fig.ruler("y").ticks(*map(list, nice_ticks(min(points), max(points), kind=kind,
                                                   count=max(2, min(5, height // 2)))))
    if ticks is not None:
        kept = [(to_x(p), label) for p, label in zip(*ticks, strict=False) if p > 0 or not spec.xlog]
        fig.ruler("x").ticks([p for p, _ in kept], [label for _, label in kept])
    return fig.build().string()


def _code(color: str) -> int:
    return COLORS.index(color) + 1 if color in COLORS else len(COLORS)


def _finite(xs, ys, xlog: bool) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False)
             if _ok(x) and _ok(y) and (x > 0 or not xlog)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _thin(xs: list[float], ys: list[float], limit: int) -> tuple[list[float], list[float]]:
    """At most `limit` evenly spaced points, the last one kept."""
    n = len(xs)
    if n <= limit:
        return xs, ys
    idx = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
    return [xs[i] for i in idx], [ys[i] for i in idx]


def changed_regions(old: Text, new: Text, gap: int = 6) -> list[Region] | None:
    """The runs of cells where `new` differs from `old` (same size), one Region per run; runs
    closer than `gap` cells are merged (moving the terminal's cursor costs bytes too).
    None when they cannot be compared cell by cell (other line count, wide characters).

    A live curve that grows a few steps changes the cells along the curves, a tenth of the
    plot: repainting only those keeps the bytes sent to the terminal (over SSH) small.
    """
    old_lines, new_lines = old.split("\n", allow_blank=True), new.split("\n", allow_blank=True)
    if len(old_lines) != len(new_lines):
        return None
    regions: list[Region] = []
    for y, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)):
        cells_a, cells_b = _cells(a), _cells(b)
        if cells_a is None or cells_b is None:
            return None
        width = max(len(cells_a), len(cells_b))
        changed = [x for x in range(width)
                   if x >= len(cells_a) or x >= len(cells_b) or cells_a[x] != cells_b[x]]
        start = prev = None
        for x in changed:
            if start is not None and x - prev > gap:
                regions.append(Region(start, y, prev - start + 1, 1))
                start = None
            if start is None:
                start = x
            prev = x
        if start is not None:
            regions.append(Region(start, y, prev - start + 1, 1))
    return regions


def _cells(line: Text) -> list[tuple[str, object]] | None:
    """(character, style) per cell of a one-line Text; None if a character is not one cell wide."""
    plain = line.plain
    if line.cell_len != len(plain):
        return None
    styles: list[list] = [[] for _ in plain]
    for span in line.spans:
        for i in range(span.start, min(span.end, len(plain))):
            styles[i].append(span.style)
    return [(ch, (line.style, *st)) for ch, st in zip(plain, styles, strict=True)]


class PlotWidget(Widget):
    """Shows a PlotSpec; `replot(spec)` when the data changed, nothing happens when it did not."""

    DEFAULT_CSS = """
    PlotWidget {
        height: 1fr;
        min-height: 5;
    }
    """

    class Built(Message, bubble=False):
        """A finished build, from the worker thread."""

        def __init__(self, key: tuple, text: Text):
            super().__init__()
            self.key = key
            self.text = text

    def __init__(self, spec: PlotSpec | None = None, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.spec = spec or PlotSpec()
        self._version = 0  # bumped by replot; part of the build key
        self._text: Text | None = None
        self._built: tuple | None = None  # key of the Text shown
        self._wanted: tuple | None = None  # key of the build under way

    def replot(self, spec: PlotSpec) -> None:
        if spec != self.spec:
            self.spec = spec
            self._version += 1
            if self._text is None:
                self.refresh()  # render() starts the build
            else:
                self._request_build(self._key())  # the old plot stays on screen meanwhile: no repaint

    @property
    def drawn(self) -> bool:
        """The Text on screen is of the current spec, size and theme."""
        return self._built is not None and self._built == self._key()

    def _key(self) -> tuple:
        return (self._version, self.content_size.width, self.content_size.height, self.app.theme)

    def render(self) -> RenderResult:
        self._request_build(self._key())
        return self._text if self._text is not None else Text("plotting…", style="dim")

    def _request_build(self, key: tuple) -> None:
        if key[1] and key[2] and key not in (self._built, self._wanted):
            self._wanted = key
            # Started after this frame is out: a build holds the GIL in long bursts, and the
            # frame (a study's table just filled, say) would otherwise wait for it.
            self.call_after_refresh(self._start_build, key)

    def _start_build(self, key: tuple) -> None:
        if key != self._wanted or not self.is_mounted:
            return  # a newer spec or size came first, or the widget is gone
        colors = {name: self.app.theme_variables.get(name, "") for name in COLORS}
        spec, width, height = self.spec, key[1], key[2]

        def build() -> None:
            try:
                text = build_plot(spec, width, height, colors)
            except Exception as exc:  # a plot that cannot be drawn says so; the app goes on
                text = Text(f"cannot plot: {type(exc).__name__}: {exc}", style="bold red")
            self.post_message(self.Built(key, text))

        # One build at a time; a newer spec or size makes an older result moot (see Built).
        # Not a Textual thread worker: those leave the last worker, and through its task the
        # screen it ran for, in the pool thread's context until that thread's next worker,
        # which kept closed screens alive.
        _BUILDER.submit(build)

    def on_plot_widget_built(self, message: Built) -> None:
        if message.key == self._wanted:
            same_frame = self._built is not None and self._built[1:] == message.key[1:]  # size, theme
            old, self._text, self._built = self._text, message.text, message.key
            regions = changed_regions(old, message.text) if same_frame and old is not None else None
            if regions is None:
                self.refresh()
            elif regions:
                self.refresh(*regions)
