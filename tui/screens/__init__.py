"""The screens: every study, one study, one trial (tui.screens.trial), the notes dialog (tui.screens.notes).

Screens never read the store: the app hands them Snapshots (see tui.data.snapshot),
and they post messages (tui.messages) for the app's actions, which run in worker threads. The trial screen
and the notes dialog are imported when first opened: their widgets (tabs, logs,
the text editor) would otherwise delay the first frame.
"""

from tui.screens.base import RunnerStatus, SnapshotScreen
from tui.screens.studies import StudiesScreen
from tui.screens.study import StudyScreen

__all__ = ["RunnerStatus", "SnapshotScreen", "StudiesScreen", "StudyScreen"]
