"""A DataTable of one-line Text cells, measured cheaply, re-rendered only where they changed.

DataTable already draws only the rows in view, but when rows are added it
measures every cell through Rich's general `measure` (a console query per
cell): for a 1,000-trial x 9-column study that was ~100 ms of the event loop,
the largest share of opening the study. Our cells are always single-line
`rich.text.Text` (tui.widgets.tables.cell), whose width is just `cell_len`.

And DataTable.update_cell invalidates every cached render of the table (its
caches are keyed by one update counter), so each poll of a live study, which
changes a few running rows, re-rendered every cell in view: most of the TUI's
CPU while 32 trials report. Here an update forgets only its row's renders, and
repaints only its cell (over SSH, a repainted table is bytes on the wire).

Rows can be dropped and reordered in place (keep_rows, reorder): clear() and
re-adding would reset the scroll offsets and the column widths.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, RowKey


def cell_width(value: object) -> int | None:
    """Terminal cells a one-line Text takes; None for anything else (measure it the slow way)."""
    if isinstance(value, Text) and "\n" not in value.plain:
        return value.cell_len
    return None


class TextTable(DataTable):
    """DataTable with a fast path for measuring rows of plain one-line Text cells, and
    cell updates that re-render only the rows they touch."""

    # DataTable internals the row-level invalidation relies on; without them (another
    # Textual), update_cell is DataTable's own.
    _ROW_CACHES = ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache", "_line_cache")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stale_rows: set[RowKey] = set()  # rows updated since the last render

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: object, *,
                    update_width: bool = False) -> None:
        if not all(hasattr(self, name) for name in self._ROW_CACHES):
            super().update_cell(row_key, column_key, value, update_width=update_width)
            return
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        self._stale_rows.add(row_key)
        if update_width:
            self._updated_cells.add(CellKey(row_key, column_key))
            self._require_update_dimensions = True
            self.refresh()
        else:
            # Only this cell is repainted: over SSH a whole table per poll was most of the bytes.
            self.refresh_coordinate(Coordinate(self._row_locations.get(row_key),
                                               self._column_locations.get(column_key)))

    def keep_rows(self, keys: list[str]) -> None:
        """Drop every row not in `keys` at once (remove_row is linear per row), keeping the
        scroll offsets and column widths, which clear() resets."""
        wanted = {RowKey(k) for k in keys}
        if len(wanted) == len(self.rows):
            return
        order = [k for k in (row.key for row in self.ordered_rows) if k in wanted]
        for key in [k for k in self.rows if k not in wanted]:
            del self.rows[key]
            del self._data[key]
            self._new_rows.discard(key)
        self._updated_cells = {c for c in self._updated_cells if c.row_key in wanted}
        self._row_locations = TwoWayDict({key: i for i, key in enumerate(order)})
        self._changed_rows()

    def reorder(self, keys: list[str]) -> None:
        """Show the rows in the order of `keys` (every row's key, once), scroll offsets kept."""
        if [row.key.value for row in self.ordered_rows] == keys:
            return
        self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(keys)})
        self._changed_rows()

    def _changed_rows(self) -> None:
        self._require_update_dimensions = True  # the virtual height, on the next idle
        self.cursor_coordinate = self.cursor_coordinate  # clamped to the rows left
        self._update_count += 1
        self.check_idle()
        self.refresh()

    def _forget_stale_rows(self) -> None:
        """Drop the cached renders of the updated rows: their cells, lines and renderables."""
        stale = self._stale_rows
        if not stale:
            return
        for cache in (self._cell_render_cache, self._row_render_cache):  # keyed (row key, ...)
            for key in [k for k in cache.keys() if k[0] in stale]:
                cache.discard(key)
        for row_key in stale:
            self._row_renderable_cache.discard((self._update_count, self._row_locations.get(row_key)))
        self._line_cache.clear()  # keyed by screen line; rebuilt cheaply from the cached rows
        stale.clear()

    def _update_column_widths(self, updated_cells) -> None:
        before = [column.content_width for column in self.ordered_columns]
        super()._update_column_widths(updated_cells)
        if [column.content_width for column in self.ordered_columns] != before:
            self._update_count += 1  # a column grew: every cached render has the old widths

    def render_lines(self, crop):
        self._forget_stale_rows()
        return super().render_lines(crop)

    def render_line(self, y: int):
        self._forget_stale_rows()
        return super().render_line(y)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        slow: list[RowKey] = []
        widths = {column.key: column.content_width for column in self.ordered_columns}
        for row_key in new_rows:
            row, cells = self.rows.get(row_key), self._data.get(row_key)
            if row is None or cells is None:
                continue  # removed before the table was idle
            measured = {key: cell_width(cells.get(key)) for key in widths}
            if row.auto_height or row.label is not None or None in measured.values():
                slow.append(row_key)
                continue
            for key, width in measured.items():
                widths[key] = max(widths[key], width)
        if any(column.content_width != widths[column.key] for column in self.ordered_columns):
            self._update_count += 1  # a column grew: every cached render has the old widths
        for column in self.ordered_columns:
            column.content_width = widths[column.key]
        # The rest (other cells, auto heights, the virtual size) as DataTable does it.
        super()._update_dimensions(slow)
