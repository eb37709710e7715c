"""DataTable helpers: literal cells, the studies' and trials' columns, sorting, in-place syncing
(the trial table's own, with its cache and streaming, is tui.widgets.trial_table)."""

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


def _study_name(r: StudyRow) -> Text:
    """A wizard's stage indented, a name's earlier versions indented under its latest ('tiny v2'),
    a study with an adopted baseline marked."""
    if r.stage_of:
        return cell(f"↳ {r.shown}", "dim")
    if r.earlier:
        return cell(f"  · {r.shown}", "dim")
    return cell(f"{r.shown} {BASELINE_MARK}" if r.baseline else r.shown)


# "done" counts trials that ended on purpose (completed, or stopped by a user);
# "failed" those that ended abnormally (failed, or lost with their runner).
STUDY_COLUMNS = (
    Column("name", "study", lambda r: r.name, lambda r: _study_name(r)),
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
                  marked: frozenset[int] = frozenset(), compact: bool = False) -> tuple[Column, ...]:
    """#, state, progress, one column per varied parameter (scientific ones starred), best, sparklines, detail.

    Fixed parameters are the same on every row, so they get no column. The # cell
    carries the marks: ★ best of its scientific value, ● overlaid on the plot.
    `compact` (a narrow terminal): the parameters in one column at the end, no @step
    or detail, sparklines half as wide.
    """
    metric = study.objective_metric if study else "objective"
    max_steps = study.max_train_steps if study else None
    varied = [(name, name + ("*" if role == "scientific" else "")) for name, role in roles.items()
              if role != "fixed"]
    params = tuple(Column(f"p:{name}", label, lambda r, n=name: r.params.get(n)) for name, label in varied)
    points = SPARK_COMPACT if compact else None
    # Progress beside the state, so an 80-column terminal shows both without scrolling.
    head = (
        Column("number", "#", lambda r: r.number, lambda r: _number(r, best, marked)),
        Column("state", "state", lambda r: r.state, _state),
        Column("progress", "steps", lambda r: r.last_step,
               lambda r: cell(f"{fmt(r.last_step)}/{fmt(r.progress_total or max_steps)}")),
    )
    spark = Column("spark", "loss ‖g‖", lambda r: r.loss_spark,
                   lambda r: cell(f"{sparkline(r.loss_spark, points)} {sparkline(r.grad_spark, points)}".strip()))
    if compact:
        return (*head, Column("best", "best", lambda r: r.best_value), spark,
                Column("params", ", ".join(label for _, label in varied) or "params",
                       lambda r: tuple(r.params.get(n) for n, _ in varied),
                       lambda r: cell(" ".join(fmt(r.params.get(n)) for n, _ in varied))))
    return (
        *head,
        *params,
        Column("best", f"best {metric}", lambda r: r.best_value),
        Column("best_step", "@step", lambda r: r.best_step),
        spark,
        Column("detail", "detail", detail_text, lambda r: cell(one_line(detail_text(r)))),
    )


SPARK_FULL = 16  # points per sparkline in the full layout (tui.data.snapshot.SPARK_POINTS)
SPARK_COMPACT = 8  # in the narrow one
# What the full layout's fixed columns take, padding included: # (marks, 3 digits), state
# ("completed"), steps ("500/10000"), @step, both sparklines; the best column is its label.
_FULL_FIXED = 6 + 11 + 10 + 7 + (2 * SPARK_FULL + 1 + 2)
_PARAM_WIDTH = 8  # a parameter's value, e.g. 0.001234, plus padding


def full_trial_width(study: StudyRow | None, param_labels: Sequence[str]) -> int:
    """About how many terminal columns the full layout needs to show all but the detail."""
    metric = study.objective_metric if study else "objective"
    return (_FULL_FIXED + len(f"best {metric}") + 2
            + sum(max(_PARAM_WIDTH, len(label) + 2) for label in param_labels))


SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], points: int | None = None) -> str:
    """A one-line text sparkline of at most `points` characters (neighbours averaged); a
    non-finite point (None) is a blank."""
    if points is not None and len(values) > points:
        size = -(-len(values) // points)
        values = [None if any(v is None or not math.isfinite(v) for v in chunk) else sum(chunk) / len(chunk)
                  for chunk in (values[i:i + size] for i in range(0, len(values), size))]
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


def sync_rows(table: DataTable, columns: Sequence[Column], rows: Sequence[Any],
              key: Callable[[Any], str]) -> None:
    """Show `rows` (in order), editing cells in place when the table holds the same rows in
    the same order, or the first of them (no flicker, scroll kept), else clear and re-add
    keeping the cursor's row. (The trial table does more: tui.widgets.trial_table.)"""
    keys = [key(r) for r in rows]
    shown = [k.value for k in table.rows]
    if shown == keys[: len(shown)]:
        for row, row_key in zip(rows, shown, strict=False):
            for column in columns:
                new = column.render(row)
                if not _same(table.get_cell(row_key, column.key), new):
                    grew = new.cell_len > table.columns[ColumnKey(column.key)].content_width
                    table.update_cell(row_key, column.key, new, update_width=grew)
        for i in range(len(shown), len(keys)):
            table.add_row(*(c.render(rows[i]) for c in columns), key=keys[i])
        return
    cursor_key = current_key(table)
    table.clear()
    for row, row_key in zip(rows, keys, strict=True):
        table.add_row(*(c.render(row) for c in columns), key=row_key)
    if cursor_key in keys:
        table.move_cursor(row=keys.index(cursor_key))


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
