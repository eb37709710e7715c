"""What the UI is looking at (View), in a module of its own: the app and every screen need it from
the first frame, before the store and the playbook's analyses (tui.data.snapshot) are imported."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    """What the UI is looking at, so the poller reads only that."""

    study_id: int | None = None
    trial_id: int | None = None  # highlighted on the study screen; the open one on the trial screen
    overlay: tuple[int, ...] = ()  # marked trials whose curves the study plot overlays too
    detail: bool = False  # the trial screen is open: read trial_id in full
    metric: str | None = None  # the trial screen's chosen metric (None: the objective)
    checklist: bool = False  # the study screen shows the checklist or its plots (tui.data.checklist)
