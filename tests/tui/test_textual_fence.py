"""The private Textual names tui/widgets/table.py (TextTable), footer.py (KeyFooter) and tui/wire.py lean on.

Textual may rename any of these in a release without notice. This lists exactly the ones we
use; when one goes, the failure names it, rather than a screen going blank or slow. If a name
is added to (or dropped from) those widgets, add (or drop) it here.
"""

from __future__ import annotations

import inspect

from textual.binding import ActiveBinding
from textual.cache import LRUCache
from textual.widgets import DataTable, Footer

from tui.widgets.table import TextTable

# TextTable.update_cell and _forget_stale_rows: DataTable's render caches, dropped a row at a time.
TABLE_CACHES = {name: LRUCache for name in TextTable._ROW_CACHES}
# TextTable.update_cell: where rows, columns and cell values live, and what marks a pending measure.
TABLE_STATE = {"_row_locations": None, "_column_locations": None, "_data": dict, "_updated_cells": set,
               "_require_update_dimensions": bool, "_update_count": int}
# Methods TextTable overrides and calls super() on: their parameters as we call them.
TABLE_METHODS = {"_update_dimensions": ["self", "new_rows"], "_update_column_widths": ["self", "updated_cells"]}
CACHE_METHODS = ("keys", "discard", "clear")  # what _forget_stale_rows calls on each cache
# KeyFooter: the flag set once Footer has its bindings, the hook it filters, and the shape of
# Screen.active_bindings' values it reads.
FOOTER_STATE = {"_bindings_ready": bool}
FOOTER_METHODS = {"bindings_changed": ["self", "screen"]}
ACTIVE_BINDING_FIELDS = ("node", "binding", "enabled", "tooltip")


def missing_state(widget: object, expected: dict[str, type | None]) -> list[str]:
    gone = []
    for name, kind in expected.items():
        if not hasattr(widget, name):
            gone.append(f"{type(widget).__name__}.{name} is gone")
        elif kind is not None and not isinstance(getattr(widget, name), kind):
            gone.append(f"{type(widget).__name__}.{name} is a {type(getattr(widget, name)).__name__}, "
                        f"not a {kind.__name__}")
    return gone


def missing_methods(cls: type, expected: dict[str, list[str]]) -> list[str]:
    gone = []
    for name, params in expected.items():
        method = getattr(cls, name, None)
        if method is None:
            gone.append(f"{cls.__name__}.{name}() is gone")
        elif list(inspect.signature(method).parameters) != params:
            gone.append(f"{cls.__name__}.{name}{inspect.signature(method)} no longer takes {params}")
    return gone


def test_datatable_still_has_what_texttable_uses():
    table = DataTable()
    gone = missing_state(table, TABLE_CACHES) + missing_state(table, TABLE_STATE)
    gone += missing_methods(DataTable, TABLE_METHODS)
    gone += [f"LRUCache.{name}() is gone" for name in CACHE_METHODS if not callable(getattr(LRUCache, name, None))]
    assert not gone, "Textual changed what tui/widgets/table.py relies on: " + "; ".join(gone)


def test_footer_still_has_what_keyfooter_uses():
    gone = missing_state(Footer(), FOOTER_STATE) + missing_methods(Footer, FOOTER_METHODS)
    if ActiveBinding._fields != ACTIVE_BINDING_FIELDS:
        gone.append(f"ActiveBinding is now {ActiveBinding._fields}, not {ACTIVE_BINDING_FIELDS}")
    assert not gone, "Textual changed what tui/widgets/footer.py relies on: " + "; ".join(gone)


def test_the_fence_names_what_disappeared():
    class Shrunk:
        _data = {}

    assert missing_state(Shrunk(), {"_data": dict, "_line_cache": LRUCache}) == ["Shrunk._line_cache is gone"]
    assert missing_methods(Shrunk, {"_update_dimensions": ["self", "new_rows"]}) == [
        "Shrunk._update_dimensions() is gone"]


def test_the_compositor_update_tui_wire_replaces_is_still_there():
    # tui/wire.py swaps textual._compositor.ChopsUpdate.render_segments for one that crops both
    # ends of a span (fewer bytes over SSH); it reads the update's chops, spans and chop_ends.
    from rich.console import Console
    from textual._compositor import ChopsUpdate
    from textual.strip import Strip

    from tui.wire import crop_partial_updates

    gone = missing_methods(ChopsUpdate, {"render_segments": ["self", "console"]})
    update = ChopsUpdate([{0: Strip.blank(10)}], [(0, 2, 5)], [[10]])
    gone += [f"ChopsUpdate.{name} is gone" for name in ("chops", "spans", "chop_ends") if not hasattr(update, name)]
    assert not gone, "Textual changed what tui/wire.py relies on: " + "; ".join(gone)
    assert crop_partial_updates(), "tui/wire.py found nothing to replace: its byte savings are off"
    sent = update.render_segments(Console(width=10, force_terminal=True))
    assert sent.count(" ") == 3  # columns 2-4 of the blank line, not columns 0-4
