"""A DataTable of one-line Text cells, measured cheaply.

DataTable already draws only the rows in view, but when rows are added it
measures every cell through Rich's general `measure` (a console query per
cell): for a 1,000-trial x 9-column study that was ~100 ms of the event loop,
the largest share of opening the study. Our cells are always single-line
`rich.text.Text` (tui.tables.cell), whose width is just `cell_len`.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


def cell_width(value: object) -> int | None:
    """Terminal cells a one-line Text takes; None for anything else (measure it the slow way)."""
    if isinstance(value, Text) and "\n" not in value.plain:
        return value.cell_len
    return None


class TextTable(DataTable):
    """DataTable with a fast path for measuring rows of plain one-line Text cells."""

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
        for column in self.ordered_columns:
            column.content_width = widths[column.key]
        # The rest (other cells, auto heights, the virtual size) as DataTable does it.
        super()._update_dimensions(slow)
