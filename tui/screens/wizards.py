"""The guided wizards: the list of stored ones, a dialog to start one, and one wizard step by step.

The screens hold no playbook logic: a WizardReader (tui.data.wizard_data) reads and
advances the wizard in a thread worker and posts what to show; keys answer the
wizard's questions (run a stage, skip an optional one, say how complex a change is).
"""

from __future__ import annotations

import shlex
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Header, Input, Static

from runner.text import printable
from runner.wizards.options import USAGE, proposal
from tui.data.polling import Poller
from tui.data.wizard_data import WizardReader, WizardRow, WizardView
from tui.messages import OpenStudy, PushScreen
from tui.widgets.footer import KeyFooter
from tui.widgets.plot import PlotWidget

REFRESH_S = 1.0
MARKS = {"done": "✓", "current": "▶", "later": "·", "skipped": "–"}
class WizardsChanged(Message):
    def __init__(self, rows: tuple[WizardRow, ...]):
        super().__init__()
        self.rows = rows


class WizardsScreen(Screen):
    """Every stored wizard; b / w / d / l start a new one."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open", priority=True),
        Binding("b", "new('probe-batch')", "Batch-size probe"),
        Binding("w", "new('warmup')", "Warmup sweep"),
        Binding("d", "new('decide')", "Adopt or not"),
        Binding("l", "new('length')", "Training length"),
    ]

    def __init__(self, db_path: Path, study_names: tuple[str, ...] = ()):
        super().__init__()
        self.db_path = db_path
        self.study_names = study_names  # what the start dialog proposes

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("Guided wizards: the playbook's hard calls. b batch-size probe · w warmup · "
                          "d adopt-or-not · l training length · enter opens one"), id="wiz-help")
        yield DataTable(id="wizards", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in (("name", 32), ("kind", 11), ("from study", 18), ("stage", 12), ("verdict", 48)):
            table.add_column(label, width=width)
        self._rows: tuple[WizardRow, ...] = ()

        self._poller = Poller(lambda reader: WizardsChanged(reader.rows()), self.post_message, 2.0,
                              name="wizards", setup=partial(WizardReader, self.db_path),
                              teardown=WizardReader.close).start()

    def on_unmount(self) -> None:
        self._poller.stop()

    def on_screen_resume(self) -> None:
        self._poller.wake()  # back from a wizard: show where it got to now, not at the next tick

    def on_wizards_changed(self, message: WizardsChanged) -> None:
        if message.rows == self._rows:
            return
        self._rows = message.rows
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for r in message.rows:
            table.add_row(*(Text(printable(str(v))) for v in (r.name, r.kind, r.base_study, r.stage,
                                                               r.verdict or "—")), key=str(r.id))
        if message.rows:
            table.move_cursor(row=min(cursor, len(message.rows) - 1))

    def action_open(self) -> None:
        if self._rows:
            row = self._rows[self.query_one(DataTable).cursor_row]
            self.post_message(PushScreen(WizardScreen(row.id, self.db_path)))

    def action_new(self, kind: str) -> None:
        self.post_message(PushScreen(StartWizardScreen(kind, proposal(kind, list(self.study_names)), self.db_path),
                                     self._started))

    def _started(self, wizard_id: int | None) -> None:
        if wizard_id is not None:
            self.post_message(PushScreen(WizardScreen(wizard_id, self.db_path)))

    def action_back(self) -> None:
        self.dismiss()


class WizardStarted(Message):
    """From the start dialog's worker: the new wizard's id, or why it could not start."""

    def __init__(self, wizard_id: int | None, error: str = ""):
        super().__init__()
        self.wizard_id, self.error = wizard_id, error


class StartWizardScreen(ModalScreen[int | None]):
    """One line of options, the same as the headless command's; dismisses with the wizard's id."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, kind: str, proposal: str, db_path: Path):
        super().__init__()
        self.kind, self.proposal, self.db_path = kind, proposal, db_path

    def compose(self) -> ComposeResult:
        with Vertical(id="add-dialog"):
            yield Static(Text(f"Start a {self.kind} wizard", style="bold"))
            yield Static(Text(f"Options, as for playbook-runner {self.kind}: {USAGE[self.kind]}. "
                              "The same name resumes a stored wizard."), id="add-help")
            yield Input(self.proposal, id="wiz-args")
            yield Static(id="add-error")
            yield Static(Text("enter plans it (nothing runs before you confirm) · esc cancels"), id="add-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._start(event.value)

    @work(thread=True, exclusive=True, group="wizard-start")
    def _start(self, text: str) -> None:
        reader = WizardReader(self.db_path)
        try:
            wizard_id = reader.start(self.kind, shlex.split(text))
        except Exception as exc:  # a bad option is shown in the dialog, never a crash
            self.post_message(WizardStarted(None, f"{type(exc).__name__}: {exc}"))
            return
        finally:
            reader.close()
        self.post_message(WizardStarted(wizard_id))

    def on_wizard_started(self, message: WizardStarted) -> None:
        if message.wizard_id is not None:
            self.dismiss(message.wizard_id)
        else:
            self.query_one("#add-error", Static).update(Text(printable(message.error)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class WizardChanged(Message):
    def __init__(self, view: WizardView | None, error: str | None = None):
        super().__init__()
        self.view, self.error = view, error


class WizardScreen(Screen):
    """One wizard: its stages, what the current one runs, live trials and curves, the verdict."""

    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back (the wizard and its trials go on)"),
        Binding("enter", "answer(0)", "Run / confirm", priority=True),
        Binding("s", "skip", "Skip stage", tooltip="Skip an optional stage"),
        Binding("1", "answer(0)", "none", show=False),
        Binding("2", "answer(1)", "some", show=False),
        Binding("3", "answer(2)", "a lot", show=False),
        Binding("o", "open_study", "Open stage study", tooltip="Open the current stage's trials as a study"),
    ]

    def __init__(self, wizard_id: int, db_path: Path):
        super().__init__()
        self.wizard_id, self.db_path = wizard_id, db_path
        self.current: WizardView | None = None
        self._answers: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="wiz-body"):
            yield Static(id="wiz-title")
            yield Static(id="wiz-stages")
            yield Static(id="wiz-plan")
            yield DataTable(id="wiz-trials", cursor_type="row", zebra_stripes=True)
            yield PlotWidget(id="wiz-plot")
            yield Static(id="wiz-report")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#wiz-trials", DataTable)
        for label, width in (("study", 30), ("#", 3), ("value", 22), ("state", 9), ("steps", 9),
                             ("best", 9), ("detail", 30)):
            table.add_column(label, width=width)
        self.query_one("#wiz-title", Static).update(Text("reading the wizard…"))
        self._poller = Poller(self._read, self.post_message, REFRESH_S, name="wizard",
                              setup=partial(WizardReader, self.db_path), teardown=WizardReader.close).start()

    def on_unmount(self) -> None:
        self._poller.stop()

    def _read(self, reader: WizardReader) -> WizardChanged:
        while self._answers:
            key, value = self._answers.pop(0)
            reader.answer(self.wizard_id, key, value)
        try:
            return WizardChanged(reader.read(self.wizard_id))
        except Exception as exc:  # a wizard that cannot go on says why on screen
            return WizardChanged(None, f"{type(exc).__name__}: {exc}")

    @on(WizardChanged)
    def _show(self, message: WizardChanged) -> None:
        if message.view is None:
            self.query_one("#wiz-plan", Static).update(Text(printable(message.error or ""), style="bold red"))
            return
        v = self.current = message.view
        w = v.wizard
        self.query_one("#wiz-title", Static).update(Text(printable(
            f"{w.name} · {w.kind} · from study {w.base_study} · {w.verdict or w.stage}"), style="bold"))
        self.query_one("#wiz-stages", Static).update(Text("\n".join(printable(
            f"{MARKS[s.mark]} {s.name}: {s.title}" + (f" — {s.summary}" if s.summary else ""))
            for s in v.stages)))
        self.query_one("#wiz-plan", Static).update(self._plan_text(v))
        self._fill_trials(v)
        self.query_one("#wiz-plot", PlotWidget).replot(v.plot)
        self.query_one("#wiz-report", Static).update(
            Text("\n".join(printable(x) for x in v.report), no_wrap=True, overflow="crop"))

    def _plan_text(self, v: WizardView) -> Text:
        lines = [printable(x) for x in v.plan]
        if v.question is not None:
            q = v.question
            if q.key.startswith("confirm:"):
                keys = "enter runs it" + (" · s skips it" if "skip" in q.choices else "")
            else:
                keys = " · ".join(f"{i + 1}: {c}" for i, c in enumerate(q.choices))
            lines.append(f"{q.text}  [{keys}]")
        elif v.running:
            lines.append(f"running: {', '.join(v.running)} (esc leaves it running; o opens the trials)")
        return Text("\n".join(lines))

    def _fill_trials(self, v: WizardView) -> None:
        table = self.query_one("#wiz-trials", DataTable)
        table.clear()
        for t in v.trials:
            best = "—" if t.best is None else f"{t.best:.4g}"
            table.add_row(*(Text(printable(str(x))) for x in (t.study, t.number, t.label, t.state, t.steps,
                                                                 best, t.detail)))

    def action_answer(self, index: int) -> None:
        q = self.current.question if self.current else None
        if q is None or index >= len(q.choices) or (q.key.startswith("confirm:") and index > 0):
            return
        self._answers.append((q.key, q.choices[index]))
        self._poller.wake()
        self.notify(f"{q.choices[index]}: {printable(q.text)}", markup=False, timeout=3)

    def action_skip(self) -> None:
        q = self.current.question if self.current else None
        if q is not None and "skip" in q.choices:
            self._answers.append((q.key, "skip"))
            self._poller.wake()

    def action_open_study(self) -> None:
        if self.current and self.current.study_ids:
            self.post_message(OpenStudy(self.current.study_ids[0]))

    def action_back(self) -> None:
        self.dismiss()
