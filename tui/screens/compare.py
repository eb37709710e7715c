"""Two studies (or two versions of one) side by side: the best trial per scientific value of each,
and their isolation and axis plots overlaid, a colour and a marker per study (the legend names them).

Read in a worker thread (tui.data.compare_data), again every few seconds while the screen is shown, so
studies still running keep moving; the plots are built off the event loop by PlotWidget.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from runner.text import printable_line
from tui.widgets.footer import KeyFooter
from tui.widgets.plot import PlotWidget
from tui.widgets.tables import cell

REFRESH_S = 3.0
STYLE_NAMES = ("•", "+")  # each study's marker in the plots (tui.data.compare_data.STYLES)
PLOT_HEIGHT = 14


class ComparisonRead(Message):
    def __init__(self, comparison):
        super().__init__()
        self.comparison = comparison  # tui.data.compare_data.Comparison


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "back", "Back")]
    DEFAULT_CSS = f"""
    #compare-title {{ height: auto; padding: 0 1; }}
    #compare-best {{ height: auto; max-height: 12; }}
    #compare-plots PlotWidget {{ height: {PLOT_HEIGHT}; border-top: solid $primary-darken-2; }}
    """

    def __init__(self, db_path: Path, first_id: int, second_id: int):
        super().__init__()
        self.db_path = db_path
        self.ids = (first_id, second_id)
        self.comparison = None  # the last one read

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("reading both studies…", style="dim"), id="compare-title")
        yield DataTable(id="compare-best", cursor_type="row", zebra_stripes=True)
        yield VerticalScroll(id="compare-plots")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._read()
        self.set_interval(REFRESH_S, self._read)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _read(self) -> None:
        from tui.data.compare_data import Comparison, read_comparison

        try:
            comparison = read_comparison(self.db_path, *self.ids)
        except Exception as exc:  # a store or analysis error is shown; the app goes on
            comparison = Comparison(error=f"{type(exc).__name__}: {exc}")
        self.post_message(ComparisonRead(comparison))

    def on_comparison_read(self, message: ComparisonRead) -> None:
        c = message.comparison
        if c == self.comparison:
            return
        self.comparison = c
        title = self.query_one("#compare-title", Static)
        if c.error:
            title.update(Text(f"cannot compare: {printable_line(c.error)}", style="bold red"))
            return
        head = Text(printable_line(f"{c.labels[0]} ({STYLE_NAMES[0]}) vs {c.labels[1]} ({STYLE_NAMES[1]}): "
                                   f"best {c.objective} per scientific value"), style="bold")
        if c.note:
            head.append("\n" + printable_line(c.note), style="yellow")
        title.update(head)
        self._show_table(c)
        self._show_plots(c)

    def _show_table(self, c) -> None:
        table = self.query_one("#compare-best", DataTable)
        table.clear(columns=True)
        for label in ("value", c.labels[0], c.labels[1], "better"):
            table.add_column(cell(label, "bold"))
        for row in c.rows:
            table.add_row(*(cell(v) for v in row))

    def _show_plots(self, c) -> None:
        box = self.query_one("#compare-plots", VerticalScroll)
        widgets = list(box.query(PlotWidget))
        if len(widgets) != len(c.plots):
            box.remove_children()
            box.mount_all(PlotWidget(spec) for spec in c.plots)
            return
        for widget, spec in zip(widgets, c.plots, strict=True):
            widget.replot(spec)

    def action_back(self) -> None:
        self.dismiss()
