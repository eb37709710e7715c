"""playbook-tui: the app, its store poller, and the entry point (`playbook-tui --help` is the user's text).

The event loop never waits on SQLite or on the runner: a thread (tui.data.polling) polls
the store (skipping work when PRAGMA data_version says nothing changed) and
posts Snapshots; a second one computes the playbook's checklist while the study
screen shows it (tui.data.checklist); the keys' actions run in thread workers too.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sqlite3
import sys
import weakref
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from runner.text import printable
from tui.data.polling import Poller
from tui.data.view import View
from tui.messages import (
    AddTrials,
    CloseScreen,
    CompareStudies,
    Confirm,
    LaunchStudy,
    OpenStudy,
    OpenStudyFile,
    OpenTrial,
    PushScreen,
    RefineStudy,
    RegisterSample,
    RequeueTrial,
    SetNotes,
    StopStudy,
    StopTrial,
    ViewChanged,
)
from tui.screens.base import SnapshotScreen
from tui.screens.studies import StudiesScreen
from tui.wire import crop_partial_updates

if TYPE_CHECKING:
    from tui.data.actions import Actions, Note
    from tui.data.checklist import ChecklistReader, ChecklistResult
    from tui.data.snapshot import Snapshot, StorePoller

# The first frame imports only Textual and the studies screen: the store, the playbook's
# analyses and the other screens load in the poller threads or when first needed
# (bench/tui_bench.py: first frame against `import textual`).

COLLECT_TRIES, COLLECT_RETRY_S = 8, 0.05  # collections while a closed screen lingers: waits double, ~6 s in all
POLL_S = 0.75  # sets the report-to-screen delay; a poll with no change costs one PRAGMA
# The repository root is tui/..; from this file rather than tui.__file__, which is None
# while an editable install made before tui/__init__.py existed maps tui as a namespace.
SAMPLE_STUDY = Path(__file__).resolve().parents[1] / "sample_studies" / "digits" / "study.toml"


class StoreChanged(Message):
    """A fresh snapshot from the poller thread."""

    def __init__(self, snapshot: Snapshot):
        super().__init__()
        self.snapshot = snapshot


class StoreFailed(Message):
    """The poller could not read the store (locked, corrupt, gone); it keeps trying."""

    def __init__(self, error: str):
        super().__init__()
        self.error = error


class StartupDone(Message):
    """The poller thread has imported what the other screens need: startup is over."""


class ChecklistReady(Message):
    """A freshly computed checklist, from the checklist thread."""

    def __init__(self, result: ChecklistResult):
        super().__init__()
        self.result = result


class PlaybookApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "playbook-tui"
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", tooltip="The keys of this screen, one a line"),
        Binding("W", "wizards", "Wizards", tooltip="The guided wizards: batch-size probe, "
                "warmup sweep, adopt-or-not"),
        Binding("q", "quit", "Quit", tooltip="Quit playbook-tui (a runner it started goes on)"),
    ]

    def __init__(self, db_path: Path, sample_study: Path = SAMPLE_STUDY, db_source: str = "--db"):
        super().__init__()
        crop_partial_updates()  # a changed cell sends that cell to the terminal, not its whole line
        self.db_path = Path(db_path)
        self.sample_study = Path(sample_study)
        self.sub_title = f"{self.db_path} ({db_source})"  # which database, and why this one
        self.snapshot: Snapshot | None = None
        self.checklist: ChecklistResult | None = None  # the last one computed, of any study
        self.view = View()  # read by the poller thread; replaced, never mutated
        self._actions: Actions | None = None  # made in the first action's thread (see _act)
        self._store_poller = Poller(
            self._read_store, lambda snap: self.post_message(StoreChanged(snap)), POLL_S, name="store poller",
            setup=partial(open_store_poller, self.db_path), teardown=close, fail=self._poller_failed)
        # Its own thread: a checklist may take seconds, the store poller must not.
        self._checklist_poller = Poller(
            lambda reader: reader.poll(self.view),  # None unless the screen wants it and it is due
            lambda result: self.post_message(ChecklistReady(result)), POLL_S, name="checklist",
            setup=partial(open_checklist_reader, self.db_path), teardown=close,
            fail=self._poller_failed)
        self._freeze_pending = False  # startup is over, gc.freeze() waits for the studies list alone
        self._collecting = 0  # collections of closed screens in progress (see _collect_after)
        self._screens_to_collect: list[tuple[AwaitComplete, weakref.ref[Screen]]] = []  # see pop_screen

    def get_default_screen(self) -> Screen:
        return StudiesScreen(self.db_path, self.sample_study)

    def on_mount(self) -> None:
        # After the first frame: their imports (the store, the analyses) hold the GIL for long
        # stretches and would delay it.
        self.call_after_refresh(self._start_pollers)

    def _start_pollers(self) -> None:
        self._store_poller.start()
        self._checklist_poller.start()

    def on_unmount(self) -> None:
        self._store_poller.stop()
        self._checklist_poller.stop()

    # -- the poller (a thread) and its messages --------------------------------

    def _read_store(self, poller: StorePoller) -> Snapshot | None:
        """One poll, in the store poller's thread: a snapshot when anything changed."""
        from store import StoreError  # loaded by now (open_store_poller): a dict lookup

        try:
            snap = poller.poll(self.view)
        except (StoreError, sqlite3.Error) as exc:
            poller.forget()  # so the next good read is posted and clears the error
            self.post_message(StoreFailed(str(exc)))
            return None
        # After the first snapshot is posted (the import takes about a second);
        # once loaded, poll again at once to say whether a runner is alive.
        if poller.load_probe():
            self._store_poller.wake()
        elif snap is None and poller.warm_up():  # nothing changed: an idle moment for imports
            import tui.screens.study  # noqa: F401 (and its widgets)

            self.post_message(StartupDone())
        return snap

    def _poller_failed(self, exc: Exception) -> None:
        """A read failed in a way it did not expect: said once a failure, and polling goes on."""
        self.post_message(StoreFailed(f"{type(exc).__name__}: {printable(str(exc))}"))

    def on_startup_done(self, message: StartupDone) -> None:
        self._freeze_pending = True
        self._freeze_startup()

    def _freeze_startup(self) -> None:
        # Startup is over: move what it made (modules, the app's widgets) out of the
        # collector's sight. A full collection otherwise walks all of it, 100-200 ms,
        # and opening a big study makes enough objects to set one off. Only while the
        # studies list is alone on the stack and no closed screen awaits its collection:
        # a frozen study screen would never be freed.
        if self._freeze_pending and len(self.screen_stack) == 1 and not self._collecting:
            gc.freeze()
            self._freeze_pending = False

    def on_store_changed(self, message: StoreChanged) -> None:
        self._show(message.snapshot)

    def on_store_failed(self, message: StoreFailed) -> None:
        from tui.data.snapshot import Snapshot  # loaded by the poller that failed

        base = self.snapshot or Snapshot(runner=None, runner_checked=False, studies=(), view=self.view)
        self._show(dataclasses.replace(base, error=message.error))

    def _show(self, snap: Snapshot) -> None:
        self.snapshot = snap
        # Only the visible screen (or the one under a modal, e.g. the command palette) is fed:
        # a covered screen catches up when it is uncovered (ViewChanged with catch_up).
        for screen in reversed(self.screen_stack):
            if isinstance(screen, SnapshotScreen) and screen.is_mounted:
                screen.update_snapshot(snap)
                break

    def set_view(self, view: View) -> None:
        if view != self.view:
            self.view = view
            self._store_poller.wake()
            self._checklist_poller.wake()

    def on_checklist_ready(self, message: ChecklistReady) -> None:
        from tui.screens.study import StudyScreen  # open: it asked for the checklist

        self.checklist = message.result
        for screen in self.screen_stack:
            if isinstance(screen, StudyScreen) and screen.is_mounted:
                screen.show_checklist(message.result)

    # -- what the screens ask for (tui.messages) --------------------------------------

    def on_view_changed(self, message: ViewChanged) -> None:
        self.set_view(message.view)
        if message.catch_up and self.snapshot is not None:
            self._show(self.snapshot)  # the uncovered screen missed the snapshots since it was covered
        if message.catch_up and self._screens_to_collect:
            # Here, not in pop_screen: a worker started there would run in the closing
            # screen's context (Textual's active_message_pump), which holds on to it.
            closing, self._screens_to_collect = self._screens_to_collect, []
            self.run_worker(self._collect_after(closing), group="collect", exit_on_error=False)

    def on_open_study(self, message: OpenStudy) -> None:
        from tui.screens.study import StudyScreen  # usually imported already (StorePoller.warm_up)

        self.push_screen(StudyScreen(message.study_id, self.checklist))

    def on_open_trial(self, message: OpenTrial) -> None:
        from tui.screens.trial import TrialScreen  # its widgets load when first needed

        self.push_screen(TrialScreen(message.study_id, message.trial_id, message.trial_dir))

    def on_close_screen(self, message: CloseScreen) -> None:
        if message.screen is self.screen:  # not a screen opened since (keys run ahead of messages)
            self.pop_screen()

    def on_push_screen(self, message: PushScreen) -> None:
        self.push_screen(message.screen, message.callback)

    def pop_screen(self) -> AwaitComplete:
        closing = self.screen
        popped = super().pop_screen()
        if isinstance(closing, SnapshotScreen):
            self._screens_to_collect.append((popped, weakref.ref(closing)))  # see on_view_changed
            self._collecting += 1  # no gc.freeze() until it is collected (see _freeze_startup)
        return popped

    async def _collect_after(self, closing: list[tuple[AwaitComplete, weakref.ref[Screen]]]) -> None:
        """A closed screen is a web of cycles (widgets and their parents) that only a full
        collection frees; left to the collector's own timing it ran in the middle of the
        next study's opening (~80 ms with a 1,000-trial study's cells). Now, once Textual has
        removed it and the screen below is painted, while the user reads it."""
        for popped, _ in closing:
            await popped
        refs = [ref for _, ref in closing]
        self._collecting += 1 - len(closing)  # one collection for these pops (see pop_screen)
        del closing, popped  # the awaitables' results are the removed screens
        self.call_after_refresh(self._collect, refs, COLLECT_TRIES, COLLECT_RETRY_S)

    def _collect(self, refs: list[weakref.ref[Screen]], tries: int, wait: float) -> None:
        gc.collect()
        if tries == 1 or all(ref() is None for ref in refs):
            self._collecting -= 1
        # Textual may hold a removed screen a little longer (its message task ending, a
        # handler's context, under load for a second): again later, a few times at most.
        if any(ref() is not None for ref in refs):
            if tries > 1:
                self.set_timer(wait, partial(self._collect, refs, tries - 1, wait * 2))
        else:
            self._freeze_startup()  # nothing closed is left to pin

    def action_wizards(self) -> None:
        from tui.screens.wizards import WizardsScreen  # scipy and the wizards load when first opened

        if not isinstance(self.screen, WizardsScreen):
            names = tuple(s.name for s in self.snapshot.studies) if self.snapshot else ()
            self.push_screen(WizardsScreen(self.db_path, names))

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen
        from tui.widgets.keys import screen_keys

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen, screen_keys(self.screen, self)))

    def on_confirm(self, message: Confirm) -> None:
        from tui.screens.help import ConfirmScreen

        then = message.then
        self.push_screen(ConfirmScreen(message.question), lambda yes: self.post_message(then) if yes else None)

    # -- actions: each in a worker thread, reported as a notification ------------

    def on_register_sample(self, message: RegisterSample) -> None:
        self._act("register", self.sample_study)

    def on_launch_study(self, message: LaunchStudy) -> None:
        self._act("launch", message.study_id)

    def on_stop_study(self, message: StopStudy) -> None:
        self._act("stop_study", message.study_id)

    def on_stop_trial(self, message: StopTrial) -> None:
        self._act("stop_trial", message.trial_id)

    def on_requeue_trial(self, message: RequeueTrial) -> None:
        self._act("requeue_trial", message.trial_id)

    def on_set_notes(self, message: SetNotes) -> None:
        self._act("set_notes", message.study_id, message.notes)

    def on_add_trials(self, message: AddTrials) -> None:
        self._act("add_trials", message.study_id, message.samples)

    # -- study files: open, refine, compare (messages from the studies screen) ---

    def on_open_study_file(self, message: OpenStudyFile) -> None:
        from tui.screens.open_file import OpenFileScreen

        self.push_screen(OpenFileScreen(Path.cwd()), self._register_chosen)

    def _register_chosen(self, chosen: tuple[Path, bool] | None) -> None:
        if chosen is not None:
            self._act("register_file", *chosen)

    def on_refine_study(self, message: RefineStudy) -> None:
        from tui.screens.refine import RefineScreen

        self.push_screen(RefineScreen(self.db_path, message.study_id, message.label),
                         lambda new_id: self._act("launch", new_id) if new_id is not None else None)

    def action_refine_study(self) -> None:
        """The study screen's R: refine the study it shows."""
        study_id = getattr(self.screen, "study_id", None)
        row = self.snapshot.study(study_id) if self.snapshot is not None else None
        if row is not None:
            self.post_message(RefineStudy(row.id, row.shown))

    def on_compare_studies(self, message: CompareStudies) -> None:
        from tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(self.db_path, message.first_id, message.second_id))

    @work(thread=True, group="actions")
    def _act(self, action: str, *args) -> None:
        """Run the tui.data.actions.Actions method `action` (the store loads here, not on the UI thread)."""
        from tui.data.actions import Actions, Note

        if self._actions is None:
            self._actions = Actions(self.db_path)
        try:
            note: Note = getattr(self._actions, action)(*args)
        except Exception as exc:  # a monitoring app reports a failed action, it does not die of it
            note = Note(f"{type(exc).__name__}: {printable(str(exc))}", "error")
        # markup=False: the text quotes study names, paths and errors literally.
        self.notify(note.text, severity=note.severity, markup=False,
                    timeout=10 if note.severity == "error" else 5)
        self._store_poller.wake()  # show the effect without waiting for the next tick

    # -- the command palette lists every key of the screen and of the app ---------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from tui.widgets.keys import screen_keys

        for entry in screen_keys(screen, self):
            if entry.action == "quit":
                continue  # the palette offers Quit already
            target = None if entry.on_app else screen  # None: the app's namespace
            yield SystemCommand(entry.description, f"{entry.help} (key: {entry.keys})",
                                partial(self.run_action, entry.action, target))


