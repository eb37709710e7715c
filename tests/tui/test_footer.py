"""The key footer follows the screen and the focus, and is not rebuilt for the same keys."""

from __future__ import annotations

from textual.widgets._footer import FooterKey
from tui_helpers import SIZE, manual_study, open_study, run, wait_for

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
            await wait_for(pilot, lambda: "l" in footer_keys(app) and "x" in footer_keys(app))
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
