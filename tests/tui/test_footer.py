"""The key footer follows the screen and the focus, and is not rebuilt for the same keys."""

from __future__ import annotations

from textual.widgets._footer import FooterKey
from tui_helpers import SIZE, manual_study, open_study, open_trial, run, screen_text, wait_for

from tui.app import make_app


def footer_keys(app) -> list[str]:
    return [k.key for k in app.screen.query(FooterKey)]


def test_footer_shows_each_screens_keys_and_keeps_its_widgets_while_they_stay_the_same(tmp_path):
    _, db_path, _, _ = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "n" in footer_keys(app) or "enter" in footer_keys(app))
            studies_keys = footer_keys(app)
            await open_study(pilot, app, rows=6)
            await wait_for(pilot, lambda: "p" in footer_keys(app) and "f" in footer_keys(app))
            assert footer_keys(app) != studies_keys
            await pilot.pause(0.3)
            widgets = list(app.screen.query(FooterKey))
            # What focus moves and mounts send; the keys are the same, so the line is not rebuilt.
            app.screen.bindings_updated_signal.publish(app.screen)
            await pilot.press("down", "down", "f")
            await pilot.pause(0.3)
            assert list(app.screen.query(FooterKey)) == widgets
            await pilot.press("escape")
            await wait_for(pilot, lambda: footer_keys(app) == studies_keys)

    run(scenario())


def test_at_80_columns_the_footer_keeps_help_the_wizards_and_the_most_used_keys(tmp_path):
    """An 80x24 terminal cannot show every key: the footer keeps `?` (which lists the rest), `W`,
    and each screen's first keys, in short words, all on screen (not cut at the right edge)."""
    _, db_path, _, t = manual_study(tmp_path)

    async def shows(pilot, *words: str) -> None:
        try:
            await wait_for(pilot, lambda: all(w in last_line(pilot.app) for w in words))
        except AssertionError:
            raise AssertionError(f"the footer shows {last_line(pilot.app)!r}, not all of {words}") from None

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await shows(pilot, "n Sample", "l Launch", "? Help", "W Wizards", "^p palette")
            table = await open_study(pilot, app, rows=6)
            await shows(pilot, "⏎ Open", "esc Back", "p Plot", "c Checks", "f Filter", "? Help", "W Wizards",
                        "^p palette")
            await open_trial(pilot, app, table, t[4].id)
            await shows(pilot, "esc Back", "4 Logs", "? Help", "W Wizards")

    run(scenario())


def last_line(app) -> str:
    return screen_text(app).splitlines()[-1]


def test_the_footer_follows_the_terminals_width(tmp_path):
    _, db_path, _, _ = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=(140, 30)) as pilot:
            await open_study(pilot, app, rows=6)
            await wait_for(pilot, lambda: "Next plot" in last_line(app))
            await pilot.resize_terminal(80, 24)
            await wait_for(pilot, lambda: "p Plot" in last_line(app))
            assert "W Wizards" in last_line(app)

    run(scenario())
