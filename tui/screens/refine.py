"""Refine a study from the TUI (#14): the playbook's refine step as a dialog.

A worker thread reads the study's checklist: a boundary finding refuses (f refines anyway), a
sampling finding warns. Otherwise the narrowed Bayesian-optimization study is written beside the
old file (never over an existing one) and registered, linked by `refines`; l launches it.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from runner.text import printable


class Refined(Message):
    def __init__(self, outcome):
        super().__init__()
        self.outcome = outcome  # tui.data.study_files.RefineOutcome


class RefineScreen(ModalScreen[int | None]):
    """Returns the new study's id when the user launches it (l), else None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("l", "launch", "Launch", tooltip="Launch the refined study"),
        Binding("f", "force", "Refine anyway", tooltip="Write the refined study despite the boundary finding"),
    ]
    DEFAULT_CSS = """
    RefineScreen { align: center middle; }
    #refine-dialog {
        width: 90%; max-width: 120; height: auto; max-height: 90%;
        padding: 0 1; border: thick $primary; background: $surface;
    }
    #refine-scroll { height: auto; max-height: 30; }
    #refine-hint { color: $text-muted; }
    """

    def __init__(self, db_path: Path, study_id: int, label: str):
        super().__init__()
        self.db_path = db_path
        self.study_id = study_id
        self.label = label
        self.outcome = None  # the last RefineOutcome

    def compose(self) -> ComposeResult:
        with Vertical(id="refine-dialog"):
            yield Static(Text(f"Refine {printable(self.label)}", style="bold"), id="refine-title")
            with VerticalScroll(id="refine-scroll"):
                yield Static(Text("reading the checklist…", style="dim"), id="refine-body")
            yield Static(id="refine-hint")

    def on_mount(self) -> None:
        self._refine(False)

    @work(thread=True, exclusive=True, group="refine", exit_on_error=False)
    def _refine(self, force: bool) -> None:
        from tui.data.study_files import RefineOutcome, refine_and_register

        try:
            outcome = refine_and_register(self.db_path, self.study_id, force)
        except Exception as exc:  # the dialog says what went wrong; the app goes on
            outcome = RefineOutcome(self.label, error=f"{type(exc).__name__}: {exc}")
        self.post_message(Refined(outcome))

    def on_refined(self, message: Refined) -> None:
        self.outcome = o = message.outcome
        body = Text()
        if o.error:
            body.append(f"error: {printable(o.error)}\n", style="bold red")
        for line in o.findings:
            body.append(printable(line) + "\n")
        if o.refused:
            body.append(f"\nrefused: {printable(o.refused)}\n", style="bold red")
        for warning in o.warnings:
            body.append(f"warning: {printable(warning)}\n", style="yellow")
        if o.ranges:
            body.append("\nnarrowed to where the good trials lie:\n")
            for line in o.ranges:
                body.append(f"  {printable(line)}\n")
        if o.output is not None:
            body.append(f"\nwrote {printable(str(o.output))}\n", style="bold")
        if o.registered is not None:
            style = "bold red" if o.registered.severity == "error" else "green"
            body.append(printable(o.registered.text) + "\n", style=style)
        self.query_one("#refine-body", Static).update(body)
        keys = ["l launches it"] if o.new_study_id is not None else []
        keys += ["f refines anyway"] if o.refused else []
        self.query_one("#refine-hint", Static).update(Text(" · ".join([*keys, "esc closes"])))

    def action_force(self) -> None:
        if self.outcome is not None and self.outcome.refused:
            self.query_one("#refine-body", Static).update(Text("refining anyway…", style="dim"))
            self._refine(True)

    def action_launch(self) -> None:
        if self.outcome is not None and self.outcome.new_study_id is not None:
            self.dismiss(self.outcome.new_study_id)
        else:
            self.notify("nothing to launch: no refined study was registered", severity="warning")

    def action_close(self) -> None:
        self.dismiss(None)
