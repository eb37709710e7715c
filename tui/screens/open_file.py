"""Open a study file from the TUI: a path prompt that completes over the filesystem.

The file is checked in a worker thread (parsed and planned, nothing stored); a bad one shows its
problems here and the dialog stays open. A good one dismisses the dialog with (path, launch):
the app registers it (a new study, or its name's next version) and launches it if asked.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Checkbox, Input, Static

from runner.text import printable

STUDY_SUFFIX = ".toml"


def path_completions(typed: str, base: Path) -> list[str]:
    """What `typed` may continue to: folders (with a trailing /) and *.toml files that start with
    it, in name order; hidden entries only when the typed name starts with a dot."""
    folder_text, _, prefix = typed.rpartition("/")
    folder = Path(os.path.expanduser(folder_text + "/" if folder_text or typed.startswith("/") else "."))
    if not folder.is_absolute():
        folder = base / folder
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir or entry.name.endswith(STUDY_SUFFIX):
            head = typed[: len(typed) - len(prefix)]
            out.append(head + entry.name + ("/" if is_dir else ""))
    return out


class StudyPathSuggester(Suggester):
    """Completes a typed path to the first folder or study file it may continue to."""

    def __init__(self, base: Path):
        super().__init__(use_cache=False, case_sensitive=True)  # the filesystem changes: no cache
        self.base = base

    async def get_suggestion(self, value: str) -> str | None:
        # Listed in a thread: a slow (network) folder must not stall the event loop.
        found = await asyncio.to_thread(path_completions, value, self.base)
        return found[0] if found else None


class FileChecked(Message):
    """The worker's verdict on the chosen file (None: it validates)."""

    def __init__(self, path: Path, problem: str | None):
        super().__init__()
        self.path = path
        self.problem = problem


class OpenFileScreen(ModalScreen[tuple[Path, bool] | None]):
    """Returns (the study file, launch it) once the file validates; None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("tab", "complete", "Complete", tooltip="Take the suggested completion of the path"),
    ]
    DEFAULT_CSS = """
    OpenFileScreen { align: center middle; }
    #open-dialog {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        padding: 0 1; border: thick $primary; background: $surface;
    }
    #open-problem { color: $error; height: auto; max-height: 12; }
    #open-hint { color: $text-muted; }
    """

    def __init__(self, base: Path):
        super().__init__()
        self.base = base  # relative paths are taken from here (the TUI's working folder)

    def compose(self) -> ComposeResult:
        with Vertical(id="open-dialog"):
            yield Static(Text("Open a study file: register it (a changed file under a registered name is its "
                              "next version)", style="bold"), id="open-title")
            yield Input(placeholder="path/to/study.toml", suggester=StudyPathSuggester(self.base), id="open-path")
            yield Checkbox("launch it once registered", id="open-launch")
            yield Static(id="open-problem")
            yield Static(Text(f"from {printable(str(self.base))} · tab or → completes · enter opens · "
                              "esc cancels"), id="open-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def action_complete(self) -> None:
        field = self.query_one(Input)
        if field.has_focus:
            field.cursor_position = len(field.value)
            field.action_cursor_right()  # at the end: takes the suggestion
        else:
            self.focus_next()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        typed = event.value.strip()
        if not typed:
            self._show_problem("type the path of a study file (*.toml)")
            return
        path = Path(os.path.expanduser(typed))
        self._show_problem("checking…", style="dim")
        self._check((path if path.is_absolute() else self.base / path).resolve())

    @work(thread=True, exclusive=True, group="check-file", exit_on_error=False)
    def _check(self, path: Path) -> None:
        from tui.data.study_files import check_study_file

        try:
            problem = check_study_file(path)
        except Exception as exc:  # a file that breaks the checker is reported, not a crash
            problem = f"{path}: {type(exc).__name__}: {exc}"
        self.post_message(FileChecked(path, problem))

    def on_file_checked(self, message: FileChecked) -> None:
        if message.problem is not None:
            self._show_problem(message.problem)
            return
        self.dismiss((message.path, self.query_one(Checkbox).value))

    def _show_problem(self, text: str, style: str = "") -> None:
        self.query_one("#open-problem", Static).update(Text(printable(text), style=style))
