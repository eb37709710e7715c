"""Your own work from the TUI: open a study file (o), versions in the list, refine (R), compare (m, C)."""

from __future__ import annotations

import tomllib

import pytest
from test_app import _stop_runner
from textual.widgets import Checkbox, DataTable, Input, Static
from tui_helpers import SIZE, Notes, finish, open_study, registered, run, screen_text, wait_for, write_study

from store import connect, studies, trials
from store.trials import TrialState
from tests.e2e.test_compare_e2e import two_versions
from tui.app import make_app
from tui.data.actions import Actions
from tui.screens import StudiesScreen, StudyScreen
from tui.screens.compare import CompareScreen
from tui.screens.open_file import OpenFileScreen, path_completions
from tui.screens.refine import RefineScreen
from tui.widgets.plot import PlotWidget


def _names(table: DataTable) -> list[str]:
    return [table.get_row_at(i)[0].plain for i in range(table.row_count)]


async def _open_dialog(pilot, app) -> Input:
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(app.screen, OpenFileScreen) and bool(app.screen.query(Input)))
    return app.screen.query_one(Input)


def test_open_a_study_file_completes_paths_validates_and_registers_versions(tmp_path):
    folder = tmp_path / "mywork"
    path = write_study(folder)  # study.toml and its train.py
    (folder / "notes.txt").write_text("not a study")
    bad = folder / "broken.toml"
    bad.write_text('[study]\nname = "broken"\n')
    db_path = tmp_path / "db" / "playbook.db"
    assert path_completions(str(folder) + "/", tmp_path) == [str(bad), str(path)]  # *.toml only, no .txt

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            field = await _open_dialog(pilot, app)
            field.value = str(tmp_path / "my")
            await wait_for(pilot, lambda: field._suggestion == str(folder) + "/")
            await pilot.press("tab")  # completes the folder
            assert field.value == str(folder) + "/"
            await pilot.press(*"st")
            await wait_for(pilot, lambda: field._suggestion == str(path))
            await pilot.press("tab")
            assert field.value == str(path)

            field.value = str(bad)  # a bad file: its problems in the dialog, which stays open
            await pilot.press("enter")
            problem = app.screen.query_one("#open-problem", Static)
            await wait_for(pilot, lambda: "invalid study file" in str(problem.render()))
            assert "study.command" in str(problem.render()) and isinstance(app.screen, OpenFileScreen)
            field.value = str(path)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))
            await wait_for(pilot, lambda: notes.has("registered study tiny: 2 new trial(s) queued"))
            await wait_for(pilot, lambda: _names(table) == ["tiny"])

            path.write_text(path.read_text().replace("max_train_steps = 5", "max_train_steps = 6"))
            field = await _open_dialog(pilot, app)
            field.value = str(path)
            await pilot.press("enter")
            await wait_for(pilot, lambda: notes.has("registered tiny v2, a new version of tiny (tiny keeps its "
                                                    "trials): 2 new trial(s) queued"))
            # The latest version first, the earlier one under it.
            await wait_for(pilot, lambda: _names(table) == ["tiny v2", "  · tiny v1"])
            table.move_cursor(row=1)
            await wait_for(pilot, lambda: "version v1 (tiny@1), a later version is listed above it"
                           in screen_text(app))

    run(scenario())
    db = connect(db_path)
    assert [(s.name, s.version) for s in studies.list_all(db)] == [("tiny", 1), ("tiny", 2)]  # no "broken"


def test_open_and_launch_runs_the_new_study(tmp_path):
    path = write_study(tmp_path / "mywork")
    db_path = tmp_path / "db" / "playbook.db"
    db = connect(db_path)

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            field = await _open_dialog(pilot, app)
            field.value = str(path)
            app.screen.query_one(Checkbox).value = True
            await pilot.press("enter")
            await wait_for(pilot, lambda: notes.has("started runner pid"))
            await wait_for(pilot, lambda: (s := studies.by_name(db, "tiny")) is not None and all(
                t.state is TrialState.COMPLETED for t in trials.list_for_study(db, s.id)), timeout=60)

    try:
        run(scenario())
    finally:
        _stop_runner(db)


def _edge_exploration(tmp_path):
    """Six finished trials whose best lr crowd the high edge of its range: refine refuses."""
    db, db_path, study = registered(tmp_path, manual=True)
    for t in trials.list_for_study(db, study.id):
        finish(db, t.id, TrialState.COMPLETED, best=1 - t.params["lr"], val=1 - t.params["lr"])
    return db, db_path, study


def test_refine_from_the_studies_screen_refuses_then_writes_and_registers_a_linked_study(tmp_path):
    db, db_path, study = _edge_exploration(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, RefineScreen) and bool(app.screen.query("#refine-body")))
            body = app.screen.query_one("#refine-body", Static)
            await wait_for(pilot, lambda: "refused" in str(body.render()))
            text = str(body.render())
            assert "best trials at a boundary: lr crowds its high edge" in text and "widen lr high bound" in text
            assert "f refines anyway" in str(app.screen.query_one("#refine-hint", Static).render())
            assert not (tmp_path / "study" / "tiny-refined.toml").exists()  # refused: nothing written

            await pilot.press("f")
            await wait_for(pilot, lambda: "wrote" in str(body.render()))
            text = str(body.render())
            assert "warning: the sampling check says" in text and "lr: 0.01..0.5 ->" in text
            assert "registered study tiny-refined: 2 new trial(s) queued" in text
            assert "l launches it" in str(app.screen.query_one("#refine-hint", Static).render())
            await pilot.press("escape")
            await wait_for(pilot, lambda: _names(table) == ["tiny", "tiny-refined"])
            table.move_cursor(row=1)
            await wait_for(pilot, lambda: "version refines tiny" in screen_text(app))

    run(scenario())
    written = tmp_path / "study" / "tiny-refined.toml"  # beside the old file
    config = tomllib.loads(written.read_text())
    assert (config["study"]["refines"], config["study"]["search"]) == ("tiny", "bayes")
    refined = studies.by_name(db, "tiny-refined")
    assert (refined.refines, refined.config_path) == ("tiny", str(written))


