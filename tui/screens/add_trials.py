"""Asking how many more quasi-random samples to add to a study: a small dialog that returns a count, or None."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from runner.text import printable

DEFAULT_SAMPLES = 4
MAX_SAMPLES = 1000  # a slip of the finger (4000 for 40) would queue thousands of trials


def parse_samples(text: str) -> tuple[int | None, str | None]:
    """(count, None) for a whole number in 1..MAX_SAMPLES, else (None, why not)."""
    text = text.strip()
    try:
        count = int(text)
    except ValueError:
        return None, f"{printable(text)!r} is not a whole number: enter how many samples, e.g. {DEFAULT_SAMPLES}"
    if count < 1:
        return None, "enter 1 or more samples"
    if count > MAX_SAMPLES:
        return None, f"at most {MAX_SAMPLES} samples at a time"
    return count, None


class AddTrialsScreen(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, study_name: str):
        super().__init__()
        self.study_name = study_name

    def compose(self) -> ComposeResult:
        with Vertical(id="add-dialog"):
            yield Static(Text(f"Add trials to {printable(self.study_name)}", style="bold"))
            yield Static(Text("How many more quasi-random samples of the nuisance parameters? "
                              "Each one runs once per scientific value; the sequence continues "
                              "where the study stopped."), id="add-help")
            yield Input(str(DEFAULT_SAMPLES), id="add-count")  # selected on focus: typing replaces it
            yield Static(id="add-error")
            yield Static(Text("enter queues them · esc cancels"), id="add-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#add-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        count, error = parse_samples(event.value)
        if error is not None:
            self.query_one("#add-error", Static).update(Text(error))
            return
        self.dismiss(count)

    def action_cancel(self) -> None:
        self.dismiss(None)
