"""Help (`?` or F1): the keys of the screen below, one line each, generated from its BINDINGS
and the app's; and a yes/no confirmation for the keys that stop things."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from runner.text import printable
from tui.widgets.keys import KeyHelp

# The one navigation rule, said once in every help.
RULE = "enter opens · esc goes back · q quits from any screen · ctrl+p: any action"


def keys_text(entries: list[KeyHelp]) -> Text:
    """One line a key: the key, its footer word, and what it does (cut, not wrapped, at the edge)."""
    key_width = max((len(e.keys) for e in entries), default=1)
    word_width = max((len(e.description) for e in entries), default=1)
    text = Text(no_wrap=True, overflow="ellipsis")
    for entry in entries:
        if text:
            text.append("\n")
        text.append(f"{entry.keys:>{key_width}}  ", style="bold")
        text.append(f"{entry.description:<{word_width}}  ")
        if entry.help != entry.description:
            text.append(entry.help, style="dim")
    return text


def screen_title(screen: Screen) -> str:
    return getattr(screen, "HELP_TITLE", type(screen).__name__.removesuffix("Screen").lower())


class HelpScreen(ModalScreen[None]):
    """The keys of `below` (the screen that was current when help was asked for), with the app's:
    `keys` is tui.widgets.keys.screen_keys(below, app), given by the app."""

    BINDINGS = [Binding("escape,question_mark,f1", "close", "Close help")]

    def __init__(self, below: Screen, keys: list[KeyHelp]):
        super().__init__()
        self.below, self.keys = below, keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog") as dialog:
            dialog.border_title = f"Keys of the {screen_title(self.below)} screen"
            with VerticalScroll(id="help-keys"):
                yield Static(keys_text(self.keys), id="help-lines")
            yield Static(Text(RULE, style="dim"), id="help-rule")

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Ask once before a key that stops something: y or enter goes on, n or escape does not."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", priority=True),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(Text(printable(self.question), style="bold"), id="confirm-question")
            yield Static(Text("y or enter: yes · n or escape: no"), id="confirm-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