def make_app(db_path: str | Path, sample_study: Path = SAMPLE_STUDY, db_source: str = "--db") -> PlaybookApp:
    return PlaybookApp(Path(db_path).expanduser().resolve(), sample_study, db_source)


def open_store_poller(db_path: Path) -> StorePoller:
    from tui.data.snapshot import StorePoller  # in the poller's thread: the store, the analyses

    return StorePoller(db_path)


def open_checklist_reader(db_path: Path) -> ChecklistReader:
    from tui.data.checklist import ChecklistReader

    return ChecklistReader(db_path)


def close(reader: StorePoller | ChecklistReader) -> None:
    reader.close()


def check_store(db_path: Path) -> None:
    """Create and migrate the database now and read a row of each table: a file that is locked
    past the busy timeout or damaged fails here, in one line, rather than inside the running app."""
    from store import connect
    from store.db import check_readable

    db = connect(db_path)
    try:
        check_readable(db, db_path)
    finally:
        db.conn.close()


USER_HELP = """\
The Deep Learning Tuning Playbook as a workbench: your studies, their trials' live curves, the
playbook's checklist and its guided wizards, read from the database a playbook-runner writes.
Closing it never stops trials.

which database: --db PATH, else $PLAYBOOK_DB, else the nearest .playbook/playbook.db in this
folder or one above it (as git finds its repository), else ./.playbook/playbook.db (created).
The header shows the path and where it came from.
"""

KEYS_EPILOG = """\
keys: enter opens · esc goes back · q quits · ? or f1 lists every key of the screen you are on
  studies: n sample study · o open a study file · l launch · X stop (asks) · e notes · g GPUs · W wizards
           m mark, C compare with the marked one · R refine into a BO study
  study:   p plots · c checklist · f filter · s sort · a add trials · x/X stop · r re-queue · R refine
  ctrl+p: the command palette, every action of the app and of the screen by name

without the TUI: playbook-runner --help
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="playbook-tui", description=USER_HELP, epilog=KEYS_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", metavar="PATH", help="the database file (see above for the default)")
    args = parser.parse_args(argv)
    from store import StoreError, locate_db

    db_path, source = locate_db(args.db)
    try:
        check_store(db_path)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    make_app(db_path, db_source=source).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
