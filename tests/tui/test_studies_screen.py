"""The studies screen: notes edited in place, the reproduce command, the GPU panel."""

from __future__ import annotations

from textual.widgets import DataTable, Static, TextArea
from tui_helpers import SIZE, Notes, manual_study, registered, run, wait_for

from runner import gpus
from runner.gpus import GpuReading
from store import studies
from tui.app import make_app
from tui.screens import StudiesScreen
from tui.screens.notes import NotesScreen
from tui.widgets.gpu import NO_GPU, GpuPanel


def test_notes_edit_persists_and_reproduce_is_shown(tmp_path):
    db, db_path, study = registered(tmp_path)
    studies.set_notes(db, study.id, "first line\nsecond line")

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            detail = app.screen.query_one("#study-detail", Static)
            await wait_for(pilot, lambda: "first line second line" in str(detail.render()))
            assert f"reproduce playbook-runner run {tmp_path / 'study' / 'study.toml'}" in str(detail.render())

            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, NotesScreen))
            area = app.screen.query_one(TextArea)
            assert area.text == "first line\nsecond line"  # multi-line notes survive editing
            await pilot.press("enter", *"third [b]line[/b]")
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))
            await wait_for(pilot, lambda: notes.has("saved the notes of tiny"))
            assert studies.get(db, study.id).notes == "first line\nsecond line\nthird [b]line[/b]"
            await wait_for(pilot, lambda: "third [b]line[/b]" in str(detail.render()))  # literally

            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, NotesScreen))
            await pilot.press("x", "escape")  # cancel: nothing written
            await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))
            assert studies.get(db, study.id).notes.endswith("third [b]line[/b]")

    run(scenario())


def test_gpu_panel_without_a_gpu(tmp_path, monkeypatch):
    _, db_path, _ = registered(tmp_path)
    monkeypatch.setattr(gpus, "read_all", lambda: [])

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            panel = app.screen.query_one(GpuPanel)
            await wait_for(pilot, lambda: str(panel.render()) == NO_GPU)
            await pilot.press("g")
            assert not panel.display
            await pilot.press("g")
            assert panel.display

    run(scenario())


def test_gpu_panel_shows_readings_and_the_trials_on_each_gpu(tmp_path, monkeypatch):
    _, db_path, _, _ = manual_study(tmp_path)  # trial #5 runs on gpu:0
    readings = [GpuReading(0, "NVIDIA H100 80GB HBM3", 87, 40960, 81559, 61),
                GpuReading(1, "NVIDIA H100 80GB HBM3", None, 0, 81559, 90)]
    monkeypatch.setattr(gpus, "read_all", lambda: readings)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            panel = app.screen.query_one(GpuPanel)
            await wait_for(pilot, lambda: "tiny #5" in str(panel.render()))
            first, second = str(panel.render()).splitlines()
            assert first.startswith("GPU0 ███████░  87%  mem 40.0/80 GiB  61°C  tiny #5  H100 80GB HBM3")
            assert second.startswith("GPU1 ????????   ?%  mem 0.0/80 GiB  90°C  idle")

    run(scenario())
