"""What every screen shares: the runner status line, and being fed snapshots."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

from runner.text import printable
from tui.snapshot import Snapshot, View

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
    """A screen the app refreshes with each new snapshot.

    Each screen says what it looks at (view()); when it becomes current (pushed,
    or uncovered by a pop) the app's poller is pointed at that.
    """

    app: PlaybookApp

    def view(self) -> View:
        return View()

    def show(self, snap: Snapshot) -> None:
        raise NotImplementedError

    def on_unmount(self) -> None:
        # A closed screen is a web of cycles (widgets and their parents) that only a full
        # collection frees; left to the collector's own timing it ran in the middle of
        # the next study's opening (~80 ms with a 1,000-trial study's cells). Now, just
        # after the screen below is painted, while the user reads it.
        self.app.call_after_refresh(gc.collect)

    def on_screen_resume(self) -> None:
        self.app.set_view(self.view())
        if self.app.snapshot is not None:
            self.show(self.app.snapshot)
