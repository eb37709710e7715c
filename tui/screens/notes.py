"""Editing a study's notes in place: a small dialog that returns the new text, or None."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from runner.text import printable


class NotesScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save notes"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, study_name: str, notes: str):
        super().__init__()
        self.study_name = study_name
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(id="notes-dialog"):
            yield Static(Text(f"Notes of {printable(self.study_name)}", style="bold"), id="notes-title")
            yield TextArea(self.notes, id="notes-text", soft_wrap=True)
            yield Static(Text("ctrl+s save · esc cancel"), id="notes-hint")

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)