def test_refine_never_overwrites_and_a_second_refine_is_the_next_version(tmp_path):
    from tui.data.study_files import refine_and_register

    db, db_path, study = _edge_exploration(tmp_path)
    first = refine_and_register(db_path, study.id, force=True)
    (tmp_path / "study" / "tiny-refined.toml").write_text("# my edits\n" + first.output.read_text())
    second = refine_and_register(db_path, study.id, force=True)
    assert second.output == tmp_path / "study" / "tiny-refined-2.toml"
    assert (tmp_path / "study" / "tiny-refined.toml").read_text().startswith("# my edits")
    assert "already registered" in second.registered.text  # the same content: the same study


def test_compare_two_versions_side_by_side(tmp_path):
    db_path = tmp_path / "db" / "playbook.db"
    two_versions(tmp_path, db_path)

    async def scenario():
        notes = Notes()
        app = make_app(db_path)
        async with app.run_test(size=(120, 50), message_hook=notes) as pilot:
            table = app.screen.query_one("#studies", DataTable)
            await wait_for(pilot, lambda: _names(table) == ["tiny v2", "  · tiny v1"])
            await pilot.press("C")
            await wait_for(pilot, lambda: notes.has("press m on the first study, then C on the second"))
            await pilot.press("m")  # tiny v2
            await pilot.press("C")
            await wait_for(pilot, lambda: notes.has("is marked: highlight another study or version"))
            await pilot.press("down", "C")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and bool(app.screen.query("#compare-best")))
            best = app.screen.query_one("#compare-best", DataTable)
            await wait_for(pilot, lambda: best.row_count == 2)
            rows = [[c.plain for c in best.get_row_at(i)] for i in range(2)]
            assert rows == [["width=4", "0.04202 (#1)", "0.1476 (#1)", "tiny v2"],
                            ["width=8", "0.02101 (#2)", "0.07381 (#2)", "tiny v2"]]
            plots = list(app.screen.query(PlotWidget))
            assert [p.spec.title for p in plots] == ["isolation: best val_loss per width", "val_loss vs lr (log)",
                                                     "val_loss vs width"]
            isolation = plots[0].spec
            assert [s.label for s in isolation.series if s.label] == ["tiny v2", "tiny v1"]
            assert isolation.series[1].ys == pytest.approx((0.7 ** 5 / 4, 0.7 ** 5 / 8))  # v2's best per width
            assert {s.color for s in isolation.series} == {"primary", "warning"}  # a colour per study
            await wait_for(pilot, lambda: all(p.drawn for p in plots[:2]))
            shown = screen_text(app)
            assert "tiny v2 (•) vs tiny v1 (+): best val_loss per scientific value" in shown
            assert "• tiny v2  + tiny v1" in shown  # the legend names both studies, each with its marker
            assert "isolation: best val_loss per width" in shown
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))

    run(scenario())


def test_refine_from_the_study_screen(tmp_path):
    db, db_path, study = _edge_exploration(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await open_study(pilot, app, rows=6)
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, RefineScreen) and bool(app.screen.query("#refine-body")))
            assert "Refine tiny" in str(app.screen.query_one("#refine-title", Static).render())
            body = app.screen.query_one("#refine-body", Static)
            await wait_for(pilot, lambda: "refused" in str(body.render()))
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))

    run(scenario())


def test_refining_an_earlier_version_links_it_as_name_at_n(tmp_path):
    from tui.data.study_files import refine_and_register

    db, db_path, v1 = _edge_exploration(tmp_path)
    path = tmp_path / "study" / "study.toml"
    path.write_text(path.read_text().replace("timeout = 60", "timeout = 61"))
    assert "registered study tiny v2" in Actions(db_path).register(path).text
    done = refine_and_register(db_path, v1.id, force=True)
    assert done.study == "tiny v1"
    assert tomllib.loads(done.output.read_text())["study"]["refines"] == "tiny@1"  # not the latest: NAME@N
    assert studies.by_name(db, "tiny-refined").refines == "tiny@1"


def test_the_gpu_panel_names_a_later_version(tmp_path):
    from tui_helpers import start

    from runner.launch import register
    from runner.spec import load
    from tui.data.snapshot import read_slots, read_studies

    db, db_path, v1 = registered(tmp_path)
    path = tmp_path / "study" / "study.toml"
    path.write_text(path.read_text().replace("timeout = 60", "timeout = 61"))
    v2, _ = register(db, db_path, load(path))
    start(db, trials.list_for_study(db, v2.id)[0].id, slot="gpu:0")
    assert [(s.slot, s.study, s.number) for s in read_slots(db, read_studies(db))] == [("gpu:0", "tiny v2", 1)]


def test_a_wide_footer_shows_the_study_file_keys_after_the_others(tmp_path):
    _, db_path, _ = registered(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(200, 30)) as pilot:
            await wait_for(pilot, lambda: app.screen.query_one("#studies", DataTable).row_count == 1)
            def footer() -> str:
                return next((line for line in screen_text(app).splitlines() if "? Help" in line), "")

            await wait_for(pilot, lambda: "o Open file" in footer())  # the footer is composed a frame later
            footer = footer()
            assert "? Help" in footer and footer.index("g GPUs") < footer.index("o Open file")
            assert "m Mark" in footer and "C Compare" in footer and "R Refine" in footer

    run(scenario())
