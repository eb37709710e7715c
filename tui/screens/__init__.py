"""The screens: every study, one study, one trial (tui.screens.trial), the notes dialog (tui.screens.notes).

Screens never read the store: the app hands them Snapshots (see tui.data.snapshot),
and they post messages (tui.messages) for the app's actions, which run in worker threads.
Each screen's module is imported when the screen is first needed (the names below load on
first use): only the studies screen is in the first frame.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.screens.base import RunnerStatus, SnapshotScreen
    from tui.screens.studies import StudiesScreen
    from tui.screens.study import StudyScreen

_MODULES = {"RunnerStatus": "base", "SnapshotScreen": "base", "StudiesScreen": "studies", "StudyScreen": "study"}
__all__ = ["RunnerStatus", "SnapshotScreen", "StudiesScreen", "StudyScreen"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
