"""One trial: parameters, command, state and failure, curves of any metric, gradients, logs."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Header, Select, Static, TabbedContent, TabPane

from runner.executors.where import placement_note
from runner.gpu_sampling import SERIES as GPU_SERIES
from runner.process import TrialPaths
from runner.text import out_of_order_note, printable, printable_line
from tui.data import plots
from tui.data.logtail import LogTail
from tui.data.polling import Poller
from tui.data.snapshot import Snapshot, StudyRow, View
from tui.data.trial_data import TrialDetail
from tui.messages import CloseScreen, Confirm, StopTrial
from tui.screens.base import RunnerStatus, SnapshotScreen
from tui.widgets import tables
from tui.widgets.footer import KeyFooter
from tui.widgets.logs import TailLog
from tui.widgets.plot import PlotWidget

LOG_POLL_S = 0.5
TABS = ("overview", "curves", "gradients", "logs")


class LogLines(Message):
    """New lines of the log files ("stdout", "stderr"), from the tail's poller thread."""

    def __init__(self, lines: dict[str, list[str]]):
        super().__init__()
        self.lines = lines


class TrialScreen(SnapshotScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('overview')", "Overview", tooltip="Parameters, command, state, checkpoints"),
        Binding("2", "tab('curves')", "Curves", tooltip="Any reported metric against step"),
        Binding("3", "tab('gradients')", "Gradients", tooltip="Gradient norm, its histogram and p90"),
        Binding("4", "tab('logs')", "Logs", tooltip="The tail of stdout and stderr"),
        Binding("m", "next_metric", "Metric", tooltip="Show the next reported metric"),
        Binding("F", "toggle_follow", "Follow", tooltip="Follow the logs' new lines, or stop"),
        Binding("x", "stop_trial", "Stop trial", tooltip="Stop this trial (asks first)"),
    ]

    def __init__(self, study_id: int, trial_id: int, trial_dir: str):
        super().__init__()
        self.study_id = study_id
        self.trial_id = trial_id
        self.metric: str | None = None  # None: the study's objective
        self.follow = True
        paths = TrialPaths(Path(trial_dir))
        # No folder recorded: nothing to tail (never the working directory's stdout.log).
        self._tails = {"stdout": LogTail(paths.stdout), "stderr": LogTail(paths.stderr)} if trial_dir else {}
        self._detail: TrialDetail | None = None
        self._metric_names: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunnerStatus(id="runner")
        yield Static(id="trial-title")
        with TabbedContent(id="tabs"):
            with TabPane("Overview", id="overview"):
                yield VerticalScroll(Static(id="overview-text"), id="overview-scroll")
            with TabPane("Curves", id="curves"):
                yield Select([], id="metric", compact=True, prompt="metric")
                yield PlotWidget(id="metric-plot")
            with TabPane("Gradients", id="gradients"):
                yield PlotWidget(id="grad-curve")
                yield PlotWidget(id="grad-hist")
            with TabPane("Logs", id="logs"):
                with Vertical(id="log-panes"):
                    yield TailLog(id="stdout")
                    yield TailLog(id="stderr")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._show_follow()
        # One thread reads the logs, one read at a time however slow the disk.
        self._log_poller = Poller(self._read_logs, self.post_message, LOG_POLL_S, name="log tail").start()

    def on_unmount(self) -> None:
        self._log_poller.stop()

    def view(self) -> View:
        return View(self.study_id, self.trial_id, detail=True, metric=self.metric)

    # -- the snapshot ------------------------------------------------------------------

    def show(self, snap: Snapshot) -> None:
        self.query_one(RunnerStatus).show(snap)
        study = snap.study(self.study_id)
        if snap.view.detail and snap.view.trial_id == self.trial_id:
            self._detail = snap.trial
            if snap.trial is None:
                self._title(Text(f"trial {self.trial_id} is not in this database", style="bold"))
                return
        detail = self._detail
        if detail is None:
            self._title(Text("reading the trial…"))
            return
        self._title(title_text(detail, study))
        self.query_one("#overview-text", Static).update(overview_text(detail, study))
        self._show_metrics(detail)
        self.query_one("#grad-curve", PlotWidget).replot(plots.grad_curve_spec(detail.grad, detail.grad_stats))
        self.query_one("#grad-hist", PlotWidget).replot(plots.grad_hist_spec(detail.grad_stats))

    def _title(self, text: Text) -> None:
        self.query_one("#trial-title", Static).update(text)

    def _show_metrics(self, detail: TrialDetail) -> None:
        select = self.query_one("#metric", Select)
        names = detail.metric_names
        if names != self._metric_names:  # set_options only when they change: it resets the choice
            self._metric_names = names
            select.set_options([(Text(printable_line(n)), n) for n in names])  # Text: a str prompt is markup
        if detail.metric is not None and select.value != detail.metric.name:
            select.value = detail.metric.name
        self.query_one("#metric-plot", PlotWidget).replot(metric_plot(detail))

    def on_select_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.metric:
            self.metric = event.value
            self.view_changed()

    # -- logs: read in the poller thread from saved offsets, shown literally ---------------------

    def _read_logs(self, _: None) -> LogLines | None:
        lines: dict[str, list[str]] = {}
        for stream, tail in self._tails.items():
            try:
                if new := tail.read():
                    lines.setdefault(stream, []).extend(new)
            except OSError as exc:
                lines.setdefault("stderr", []).append(f"── cannot read the logs: {printable(str(exc))} ──")
        return LogLines(lines) if lines else None

    def on_log_lines(self, message: LogLines) -> None:
        for stream, lines in message.lines.items():
            self.query_one(f"#{stream}", TailLog).write_lines(lines, scroll_end=self.follow)

    def on_tail_log_scrolled_back(self, message: TailLog.ScrolledBack) -> None:
        if self.follow:
            self.action_toggle_follow()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            for log in self.query(TailLog):
                log.scroll_end(animate=False)
        self._show_follow()

    def _show_follow(self) -> None:
        mode = "following (F to stop)" if self.follow else "paused (F to follow)"
        for log in self.query(TailLog):
            log.border_title = f"{log.id}.log · {mode}"

    # -- keys -------------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_next_metric(self) -> None:
        detail = self._detail
        if detail is None or not detail.metric_names:
            return
        names = list(detail.metric_names)
        current = detail.metric.name if detail.metric else names[-1]
        self.metric = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
        self.query_one(TabbedContent).active = "curves"
        self.view_changed()

    def action_back(self) -> None:
        self.post_message(CloseScreen(self))

    def action_stop_trial(self) -> None:
        trial_id, detail = self.trial_id, self._detail
        what = f"trial #{detail.number} ({detail.state})" if detail else f"trial id {trial_id}"
        self.post_message(Confirm(f"Stop {what}?", StopTrial(trial_id)))


