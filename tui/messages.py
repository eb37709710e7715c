"""What screens ask of the app, as Textual messages: a screen posts one (`self.post_message(...)`),
it bubbles from the screen to the app, and the app's `on_...` handler acts (tui.app.PlaybookApp).

The rule (tests/tui/test_layering.py keeps it): screens and widgets never reach into the app
(`self.app.`). What they show is given to them at construction or pushed to them by the app
(SnapshotScreen.update_snapshot, StudyScreen.show_checklist); what they want done is a message;
a screen closes itself with `self.dismiss()`. Textual's post_message is thread-safe, so a screen's
thread worker posts its result as a message too (no call_from_thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.screen import Screen

from tui.data.view import View


class OpenStudy(Message):
    def __init__(self, study_id: int):
        super().__init__()
        self.study_id = study_id


class OpenTrial(Message):
    def __init__(self, study_id: int, trial_id: int, trial_dir: str):
        super().__init__()
        self.study_id, self.trial_id, self.trial_dir = study_id, trial_id, trial_dir


class PushScreen(Message):
    """Show `screen` on top; `callback` gets what it dismisses with (Textual's push_screen)."""

    def __init__(self, screen: Screen[Any], callback: Callable[[Any], None] | None = None):
        super().__init__()
        self.screen, self.callback = screen, callback


class CloseScreen(Message):
    """Close `screen`, the current one (esc). Not Screen.dismiss() for the snapshot screens: the
    awaitable it returns keeps the screen's context alive past its removal, and with it the screen."""

    def __init__(self, screen: Screen[Any]):
        super().__init__()
        self.screen = screen


class ViewChanged(Message):
    """The current screen looks at something else: the poller reads that from now on.
    `catch_up`: the screen was just uncovered and wants the latest snapshot now."""

    def __init__(self, view: View, catch_up: bool = False):
        super().__init__()
        self.view, self.catch_up = view, catch_up


# -- actions: the app runs each in a worker thread and reports it as a notification -----------


class RegisterSample(Message):
    """Register the bundled sample study."""


class LaunchStudy(Message):
    def __init__(self, study_id: int):
        super().__init__()
        self.study_id = study_id


class StopStudy(Message):
    def __init__(self, study_id: int):
        super().__init__()
        self.study_id = study_id


class StopTrial(Message):
    def __init__(self, trial_id: int):
        super().__init__()
        self.trial_id = trial_id


class RequeueTrial(Message):
    def __init__(self, trial_id: int):
        super().__init__()
        self.trial_id = trial_id


class AddTrials(Message):
    def __init__(self, study_id: int, samples: int):
        super().__init__()
        self.study_id, self.samples = study_id, samples


class SetNotes(Message):
    def __init__(self, study_id: int, notes: str):
        super().__init__()
        self.study_id, self.notes = study_id, notes


class Confirm(Message):
    """Ask `question` once in a modal; only on yes does the app act on `then` (another message
    of this module). Callers capture what they act on before asking, so rows that move under
    the cursor meanwhile change nothing."""

    def __init__(self, question: str, then: Message):
        super().__init__()
        self.question, self.then = question, then


# -- study files (the studies screen; the study screen's R goes through the app's refine_study) ----


class OpenStudyFile(Message):
    """Ask for a study file's path, then register it (a new study, or its name's next version)."""


class RefineStudy(Message):
    """Refine a study into a Bayesian-optimization study beside its file (#14)."""

    def __init__(self, study_id: int, label: str):
        super().__init__()
        self.study_id, self.label = study_id, label


class CompareStudies(Message):
    """Two studies (or two versions of one) side by side."""

    def __init__(self, first_id: int, second_id: int):
        super().__init__()
        self.first_id, self.second_id = first_id, second_id
