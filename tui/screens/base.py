"""What every screen shares: the runner status line, and being fed snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

from runner.text import printable
from tui.data.view import View
from tui.messages import ViewChanged

if TYPE_CHECKING:
    from tui.data.snapshot import Snapshot


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
    """A screen the app refreshes with each new snapshot.

    Each screen says what it looks at (view()); when it becomes current (pushed,
    or uncovered by a pop) it tells the app (ViewChanged), which points its poller
    at that and hands it the latest snapshot. The screen keeps the last snapshot it
    was given (self.snapshot) for what its keys do between two snapshots.
    """

    snapshot: Snapshot | None = None

    def view(self) -> View:
        return View()

    def update_snapshot(self, snap: Snapshot) -> None:
        """From the app: a fresh snapshot while this screen is the one shown."""
        self.snapshot = snap
        self.show(snap)

    def show(self, snap: Snapshot) -> None:
        raise NotImplementedError

    def view_changed(self) -> None:
        """Tell the app this screen now looks at something else (the poller reads it)."""
        self.post_message(ViewChanged(self.view()))

    def on_screen_resume(self) -> None:
        self.post_message(ViewChanged(self.view(), catch_up=True))
