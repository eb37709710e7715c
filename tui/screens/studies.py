"""Every study (the playbook's spreadsheet), the highlighted one's notes and reproduce command, the GPUs."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Header, Static

from runner.playbook.outcome import counts_line
from runner.text import printable
from tui.data.polling import Poller
from tui.messages import (
    CompareStudies,
    Confirm,
    LaunchStudy,
    OpenStudy,
    OpenStudyFile,
    PushScreen,
    RefineStudy,
    RegisterSample,
    SetNotes,
    StopStudy,
)
from tui.screens.base import RunnerStatus, SnapshotScreen
from tui.widgets import tables
from tui.widgets.footer import KeyFooter
from tui.widgets.gpu import GpuPanel
from tui.widgets.table import TextTable

if TYPE_CHECKING:
    from tui.data.snapshot import Snapshot, StudyRow

GPU_POLL_S = 2.0


class GpusRead(Message):
    """NVML readings from the worker (an empty list: no GPU here)."""

    def __init__(self, readings: list, error: str | None = None):
        super().__init__()
        self.readings = readings
        self.error = error


class StudiesScreen(SnapshotScreen):
    BINDINGS = [
        Binding("n", "register_sample", "Sample study", tooltip="Register the bundled sample study"),
        Binding("l", "launch", "Launch", tooltip="Launch or resume the highlighted study"),
        Binding("X", "stop_study", "Stop study", tooltip="Stop the highlighted study (asks first)"),
        Binding("e", "edit_notes", "Notes", tooltip="Edit the highlighted study's notes"),
        Binding("g", "toggle_gpus", "GPUs", tooltip="Show or hide the GPU panel"),
        # After the keys above: the footer keeps these only where they fit (tui.widgets.keys.footer_rank).
        Binding("o", "open_file", "Open file", tooltip="Register a study file (a changed file under a "
                "registered name becomes its next version), and launch it if you like"),
        Binding("m", "mark_for_compare", "Mark", tooltip="Mark the highlighted study to compare it with another (C)"),
        Binding("C", "compare", "Compare", tooltip="Compare the marked study with the highlighted one: "
                "best per scientific value, isolation and axis plots overlaid"),
        Binding("R", "refine", "Refine", tooltip="Refine the highlighted exploration into a Bayesian-"
                "optimization study beside its file (the checklist may refuse)"),
    ]

    _detail_shown: Text | None = None  # what #study-detail shows
    _marked: int | None = None  # the study marked (m) to compare with the highlighted one (C)

    def __init__(self, db_path: Path, sample_study: Path):
        super().__init__()
        self.db_path, self.sample_study = db_path, sample_study  # for the empty database's hint

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunnerStatus(id="runner")
        yield Static(id="empty")
        yield TextTable(id="studies", cursor_type="row", zebra_stripes=True)
        yield Static(id="study-detail")
        yield GpuPanel(id="gpus")
        yield KeyFooter()

    def on_mount(self) -> None:
        tables.set_columns(self.query_one(DataTable), tables.STUDY_COLUMNS)
        self.query_one("#empty", Static).update(Text("reading the database…"))
        self.add_class("-empty")  # until the first snapshot says otherwise
        panel = self.query_one(GpuPanel)
        panel.border_title = "GPUs (g hides)"
        panel.show()
        self._gpu_poller = Poller(self._read_gpus, self.post_message, GPU_POLL_S, name="gpus")
        self.call_after_refresh(self._gpu_poller.start)  # pynvml's import would delay the first frame

    def on_unmount(self) -> None:
        self._gpu_poller.stop()

    def show(self, snap: Snapshot) -> None:
        self.query_one(RunnerStatus).show(snap)
        table = self.query_one(DataTable)
        empty = not snap.studies
        self.set_class(empty, "-empty")
        if empty:
            self.query_one("#empty", Static).update(Text(
                "No studies in this database yet.\n\n"
                f"Press n to register the bundled sample study:\n  {self.sample_study}\n\n"
                "or press o to open a study file of your own,\n\n"
                f"or register one from a shell:\n  playbook-runner --db {shlex.quote(str(self.db_path))} run STUDY.toml"))
        tables.sync_rows(table, tables.STUDY_COLUMNS, snap.studies, key=lambda r: str(r.id))
        self._show_detail()
        self.query_one(GpuPanel).show(slots=snap.slots)

    def _show_detail(self) -> None:
        study = self._study()
        text = self._detail_text(study)
        if text != self._detail_shown:  # an update relayouts the screen: not on every poll for nothing
            self._detail_shown = text
            self.query_one("#study-detail", Static).update(text)

    def _detail_text(self, study: StudyRow | None) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if study is not None:
            notes = " ".join(study.notes.split()) or "(none: press e to write some)"
            text.append("trials ", style="bold")
            text.append(printable(counts_line(study.counts, study.infeasible_by)) + "\n")
            text.append("notes ", style="bold")
            text.append(printable(notes))
            text.append("\nreproduce ", style="bold")
            text.append(printable(study.reproduce_command or "—"))
            if study.baseline:
                text.append(f"\n{tables.BASELINE_MARK} ", style="bold green")
                text.append(study.baseline)
            if lineage := _lineage(study):
                text.append("\nversion ", style="bold")
                text.append(printable(lineage))
        return text

    def _study(self) -> StudyRow | None:
        key = tables.current_key(self.query_one(DataTable))
        snap = self.snapshot
        return snap.study(int(key)) if snap is not None and key is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(OpenStudy(int(event.row_key.value)))

    def _highlighted(self) -> int | None:
        key = tables.current_key(self.query_one(DataTable))
        if key is None:
            self.notify("no study highlighted", severity="warning")
        return int(key) if key is not None else None

    def action_register_sample(self) -> None:
        self.post_message(RegisterSample())

    def action_open_file(self) -> None:
        self.post_message(OpenStudyFile())

    def action_refine(self) -> None:
        study = self._study()
        if study is None:
            self.notify("no study highlighted", severity="warning")
            return
        self.post_message(RefineStudy(study.id, study.shown))

    def action_mark_for_compare(self) -> None:
        study = self._study()
        if study is None:
            self.notify("no study highlighted", severity="warning")
            return
        self._marked = None if self._marked == study.id else study.id
        self.notify(f"marked {printable(study.shown)}: highlight another study or version and press C"
                    if self._marked is not None else f"unmarked {printable(study.shown)}", markup=False)

    def action_compare(self) -> None:
        study = self._study()
        marked = self.snapshot.study(self._marked) if self.snapshot is not None else None
        if marked is None:
            self.notify("press m on the first study, then C on the second", severity="warning")
        elif study is None or study.id == marked.id:
            self.notify(f"{printable(marked.shown)} is marked: highlight another study or version to compare "
                        "it with", severity="warning", markup=False)
        else:
            self.post_message(CompareStudies(marked.id, study.id))

    def action_launch(self) -> None:
        if (study_id := self._highlighted()) is not None:
            self.post_message(LaunchStudy(study_id))

    def action_stop_study(self) -> None:
        study = self._study()  # now, at the key press
        if study is None:
            self.notify("no study highlighted", severity="warning")
            return
        study_id = study.id
        self.post_message(Confirm(f"Stop study {printable(study.name)}? Its running trials stop; "
                                  "its queued trials wait for the next launch.", StopStudy(study_id)))

    def action_edit_notes(self) -> None:
        from tui.screens.notes import NotesScreen  # the text editor loads when first needed

        study = self._study()
        if study is None:
            self.notify("no study highlighted", severity="warning")
            return

        def save(notes: str | None) -> None:
            if notes is not None and notes != study.notes:
                self.post_message(SetNotes(study.id, notes))

        self.post_message(PushScreen(NotesScreen(study.name, study.notes), save))

    # -- the GPU panel: NVML read in a worker every GPU_POLL_S, while it is shown ---

    def action_toggle_gpus(self) -> None:
        panel = self.query_one(GpuPanel)
        panel.display = not panel.display
        self._gpus_shown = panel.display  # what the poller thread reads
        self._gpu_poller.wake()

    _gpus_shown = True

    def _read_gpus(self, _: None) -> GpusRead | None:
        # is_current stays true for the screen just under the top one (Textual 8); is_active does not.
        if not (self.is_active and self._gpus_shown):
            return None
        from runner import gpus  # pynvml loads here, off the event loop

        try:
            return GpusRead(gpus.read_all())
        except Exception as exc:  # a GPU that fell off the bus is news, not a crash
            return GpusRead([], f"{type(exc).__name__}: {exc}")

    def on_gpus_read(self, message: GpusRead) -> None:
        panel = self.query_one(GpuPanel)
        panel.show(readings=message.readings)
        if message.error:
            panel.show_error(message.error)


def _lineage(study: StudyRow) -> str:
    """'v2 (tiny@2) · refines explore': where this version sits, empty for a study with one version."""
    parts = []
    if study.version > 1 or study.earlier:
        parts.append(f"v{study.version} ({study.address})" + (", a later version is listed above it"
                                                                if study.earlier else ", the latest"))
    if study.refines:
        parts.append(f"refines {study.refines}")
    return " · ".join(parts)
