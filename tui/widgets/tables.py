"""DataTable helpers: literal cells, rows from snapshots, in-place syncing, sorting."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey

from runner.text import printable_line

if TYPE_CHECKING:
    from tui.data.snapshot import StudyRow, TrialRow


def cell(value: Any, style: str = "") -> Text:
    """A cell that shows `value` literally: DataTable parses plain str cells as markup,
    and values come from study files and trial output."""
    if isinstance(value, Text):
        return value
    return Text(printable_line(value if isinstance(value, str) else fmt(value)), style=style, no_wrap=True)


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def one_line(text: str | None, limit: int = 60) -> str:
    """The last non-empty line of a multi-line detail (stderr's last line says the most)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def sort_key(value: Any) -> tuple:
    """Sortable across mixed types; missing values last."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    value: Callable[[Any], Any]  # row -> raw value (sorting)
    show: Callable[[Any], Text] | None = None  # row -> cell; default: cell(value(row))

    def render(self, row: Any) -> Text:
        return self.show(row) if self.show else cell(self.value(row))


STATE_STYLE = {"running": "bold green", "starting": "green", "queued": "dim",
               "completed": "", "failed": "red", "stopped": "yellow", "lost": "magenta"}


def _count(row: StudyRow, *states: str) -> int:
    return sum(row.counts.get(s, 0) for s in states)


def _best_study(row: StudyRow) -> Text:
    if row.best_value is None:
        return cell(None)
    return cell(f"{fmt(row.best_value)} (#{row.best_trial})")


# "done" counts trials that ended on purpose (completed, or stopped by a user);
# "failed" those that ended abnormally (failed, or lost with their runner).
STUDY_COLUMNS = (
    Column("name", "study", lambda r: r.name,  # a wizard's stage indented; a study with a baseline marked
           lambda r: cell(f"↳ {r.name}", "dim") if r.stage_of
           else cell(f"{r.name} {BASELINE_MARK}" if r.baseline else r.name)),
    Column("best", "best (trial)", lambda r: r.best_value, _best_study),
    Column("queued", "queued", lambda r: _count(r, "queued")),
    Column("running", "running", lambda r: _count(r, "starting", "running")),
    Column("done", "done", lambda r: _count(r, "completed", "stopped")),
    Column("failed", "failed", lambda r: _count(r, "failed", "lost")),
    Column("infeasible", "infeas.", lambda r: _count(r, "infeasible")),
    Column("active", "active", lambda r: r.active,
           lambda r: cell("active", "bold green") if r.active else cell("")),
    # Long text last, so the numbers fit an 80-column terminal.
    Column("goal", "goal", lambda r: r.goal, lambda r: cell(one_line(r.goal, 36))),
    Column("config", "config", lambda r: r.config_path),
)


def state_text(row: TrialRow, long: bool = False) -> str:
    """How the trial ended, as every view says it (runner.playbook.outcome): 'failed (oom)',
    'failed to train', 'stopped 33/200 ◐'; the long form adds infeasibility (too wide for the table)."""
    o = row.outcome
    if o is None:  # a row built without its study (tests, a study deleted meanwhile)
        notes = [row.reason] if row.reason else []
        if long and row.feasible == 0:
            notes.append("infeasible")
        return row.state + (f" ({', '.join(notes)})" if notes else "")
    return o.long if long else o.label


def state_style(row: TrialRow) -> str:
    """The state's colour; an analysis verdict colours like a failure, a partial trial like a stop."""
    o = row.outcome
    if o is not None and o.infeasible:
        return STATE_STYLE["failed"]
    if o is not None and o.partial:
        return STATE_STYLE["stopped"]
    return STATE_STYLE.get(row.state, "")


def detail_text(row: TrialRow) -> str | None:
    """What the trial said when it ended, or, when the analysis judged it, the verdict's evidence."""
    o = row.outcome
    return o.why if o is not None and o.verdict is not None else row.detail


def _state(row: TrialRow) -> Text:
    return cell(state_text(row), state_style(row))


BEST_MARK = "★"  # the best trial of its scientific value
BASELINE_MARK = "◆"  # a study with an adopted baseline (`decide`)
OVERLAY_MARK = "●"  # its curves are overlaid on the study plot


def _number(row: TrialRow, best: frozenset[int], marked: frozenset[int]) -> Text:
    marks = (OVERLAY_MARK if row.id in marked else "") + (BEST_MARK if row.id in best else "")
    return cell(f"{marks}{row.number}")


def trial_columns(study: StudyRow | None, roles: dict[str, str], best: frozenset[int] = frozenset(),
                  marked: frozenset[int] = frozenset()) -> tuple[Column, ...]:
    """#, state, progress, one column per varied parameter (scientific ones starred), best, sparklines, detail.

    Fixed parameters are the same on every row, so they get no column. The # cell
    carries the marks: ★ best of its scientific value, ● overlaid on the plot.
    """
    metric = study.objective_metric if study else "objective"
    max_steps = study.max_train_steps if study else None
    params = tuple(
        Column(f"p:{name}", name + ("*" if role == "scientific" else ""),
               lambda r, n=name: r.params.get(n))
        for name, role in roles.items()
        if role != "fixed"
    )
    # Progress beside the state, so an 80-column terminal shows both without scrolling.
    return (
        Column("number", "#", lambda r: r.number, lambda r: _number(r, best, marked)),
        Column("state", "state", lambda r: r.state, _state),
        Column("progress", "steps", lambda r: r.last_step,
               lambda r: cell(f"{fmt(r.last_step)}/{fmt(r.progress_total or max_steps)}")),
        *params,
        Column("best", f"best {metric}", lambda r: r.best_value),
        Column("best_step", "@step", lambda r: r.best_step),
        Column("spark", "loss ‖g‖", lambda r: r.loss_spark,
               lambda r: cell(f"{sparkline(r.loss_spark)} {sparkline(r.grad_spark)}".strip())),
        Column("detail", "detail", detail_text, lambda r: cell(one_line(detail_text(r)))),
    )


SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """A one-line text sparkline; a non-finite point (None) is a blank."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return " " * len(values) if values else ""
    lo, hi = min(finite), max(finite)
    top = len(SPARK_LEVELS) - 1
    return "".join(
        " " if v is None or not math.isfinite(v)
        else SPARK_LEVELS[round((v - lo) / (hi - lo) * top) if hi > lo else 0]
        for v in values
    )


def sorted_rows(rows: Sequence[Any], column: Column, reverse: bool) -> list[Any]:
    return sorted(rows, key=lambda r: sort_key(column.value(r)), reverse=reverse)


def set_columns(table: DataTable, columns: Sequence[Column]) -> bool:
    """Make the table's columns these; True when they changed (the rows were cleared)."""
    if [str(k.value) for k in table.columns] == [c.key for c in columns]:
        return False
    table.clear(columns=True)
    for column in columns:
        table.add_column(cell(column.label, "bold"), key=column.key)
    return True


class RowCache:
    """Each row's rendered cells, reused while its signature (the row and its marks) is unchanged.

    A running study changes a few rows a poll; re-rendering and comparing all of a
    1,000-trial table's cells every poll would cost ~100 ms of the event loop.
    Clear it when the columns change.
    """

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, list[Text]]] = {}

    def clear(self) -> None:
        self.entries.clear()


