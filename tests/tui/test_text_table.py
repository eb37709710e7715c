"""TextTable: an updated cell is shown at once, and only its row is rendered again."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable
from tui_helpers import run, screen_text

from tui.widgets.table import TextTable


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield TextTable(id="t")


def test_an_update_shows_at_once_and_re_renders_only_its_row():
    async def scenario():
        app = OneTable()
        async with app.run_test(size=(40, 12)) as pilot:
            table = app.query_one(TextTable)
            table.add_column("n", key="n")
            table.add_column("state", key="state")
            table.add_column("after", key="after")
            for i in range(6):
                table.add_row(Text(str(i)), Text("queued"), Text("x"), key=str(i))
            await pilot.pause(0.2)
            table.refresh()  # a paint at the table's settled state (adding rows bumped it after the first)
            await pilot.pause(0.2)
            rendered: list[str] = []
            render_cell = DataTable._render_cell

            def counted(self, row_index, *args, **kwargs):
                rendered.append(self._row_locations.get_key(row_index).value if row_index >= 0 else "header")
                return render_cell(self, row_index, *args, **kwargs)

            DataTable._render_cell = counted
            try:
                table.update_cell("3", "state", Text("active"))
                await pilot.pause()
            finally:
                DataTable._render_cell = render_cell
            assert set(rendered) == {"3"}  # the other rows came from the cache
            assert table.get_cell("3", "state").plain == "active"
            text = screen_text(app)
            assert " 3  active" in text and text.count("queued") == 5, text
            # A wider value widens its column on every row: no row keeps a render of the old width.
            table.update_cell("4", "state", Text("running, for a while"), update_width=True)
            await pilot.pause(0.2)
            lines = screen_text(app).splitlines()
            assert lines[5].startswith(" 4  running, for a while")
            # The column after it moved right on every row, not only on the updated one.
            assert [ln.index("x") for ln in lines[1:7]] == [lines[5].index(" x") + 1] * 6

    run(scenario())
