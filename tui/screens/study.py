"""One study: its trials (filtered, sorted, the best per scientific value marked), its plots, its checklist."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Header, Static

from runner.text import printable, printable_line
from tui.data import plots
from tui.data.checklist import ChecklistResult
from tui.data.snapshot import MAX_OVERLAY, Snapshot, StudyDetail, StudyRow, TrialRow, View
from tui.messages import (
    AddTrials,
    CloseScreen,
    Confirm,
    LaunchStudy,
    OpenTrial,
    PushScreen,
    RequeueTrial,
    StopStudy,
    StopTrial,
)
from tui.screens.base import RunnerStatus, SnapshotScreen
from tui.widgets import tables
from tui.widgets.checklist import CheckLine, ChecklistPanel
from tui.widgets.footer import KeyFooter
from tui.widgets.plot import PlotSpec, PlotWidget
from tui.widgets.trial_table import TrialTable

CURVES = "curves"
# The checklist's plots, last in the cycle; they (and the checklist) are computed only while shown.
BEST_STEPS, COMPUTE = "best-steps", "compute"
CHECKLIST_PAGES = (BEST_STEPS, COMPUTE)


class StudyScreen(SnapshotScreen):
    # In the order of use: the footer keeps the first ones when they do not all fit (tui.widgets.keys).
    BINDINGS = [
        Binding("escape", "back", "Back"),
        # priority: the table would take enter for itself (and only on the row it knows).
        Binding("enter", "open_trial", "Open trial", priority=True),
        Binding("p", "next_plot", "Next plot", tooltip="Curves, an axis plot per varied parameter, "
                "isolation, best steps, compute"),
        Binding("c", "toggle_checklist", "Checklist", tooltip="The playbook's checklist for this study, "
                "or back to the plots"),
        Binding("f", "cycle_filter", "Filter", tooltip="Show all, running, completed, failed or queued trials"),
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column"),
        Binding("space", "mark", "Overlay", tooltip="Overlay (or not) this trial's curves on the plot"),
        Binding("x", "stop_trial", "Stop trial", tooltip="Stop the highlighted trial (asks first)"),
        Binding("l", "launch", "Launch", tooltip="Launch or resume this study"),
        Binding("a", "add_trials", "Add trials", tooltip="Queue more quasi-random samples of this study"),
        Binding("X", "stop_study", "Stop study", tooltip="Stop this study's running trials (asks first)"),
        Binding("r", "requeue_trial", "Re-queue", tooltip="Run the highlighted stopped, failed or lost "
                "trial again from scratch (asks first)"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("R", "app.refine_study", "Refine", tooltip="Refine this exploration into a Bayesian-optimization study"),
    ]

    def __init__(self, study_id: int, checklist: ChecklistResult | None = None):
        super().__init__()
        self.study_id = study_id
        self.marked: set[int] = set()  # trial ids overlaid on the curves plot
        self.plot_page = CURVES  # CURVES, "axis:<param>", "isolation:<param>" or a CHECKLIST_PAGES
        self.checklist_shown = False  # the pane shows the checklist instead of a plot
        # The last one computed, on an earlier visit: shown until a fresh one comes.
        self._checklist = checklist if checklist is not None and checklist.study_id == study_id else None
        self._detail: StudyDetail | None = None
        self._plotted_at = 0.0  # when the plot was last given new data (see _replot)
        self._plot_timer: Timer | None = None
        self._runner_shown: tuple | None = None  # what the runner line shows (see show)
        self._texts: dict[str, Text] = {}  # what each Static shows (see _put)

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunnerStatus(id="runner")
        yield Static(id="study-info")
        yield TrialTable(id="trials")
        with Vertical(id="trial-pane"):
            yield Static(id="trial-detail")
            yield PlotWidget(id="study-plot")
            yield ChecklistPanel(id="checklist")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.table.focus()

    def view(self) -> View:
        row = self.highlighted()
        wants = self.checklist_shown or self.plot_page in CHECKLIST_PAGES
        return View(self.study_id, row.id if row else None, overlay=tuple(sorted(self.marked)), checklist=wants)

    # -- showing a snapshot --------------------------------------------------------

    def show(self, snap: Snapshot) -> None:
        runner = (snap.error, snap.runner_checked, snap.runner)
        if runner != self._runner_shown:  # unchanged on most polls; an update relayouts the screen
            self._runner_shown = runner
            self.query_one(RunnerStatus).show(snap)
        study = snap.study(self.study_id)
        detail = snap.study_detail
        if detail is not None and detail.study_id == self.study_id:
            self._detail = detail  # else a snapshot of another view: keep what is shown
            self.marked &= {r.id for r in detail.trials}
            self.table.show(study, detail, frozenset(self.marked))
        self._show_info(study)
        self._show_detail(self.highlighted(), study)
        self._show_plot(study)

    @property
    def table(self) -> TrialTable:
        return self.query_one("#trials", TrialTable)

    @property
    def rows(self) -> tuple[TrialRow, ...]:
        return self._detail.trials if self._detail else ()

    def _show_info(self, study: StudyRow | None) -> None:
        if study is None:
            text = f"study {self.study_id} is not in this database"
        else:
            table = self.table
            arrow = "▼" if table.sort_reverse else "▲"
            state_filter = table.state_filter
            shown = f" ({len(table.shown_trials())} of {len(self.rows)})" if state_filter != "all" else ""
            baseline = f"{tables.BASELINE_MARK} {study.baseline} · " if study.baseline else ""
            text = (f"{study.name} · {study.objective_metric} ({study.objective_mode}) · {baseline}"
                    f"sort: {table.column(table.sort_column).label} {arrow} · filter: {state_filter}{shown}"
                    f" · {tables.BEST_MARK} best per scientific value · {study.goal}")
        self._put("#study-info", Text(printable_line(text), no_wrap=True, overflow="ellipsis"))

    def _put(self, selector: str, text: Text) -> None:
        """Show `text` in a Static unless it shows that already.

        A layout pass relayouts and repaints the whole screen, which each poll of a
        live study (the highlighted trial's step changes) would pay for nothing: these
        lines never wrap, so only a change in the number of lines can change the size.
        """
        old = self._texts.get(selector)
        if old != text:
            self._texts[selector] = text
            resized = old is None or old.plain.count("\n") != text.plain.count("\n")
            self.query_one(selector, Static).update(text, layout=resized)

    def _show_detail(self, row: TrialRow | None, study: StudyRow | None) -> None:
        if row is None:
            self._put("#trial-detail", Text("no trial highlighted" if self.rows else "no trials yet"))
            return
        state = tables.state_text(row, long=True)
        metric = study.objective_metric if study else "objective"
        best = (f"best {metric} {tables.fmt(row.best_value)} at step {row.best_step}"
                if row.best_value is not None else f"no {metric} yet")
        text = Text(f"trial #{row.number} ", style="bold", no_wrap=True, overflow="ellipsis")
        text.append(printable_line(state), style=tables.state_style(row))
        text.append(printable_line(f" · {best} · enter opens it"))
        if why := tables.detail_text(row):
            text.append("\n" + printable(tables.one_line(why, 400)), style="dim")
        self._put("#trial-detail", text)

    # -- the plot panel -------------------------------------------------------------

    def plot_pages(self) -> list[str]:
        detail = self._detail
        if detail is None:
            return [CURVES]
        return ([CURVES] + [f"axis:{a.param}" for a in detail.axes]
                + [f"isolation:{name}" for name, _ in detail.isolation] + list(CHECKLIST_PAGES))

    def _show_plot(self, study: StudyRow | None) -> None:
        pages = self.plot_pages()
        if self.plot_page not in pages:
            self.plot_page = CURVES
        pane = self.query_one("#trial-pane")
        if self.checklist_shown:
            title = self._checklist_title()
        else:
            title = (f"{self.plot_page} ({pages.index(self.plot_page) + 1}/{len(pages)}) · "
                     "p: next plot · c: checklist")
        if pane.border_title != title:  # setting it, even to the same, repaints the whole pane
            pane.border_title = title
        self._replot(self._plot_spec(study))

    def _replot(self, spec: PlotSpec) -> None:
        """Show `spec`; a live curve's new points at most every LIVE_PLOT_S (each redraw sends
        the whole plot to the terminal: over SSH most of the bytes), anything else at once."""
        plot = self.query_one(PlotWidget)
        if self._plot_timer is not None:
            self._plot_timer.stop()
            self._plot_timer = None
        wait = self._plotted_at + LIVE_PLOT_S - time.monotonic()
        if wait > 0 and spec != plot.spec and _same_plot(spec, plot.spec):
            self._plot_timer = self.set_timer(wait, lambda: self._replot(spec))
            return
        if spec != plot.spec:
            self._plotted_at = time.monotonic()
            plot.replot(spec)

    def _plot_spec(self, study: StudyRow | None) -> PlotSpec:
        detail = self._detail
        if detail is None or study is None:
            return PlotSpec("", empty="reading the study…")
        objective, mode = study.objective_metric, study.objective_mode
        if self.plot_page == CURVES:
            return plots.curves_spec(detail.curves, objective)
        if self.plot_page in CHECKLIST_PAGES:
            return self._checklist_plot_spec(objective)
        if detail.analysis_error:
            return PlotSpec(self.plot_page, empty=f"analysis failed: {detail.analysis_error}")
        kind, _, name = self.plot_page.partition(":")
        if kind == "axis":
            axis = next(a for a in detail.axes if a.param == name)
            return plots.axis_spec(axis, objective, mode)
        rows = next(rows for n, rows in detail.isolation if n == name)
        return plots.isolation_spec(name, rows, objective)

    def _checklist_plot_spec(self, objective: str) -> PlotSpec:
        result = self._checklist
        if result is None:
            return PlotSpec(self.plot_page, empty="computing the checklist…")
        if result.error:
            return PlotSpec(self.plot_page, empty=f"the checklist failed: {result.error}")
        if self.plot_page == BEST_STEPS:
            return plots.best_steps_spec(result.best_steps)
        return plots.compute_spec(result.compute, objective)

    # -- the checklist ------------------------------------------------------------------

    def show_checklist(self, result: ChecklistResult) -> None:
        """A fresh checklist from the app's checklist thread."""
        if result.study_id != self.study_id:
            return
        self._checklist = result
        self._show_checklist_panel()
        if self.plot_page in CHECKLIST_PAGES or self.checklist_shown:
            self._refresh_plot()

    def _show_checklist_panel(self) -> None:
        panel = self.query_one(ChecklistPanel)
        panel.show(self._checklist)
        if self.checklist_shown and not isinstance(self.focused, CheckLine):
            # Pressing c before the first result: move to the lines once they are there.
            self.call_after_refresh(self._focus_checklist)

    def _focus_checklist(self) -> None:
        line = self.query_one(ChecklistPanel).first_line()
        if self.checklist_shown and line is not None and not isinstance(self.focused, CheckLine):
            line.focus()

    def _checklist_title(self) -> str:
        result = self._checklist
        if result is None or result.error:
            return f"checklist ({'computing…' if result is None else 'failed'}) · c: plots"
        counts = " · ".join(f"{n} {verdict}" for verdict, n in result.counts().items())
        when = time.strftime("%H:%M:%S", time.localtime(result.computed_at))
        return f"checklist: {counts} ({result.trials} trials, {when}) · enter: evidence · c: plots"

    def _set_checklist_shown(self, shown: bool) -> None:
        self.checklist_shown = shown
        self.set_class(shown, "-checklist")
        self.view_changed()
        if shown:
            self._show_checklist_panel()
        else:
            self.table.focus()
        self._refresh_plot()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # enter belongs to a focused check (it expands it), not to the trials table.
        return not (action == "open_trial" and isinstance(self.focused, CheckLine))

    # -- following the cursor ---------------------------------------------------------

    def highlighted(self) -> TrialRow | None:
        return self.table.highlighted_trial()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None:
            return
        self.view_changed()  # the poller reads the new trial's curves
        snap = self.snapshot
        self._show_detail(self.highlighted(), snap.study(self.study_id) if snap else None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_trial()  # a click on the highlighted row

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.table.sort_by(event.column_key.value)
        self._refresh()

    # -- keys ------------------------------------------------------------------------------

    def action_open_trial(self) -> None:
        row = self.highlighted()
        if row is None:
            self.notify("no trial highlighted", severity="warning")
        else:
            self.post_message(OpenTrial(self.study_id, row.id, row.trial_dir))

    def action_mark(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        if row.id in self.marked:
            self.marked.discard(row.id)
        elif len(self.marked) + 1 >= MAX_OVERLAY:
            self.notify(f"at most {MAX_OVERLAY} trials overlaid", severity="warning")
            return
        else:
            self.marked.add(row.id)
        self.plot_page = CURVES
        self._set_checklist_shown(False)  # shows the overlay (and tells the poller)
        self._refresh()

    def action_next_plot(self) -> None:
        if self.checklist_shown:  # back to the plot that was shown
            self._set_checklist_shown(False)
            return
        pages = self.plot_pages()
        index = pages.index(self.plot_page) if self.plot_page in pages else -1
        self.plot_page = pages[(index + 1) % len(pages)]
        self.view_changed()  # the checklist's plots need it computed
        self._refresh()

    def action_toggle_checklist(self) -> None:
        self._set_checklist_shown(not self.checklist_shown)

    def action_add_trials(self) -> None:
        from tui.screens.add_trials import AddTrialsScreen  # the dialog loads when first needed

        snap = self.snapshot
        study = snap.study(self.study_id) if snap else None
        if study is None:
            self.notify("the study is not loaded yet", severity="warning")
            return

        def queue(samples: int | None) -> None:
            if samples is not None:
                self.post_message(AddTrials(self.study_id, samples))

        self.post_message(PushScreen(AddTrialsScreen(study.name), queue))

    def action_cycle_filter(self) -> None:
        self.table.cycle_filter()
        self._refresh()
        self.view_changed()  # the cursor may now be on another trial

    def action_cycle_sort(self) -> None:
        self.table.cycle_sort()
        self._refresh()

    def action_reverse_sort(self) -> None:
        self.table.reverse_sort()
        self._refresh()

    def _refresh(self) -> None:
        """Show the current snapshot again after a change of sort, filter, marks or plot."""
        snap = self.snapshot
        study = snap.study(self.study_id) if snap else None
        if self._detail is not None:
            self.table.show(study, self._detail, frozenset(self.marked))
        self._show_info(study)
        self._show_detail(self.highlighted(), study)
        self._show_plot(study)

    def _refresh_plot(self) -> None:
        snap = self.snapshot
        self._show_plot(snap.study(self.study_id) if snap else None)

    def action_back(self) -> None:
        if self.checklist_shown:  # esc leaves the checklist first, then the screen
            self._set_checklist_shown(False)
        else:
            self.post_message(CloseScreen(self))

    def action_launch(self) -> None:
        self.post_message(LaunchStudy(self.study_id))

    def _study_name(self) -> str:
        snap = self.snapshot
        study = snap.study(self.study_id) if snap else None
        return printable_line(study.name) if study else f"study {self.study_id}"

    def action_stop_study(self) -> None:
        study_id, name = self.study_id, self._study_name()
        running = sum(1 for r in self.rows if r.state in ("starting", "running"))
        self.post_message(Confirm(f"Stop study {name}? Its {running} running trial(s) stop; "
                                  "its queued trials wait for the next launch.", StopStudy(study_id)))

    def action_stop_trial(self) -> None:
        row = self.highlighted()  # now, at the key press: rows may move while the question is open
        if row is None:
            self.notify("no trial highlighted", severity="warning")
            return
        trial_id = row.id
        self.post_message(Confirm(f"Stop trial #{row.number} ({row.state}, {_params(row)}) of "
                                  f"{self._study_name()}?", StopTrial(trial_id)))

    def action_requeue_trial(self) -> None:
        row = self.highlighted()
        if row is None:
            self.notify("no trial highlighted", severity="warning")
            return
        if row.state not in REQUEUEABLE:
            self.notify(f"trial #{row.number} is {row.state}: only a stopped, failed or lost trial "
                        "can be re-queued", severity="warning")
            return
        trial_id = row.id
        self.post_message(Confirm(f"Re-queue trial #{row.number} ({row.state}, {_params(row)}) of "
                                  f"{self._study_name()}? Its curves and checkpoints are dropped and it runs "
                                  "again from scratch.", RequeueTrial(trial_id)))


REQUEUEABLE = ("stopped", "failed", "lost")
LIVE_PLOT_S = 3.0  # a live plot's redraws: the poll (0.75 s) would redraw it at 1.3 Hz


def _same_plot(a: PlotSpec, b: PlotSpec) -> bool:
    """The same plot with other points (a live curve grew), not another page or trial."""
    return a.title == b.title and [s.label for s in a.series] == [s.label for s in b.series]


def _params(row: TrialRow) -> str:
    return printable_line(", ".join(f"{k}={v}" for k, v in row.params.items()))[:120]