def sync_rows(table: DataTable, columns: Sequence[Column], rows: Sequence[Any],
              key: Callable[[Any], str], row_style: Callable[[Any], str] | None = None,
              cache: RowCache | None = None, signature: Callable[[Any], Any] = lambda r: r,
              limit: int | None = None) -> int:
    """Show `rows` (in order), editing cells in place when the table holds the same rows in
    the same order, or the first of them (no flicker, scroll kept), else clear and re-add
    keeping the cursor's row. Returns how many of `rows` are not in the table yet.

    With a `limit`, at most that many rows are added by this call (more when the cursor's
    row is further down: it is kept, with `limit` rows after it); call again to add the
    next ones. Only rows that are added or already shown are rendered.
    `row_style` (row -> style) emphasizes whole rows, e.g. the best trials in bold.
    With a `cache`, rows whose `signature` did not change are neither rendered nor compared.
    """
    keys = [key(r) for r in rows]
    shown = [k.value for k in table.rows]
    if shown == keys[: len(shown)]:
        _update_in_place(table, columns, rows[: len(shown)], shown, row_style, cache, signature)
        end = len(keys) if limit is None else min(len(keys), len(shown) + limit)
        _add(table, columns, rows, keys, range(len(shown), end), row_style, cache, signature)
        return len(keys) - end
    cursor_key = current_key(table)
    cursor = keys.index(cursor_key) if cursor_key in keys else None
    end = len(keys) if limit is None else min(len(keys), max(limit, (cursor or 0) + 1 + limit))
    table.clear()
    _add(table, columns, rows, keys, range(end), row_style, cache, signature)
    if cursor is not None:
        table.move_cursor(row=cursor)
    return len(keys) - end


def _update_in_place(table: DataTable, columns: Sequence[Column], rows: Sequence[Any], keys: list[str],
                     row_style: Callable[[Any], str] | None, cache: RowCache | None,
                     signature: Callable[[Any], Any]) -> None:
    for row, row_key in zip(rows, keys, strict=True):
        row_cells, changed = _cells(columns, row, row_key, row_style, cache, signature)
        for column, new in zip(columns, row_cells, strict=True) if changed else ():
            if not _same(table.get_cell(row_key, column.key), new):
                # Re-measuring widths re-renders the whole table: only when the cell grew.
                grew = new.cell_len > table.columns[ColumnKey(column.key)].content_width
                table.update_cell(row_key, column.key, new, update_width=grew)


def _add(table: DataTable, columns: Sequence[Column], rows: Sequence[Any], keys: list[str], which: range,
         row_style: Callable[[Any], str] | None, cache: RowCache | None,
         signature: Callable[[Any], Any]) -> None:
    for i in which:
        row_cells, _ = _cells(columns, rows[i], keys[i], row_style, cache, signature)
        table.add_row(*row_cells, key=keys[i])


def _cells(columns: Sequence[Column], row: Any, row_key: str, row_style: Callable[[Any], str] | None,
           cache: RowCache | None, signature: Callable[[Any], Any]) -> tuple[list[Text], bool]:
    """The row's cells, and whether they may differ from what the table shows."""
    sig = signature(row) if cache is not None else None
    if cache is not None and (hit := cache.entries.get(row_key)) is not None and hit[0] == sig:
        return hit[1], False
    cells = [_styled(c.render(row), row_style(row) if row_style else "") for c in columns]
    if cache is not None:
        cache.entries[row_key] = (sig, cells)
    return cells, True


def _styled(text: Text, style: str) -> Text:
    if not style:
        return text
    text = text.copy()
    text.stylize(style)
    return text


def current_key(table: DataTable) -> str | None:
    """The key of the row under the cursor, if any."""
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except CellDoesNotExist:  # the cursor is past the rows while the table is rebuilt
        return None


def _same(old: Any, new: Text) -> bool:
    # Text equality ignores the base style; a state's colour is in its style.
    return isinstance(old, Text) and old == new and old.style == new.style
