"""The two screens: every study (the playbook's spreadsheet) and one study's trials.

Screens never read the store: the app hands them Snapshots (see tui.snapshot),
and they call the app's actions, which run in worker threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from runner.text import printable
from tui import tables
from tui.snapshot import Curve, Snapshot, StudyRow, TrialRow, View

if TYPE_CHECKING:
    from tui.app import PlaybookApp


class RunnerStatus(Static):
    """One line: is a runner alive for this database, and who."""

    def show(self, snap: Snapshot) -> None:
        if snap.error:
            text, kind = f"store error: {printable(snap.error)}", "-error"
        elif not snap.runner_checked:
            text, kind = "checking for a runner…", "-none"
        elif snap.runner:
            text, kind = (f"runner pid {snap.runner.pid} on {printable(snap.runner.host)} "
                          "owns this database", "-alive")
        else:
            text, kind = "no runner: press l to launch one", "-none"
        self.set_classes(kind)
        self.update(Text(text, no_wrap=True, overflow="ellipsis"))


class SnapshotScreen(Screen):
    """A screen the app refreshes with each new snapshot."""

    app: PlaybookApp

    def show(self, snap: Snapshot) -> None:
        raise NotImplementedError

    def on_screen_resume(self) -> None:
        if self.app.snapshot is not None:
            self.show(self.app.snapshot)


class StudiesScreen(SnapshotScreen):
    BINDINGS = [
        Binding("n", "register_sample", "Sample study", tooltip="Register the bundled sample study"),
        Binding("l", "launch", "Launch", tooltip="Launch or resume the highlighted study"),
        Binding("X", "stop_study", "Stop study", tooltip="Stop the highlighted study"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunnerStatus(id="runner")
        yield Static(id="empty")
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        tables.set_columns(self.query_one(DataTable), tables.STUDY_COLUMNS)
        self.query_one("#empty", Static).update(Text("reading the database…"))
        self.add_class("-empty")  # until the first snapshot says otherwise

    def show(self, snap: Snapshot) -> None:
        self.query_one(RunnerStatus).show(snap)
        table = self.query_one(DataTable)
        empty = not snap.studies
        self.set_class(empty, "-empty")
        if empty:
            self.query_one("#empty", Static).update(Text(
                "No studies in this database yet.\n\n"
                f"Press n to register the bundled sample study:\n  {self.app.sample_study}\n\n"
                f"or register one from a shell:\n  playbook-runner --db {self.app.db_path} run STUDY.toml"))
        tables.sync_rows(table, tables.STUDY_COLUMNS, snap.studies, key=lambda r: str(r.id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_study(int(event.row_key.value))

    def _highlighted(self) -> int | None:
        key = tables.current_key(self.query_one(DataTable))
        if key is None:
            self.notify("no study highlighted", severity="warning")
        return int(key) if key is not None else None

    def action_register_sample(self) -> None:
        self.app.register_sample()

    def action_launch(self) -> None:
        if (study_id := self._highlighted()) is not None:
            self.app.launch_study(study_id)

    def action_stop_study(self) -> None:
        if (study_id := self._highlighted()) is not None:
            self.app.stop_study(study_id)


class MetricSpark(Horizontal):
    """A metric's name and last value, beside a sparkline of its curve."""

    def __init__(self, metric: str):
        super().__init__(classes="metric")
        self.metric = metric

    def compose(self) -> ComposeResult:
        yield Static(Text(self.metric), classes="metric-label")
        yield Sparkline([], classes="metric-spark")

    def show(self, curve: Curve | None) -> None:
        values = list(curve.values) if curve else []
        last = tables.fmt(curve.last) if curve and curve.last is not None else "no points yet"
        self.query_one(".metric-label", Static).update(Text(f"{self.metric}\n{last}"))
        spark = self.query_one(Sparkline)
        spark.data = values
        spark.display = bool(values)  # an empty sparkline still draws a misleading baseline


