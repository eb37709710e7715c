"""The study screen's trial table: its rows filtered and sorted, kept in step with each snapshot.

It owns what makes a live table cheap and steady:
- cells are rendered once per change of their row (a cache keyed by the row and its marks),
  and only the cells whose text changed are repainted (TextTable);
- a big study's rows are fed in batches, a few screens before the first paint, the rest a
  batch a frame, each batch re-synced with the current order;
- the cursor stays on the same trial (not the same row index) and the scroll offsets stay
  where they were when rows come, go or move (a filter, a sort, a trial changing state);
- at a narrow width (an 80-column terminal) the parameters fold into one column at the end,
  `@step` and `detail` are dropped and the sparklines are half as wide, so the state, the
  steps, the objective and the sparklines fit without scrolling.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import events
from textual.timer import Timer
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from tui.data.snapshot import StudyDetail, StudyRow, TrialRow
from tui.widgets import tables
from tui.widgets.table import TextTable

# The state filter `f` cycles through; "running" includes starting, "failed" includes lost.
FILTERS = {
    "all": None,
    "running": {"starting", "running"},
    "completed": {"completed"},
    "failed": {"failed", "lost"},
    "queued": {"queued"},
}
NUMBER = tables.Column("number", "#", lambda r: r.number)
# Rows are added to the table a bounded batch at a time, so that opening (or re-sorting) a
# study of 1,000 trials paints its first screen without building every row's cells first.
FIRST_SCREENS = 3  # before the first paint: the screen in view and two more to page into
CHUNK_ROWS = 500  # then per frame: ~60-80 ms of the event loop; smaller batches delayed the
# rest (and the curves plot, which waits on the same thread) by a frame each: 200 rows a batch
# put the 1,000th row at 660 ms and the plot at 718 ms, 500 a batch at 524 and 583 ms
LIVE_SPARK_S = 3.0  # a running trial's sparklines are redrawn at most this often


class TrialTable(TextTable):
    """The trials of one study; `show` it each snapshot, then `resync` after a sort or filter change."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.sort_column = "number"
        self.sort_reverse = False
        self.state_filter = "all"
        self.trial_columns: tuple[tables.Column, ...] = ()
        self.rows_pending = 0  # rows of the current order not in the table yet (added frame by frame)
        self._study: StudyRow | None = None
        self._detail: StudyDetail | None = None
        self._marked: frozenset[int] = frozenset()
        self._cells: dict[str, tuple[Any, list[Text]]] = {}  # row key -> (signature, rendered cells)
        self._feeding = False  # a _feed is scheduled after the next refresh
        self._compact: bool | None = None  # the layout the columns were made for
        self._sparks: dict[str, tuple[float, tuple]] = {}  # row key -> (when, sparklines shown)
        self._spark_timer: Timer | None = None

    # -- what the screen asks -----------------------------------------------------------

    @property
    def trials(self) -> tuple[TrialRow, ...]:
        return self._detail.trials if self._detail else ()

    def shown_trials(self) -> list[TrialRow]:
        """The trials the filter lets through, in the sort's order."""
        states = FILTERS[self.state_filter]
        rows = [r for r in self.trials if states is None or r.state in states]
        return tables.sorted_rows(rows, self.column(self.sort_column), self.sort_reverse)

    def highlighted_trial(self) -> TrialRow | None:
        key = tables.current_key(self)
        return next((r for r in self.trials if str(r.id) == key), None)

    def column(self, key: str) -> tables.Column:
        """The column of that key; the first (#) when it is gone, or before any snapshot."""
        return next((c for c in self.trial_columns if c.key == key),
                    self.trial_columns[0] if self.trial_columns else NUMBER)

    def show(self, study: StudyRow | None, detail: StudyDetail, marked: frozenset[int]) -> None:
        self._study, self._detail, self._marked = study, detail, marked
        self.resync()

    def cycle_filter(self) -> None:
        names = list(FILTERS)
        self.state_filter = names[(names.index(self.state_filter) + 1) % len(names)]
        self.resync()

    def cycle_sort(self) -> None:
        keys = [c.key for c in self.trial_columns] or ["number"]
        index = keys.index(self.sort_column) if self.sort_column in keys else -1
        self.sort_column = keys[(index + 1) % len(keys)]
        self.sort_reverse = False
        self.resync()

    def sort_by(self, key: str) -> None:
        """Sort by that column; by it again reverses the order (a click on its header)."""
        self.sort_reverse = (not self.sort_reverse) if key == self.sort_column else False
        self.sort_column = key
        self.resync()

    def reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.resync()

    # -- keeping the rows in step ---------------------------------------------------------

    def compact(self) -> bool:
        """Whether the full columns would not fit: then the narrow layout (see the module doc)."""
        width = self.size.width or self.screen.size.width
        params = [n + ("*" if role == "scientific" else "")
                  for n, role in (self._detail.roles if self._detail else {}).items() if role != "fixed"]
        return tables.full_trial_width(self._study, params) > width

    def resync(self, feeding: bool = False) -> None:
        """Show the current rows: the first few screens now, the rest (a batch a frame)
        from _feed; `feeding` is that call."""
        detail = self._detail
        if detail is None:
            return
        best, marked = detail.best, self._marked
        compact = self.compact()
        self.trial_columns = tables.trial_columns(self._study, detail.roles, best, marked, compact=compact)
        cursor_key = tables.current_key(self)
        cleared = tables.set_columns(self, self.trial_columns)  # other columns: the rows were cleared
        if cleared or compact != self._compact:
            self._cells.clear()
        self._compact = compact
        limit = CHUNK_ROWS if feeding else FIRST_SCREENS * max(self.size.height, self.screen.size.height)
        rows = self.shown_trials()
        self.rows_pending = self._sync(rows, best, limit)
        if cleared and cursor_key is not None:
            self._follow(cursor_key, [row.key.value for row in self.ordered_rows])
        if self.rows_pending and not self._feeding:
            self._feeding = True
            self.call_after_refresh(self._feed)

    def _feed(self) -> None:
        """The next rows after a frame is painted; a later sort, filter or snapshot is
        already in the rows (each batch re-syncs the table with the current order)."""
        self._feeding = False
        if self.is_mounted and self.rows_pending:
            self.resync(feeding=True)

    def on_resize(self, event: events.Resize) -> None:
        if self._detail is not None and self.compact() != self._compact:
            self.resync()

    def _sync(self, rows: Sequence[TrialRow], best: frozenset[int], limit: int) -> int:
        """Make the table show `rows` (the first `limit` past those shown, more when the cursor's
        trial is further down); returns how many are not in the table yet.

        Cells are edited in place; rows that left are dropped, new ones added, and the rows
        reordered, all without clear(): the scroll offsets and the cursor's trial stay.
        """
        keys = [str(r.id) for r in rows]
        shown = [row.key.value for row in self.ordered_rows]
        cursor_key = tables.current_key(self)
        if shown == keys[: len(shown)]:
            end = min(len(keys), len(shown) + limit)
        else:
            at = keys.index(cursor_key) if cursor_key in keys else 0
            end = min(len(keys), max(len(shown), limit, at + 1 + limit))
        wanted = keys[:end]
        wanted_set = set(wanted)
        self.keep_rows([k for k in shown if k in wanted_set])
        by_key = {str(r.id): r for r in rows[:end]}
        kept = {row.key.value for row in self.ordered_rows}
        for key in wanted:
            row_cells, changed = self._cells_of(by_key[key], best)
            if key not in kept:
                self.add_row(*row_cells, key=key)
            elif changed:
                self._update_row(key, row_cells)
        if shown != wanted[: len(shown)]:  # rows left or moved: back to the cursor's trial
            self.reorder(wanted)
            self._follow(cursor_key, wanted)
        return len(keys) - end

    def _follow(self, cursor_key: str | None, keys: list[str]) -> None:
        """Put the cursor back on its trial after the rows moved (or on the row now at its
        place, if its trial left), and say which trial is highlighted when that changed."""
        if cursor_key in keys:
            self.move_cursor(row=keys.index(cursor_key))
        now = tables.current_key(self)
        if now is not None and now != cursor_key:
            self.post_message(DataTable.RowHighlighted(self, self.cursor_row, RowKey(now)))

    def _cells_of(self, row: TrialRow, best: frozenset[int]) -> tuple[list[Text], bool]:
        """The row's cells, and whether they may differ from what the table shows.

        A running study changes a few rows a poll; re-rendering and comparing all of a
        1,000-trial table's cells every poll would cost ~100 ms of the event loop.
        """
        key = str(row.id)
        row = self._throttled(key, row)
        signature = (row, row.id in best, row.id in self._marked)
        hit = self._cells.get(key)
        if hit is not None and hit[0] == signature:
            return hit[1], False
        style = "bold" if row.id in best else ""
        cells = [_styled(c.render(row), style) for c in self.trial_columns]
        self._cells[key] = (signature, cells)
        return cells, True

    def _throttled(self, key: str, row: TrialRow) -> TrialRow:
        """The row with the sparklines it showed last, while those are younger than LIVE_SPARK_S
        and the trial runs: each poll moves every running trial's sparklines, and over SSH
        redrawing them at the poll's pace was a third of the bytes. The newest are shown
        at the latest LIVE_SPARK_S later (a timer), and at once when the trial ends."""
        now = time.monotonic()
        sparks = (row.loss_spark, row.grad_spark)
        shown = self._sparks.get(key)
        if shown is not None and shown[1] != sparks and row.state == "running" and now - shown[0] < LIVE_SPARK_S:
            if self._spark_timer is None:
                self._spark_timer = self.set_timer(LIVE_SPARK_S - (now - shown[0]) + 0.01, self._spark_due)
            return dataclasses.replace(row, loss_spark=shown[1][0], grad_spark=shown[1][1])
        if shown is None or shown[1] != sparks:
            self._sparks[key] = (now, sparks)
        return row

    def _spark_due(self) -> None:
        self._spark_timer = None
        if self.is_mounted:
            self.resync()

    def _update_row(self, key: str, row_cells: list[Text]) -> None:
        """Repaint only the cells whose text or style changed."""
        for column, new in zip(self.trial_columns, row_cells, strict=True):
            if not _same(self.get_cell(key, column.key), new):
                # Re-measuring widths re-renders the whole table: only when the cell grew.
                grew = new.cell_len > self.columns[ColumnKey(column.key)].content_width
                self.update_cell(key, column.key, new, update_width=grew)


def _styled(text: Text, style: str) -> Text:
    if not style:
        return text
    text = text.copy()
    text.stylize(style)
    return text


def _same(old: Any, new: Text) -> bool:
    # Text equality ignores the base style; a state's colour is in its style.
    return isinstance(old, Text) and old == new and old.style == new.style