def metric_plot(detail: TrialDetail):
    """The chosen metric's plot; the runner's GPU samples (runner.gpu_sampling) are at seconds, not steps."""
    spec = plots.metric_spec(detail.metric)
    if detail.metric is not None and detail.metric.name in GPU_SERIES:
        spec = dataclasses.replace(spec, title=spec.title.replace(" vs step", " vs seconds since start"))
    return spec


def title_text(detail: TrialDetail, study: StudyRow | None) -> Text:
    text = Text(f"{printable_line(study.name) if study else '?'} · trial #{detail.number} · ", style="bold",
                no_wrap=True, overflow="ellipsis")
    notes = [detail.reason] if detail.reason else []
    if detail.feasible == 0:
        notes.append("infeasible")
    state = detail.state + (f" ({', '.join(notes)})" if notes else "")
    if detail.outcome is not None:  # the same words as every other view, "failed to train" included
        state = detail.outcome.long
    text.append(printable_line(state), style=tables.STATE_STYLE["failed"] if detail.outcome is not None
                and detail.outcome.infeasible else tables.STATE_STYLE.get(detail.state, ""))
    if detail.slot:
        text.append(printable_line(f" · {detail.slot}"))
    if where := placement_note(detail.trial_dir):  # a trial on a cluster: which node, which cards
        text.append(printable_line(f" · {where}"))
    return text


def _heading(text: Text, title: str) -> None:
    text.append(f"\n{title}\n", style="bold underline")


def overview_text(detail: TrialDetail, study: StudyRow | None) -> Text:
    """Parameters, command, state and failure, progress and checkpoints, all literal."""
    metric = study.objective_metric if study else "objective"
    text = Text()
    _state_lines(text, detail, metric)
    _heading(text, "parameters (* scientific)")
    for name, value in detail.params.items():
        role = detail.roles.get(name, "fixed")
        text.append(printable_line(f"  {name}{'*' if role == 'scientific' else ''} = {tables.fmt(value)}"))
        text.append(f"  {role}\n", style="dim")
    _heading(text, "command" + (f" (in {printable_line(detail.cwd)})" if detail.cwd else " (planned)"))
    text.append(printable_line(shlex.join(detail.argv)) + "\n")
    _heading(text, "checkpoints" + (f" (★ best {metric})" if detail.best_checkpoint is not None else ""))
    if not detail.checkpoints:
        text.append("  none reported\n", style="dim")
    for c in detail.checkpoints:
        best = c.step == detail.best_checkpoint
        line = f"{'★' if best else ' '} step {c.step:>6}  {metric} {tables.fmt(c.objective)}  {c.path}"
        text.append(printable_line(line) + "\n", style="bold" if best else "")
    return text


def _state_lines(text: Text, detail: TrialDetail, metric: str) -> None:
    best = (f"best {metric} {tables.fmt(detail.best_value)} at step {detail.best_step}"
            if detail.best_value is not None else f"no {metric} yet")
    facts = [best, f"last step {tables.fmt(detail.last_step)}"]
    if detail.exit_code is not None:
        facts.append(f"exit code {detail.exit_code}")
    if detail.started_at and detail.ended_at:
        facts.append(f"ran {detail.ended_at - detail.started_at:.1f} s")
    if detail.host:
        facts.append(f"host {detail.host}" + (f" pid {detail.pid}" if detail.pid else ""))
    text.append(printable_line(" · ".join(facts)) + "\n")
    if detail.bad_lines:
        text.append(f"{detail.bad_lines} metric line(s) dropped", style="yellow")
        text.append(printable_line(f"; the first: {detail.bad_line_sample or '?'}") + "\n", style="dim")
    if detail.out_of_order:
        text.append(printable_line(out_of_order_note(detail.out_of_order, detail.out_of_order_sample)) + "\n",
                    style="yellow")
    if detail.detail:
        _heading(text, "why it waits" if detail.state == "queued" else f"why it ended ({detail.reason or detail.state})")
        text.append(printable(detail.detail.rstrip()) + "\n", style="red" if detail.state == "failed" else "")
    if detail.capture_notes:
        _heading(text, "printed-line capture")
        for note in detail.capture_notes:
            text.append(printable(f"  {note}") + "\n", style="yellow")