class StudyScreen(SnapshotScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("l", "launch", "Launch", tooltip="Launch or resume this study"),
        Binding("x", "stop_trial", "Stop trial", tooltip="Stop the highlighted trial"),
        Binding("X", "stop_study", "Stop study", tooltip="Stop this study's running trials"),
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
    ]

    def __init__(self, study_id: int):
        super().__init__()
        self.study_id = study_id
        self.sort_column = "number"
        self.sort_reverse = False
        self.columns: tuple[tables.Column, ...] = ()
        self._rows: tuple[TrialRow, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunnerStatus(id="runner")
        yield Static(id="study-info")
        yield DataTable(id="trials", cursor_type="row", zebra_stripes=True)
        with Vertical(id="trial-pane"):
            yield Static(id="trial-detail")
            for metric in ("train_loss", "grad_norm"):
                yield MetricSpark(metric)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    def show(self, snap: Snapshot) -> None:
        self.query_one(RunnerStatus).show(snap)
        study = snap.study(self.study_id)
        self._show_info(study)
        if snap.view.study_id != self.study_id:
            return  # a snapshot from before this screen opened
        self._rows = snap.trials
        self.columns = tables.trial_columns(study, snap.roles)
        self._sync_table()
        highlighted = self.highlighted()
        self._show_detail(highlighted, study)
        if highlighted is not None and snap.view.trial_id == highlighted.id:
            curves = {c.name: c for c in snap.curves}
            for spark in self.query(MetricSpark):
                spark.show(curves.get(spark.metric))

    def _sync_table(self) -> None:
        table = self.query_one(DataTable)
        tables.set_columns(table, self.columns)
        column = self._column(self.sort_column)
        rows = tables.sorted_rows(self._rows, column, self.sort_reverse)
        tables.sync_rows(table, self.columns, rows, key=lambda r: str(r.id))

    def _column(self, key: str) -> tables.Column:
        return next((c for c in self.columns if c.key == key), self.columns[0])

    def _show_info(self, study: StudyRow | None) -> None:
        if study is None:
            text = f"study {self.study_id} is not in this database"
        else:
            arrow = "▼" if self.sort_reverse else "▲"
            label = self._column(self.sort_column).label if self.columns else "#"
            text = (f"{study.name} · {study.objective_metric} ({study.objective_mode}) · "
                    f"sort: {label} {arrow} · {study.goal}")
        self.query_one("#study-info", Static).update(
            Text(printable(text), no_wrap=True, overflow="ellipsis"))

    def _show_detail(self, row: TrialRow | None, study: StudyRow | None) -> None:
        detail = self.query_one("#trial-detail", Static)
        if row is None:
            detail.update(Text("no trial highlighted"))
            return
        state = tables.state_text(row, long=True)
        metric = study.objective_metric if study else "objective"
        best = (f"best {metric} {tables.fmt(row.best_value)} at step {row.best_step}"
                if row.best_value is not None else f"no {metric} yet")
        text = Text(f"trial #{row.number} ", style="bold")
        text.append(printable(state), style=tables.STATE_STYLE.get(row.state, ""))
        text.append(printable(f" · {best}"))
        if row.detail:
            text.append("\n" + printable(tables.one_line(row.detail, 400)), style="dim")
        detail.update(text)

    def highlighted(self) -> TrialRow | None:
        key = tables.current_key(self.query_one(DataTable))
        return next((r for r in self._rows if str(r.id) == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None:
            return
        trial_id = int(event.row_key.value)
        self.app.set_view(View(self.study_id, trial_id))
        study = self.app.snapshot.study(self.study_id) if self.app.snapshot else None
        self._show_detail(self.highlighted(), study)
        # The curves follow from the poller; until then do not show another trial's.
        for spark in self.query(MetricSpark):
            if self.app.snapshot is None or self.app.snapshot.view.trial_id != trial_id:
                spark.show(None)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        self.sort_reverse = (not self.sort_reverse) if key == self.sort_column else False
        self.sort_column = key
        self._resort()

    def action_cycle_sort(self) -> None:
        keys = [c.key for c in self.columns] or ["number"]
        index = keys.index(self.sort_column) if self.sort_column in keys else -1
        self.sort_column = keys[(index + 1) % len(keys)]
        self.sort_reverse = False
        self._resort()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def _resort(self) -> None:
        if self.columns:
            self._sync_table()
        snap = self.app.snapshot
        self._show_info(snap.study(self.study_id) if snap else None)

    def action_back(self) -> None:
        self.app.close_study()

    def action_launch(self) -> None:
        self.app.launch_study(self.study_id)

    def action_stop_study(self) -> None:
        self.app.stop_study(self.study_id)

    def action_stop_trial(self) -> None:
        row = self.highlighted()
        if row is None:
            self.notify("no trial highlighted", severity="warning")
        else:
            self.app.stop_trial(row.id)
