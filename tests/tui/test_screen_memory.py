"""A closed screen's memory comes back when it closes, not in the middle of a later open."""

from __future__ import annotations

import gc
import weakref

from tui_helpers import SIZE, manual_study, open_study, run, wait_for

from tui.app import make_app
from tui.screens import StudiesScreen


def test_closed_study_screens_are_freed_by_the_app_not_left_to_the_collector(tmp_path):
    _, db_path, _, _ = manual_study(tmp_path)

    async def scenario():
        app = make_app(db_path)
        async with app.run_test(size=SIZE) as pilot:
            gc.disable()  # only the app's own collections may free them
            try:
                closed = []
                for _ in range(3):
                    await open_study(pilot, app, rows=6)
                    closed.append(weakref.ref(app.screen))
                    await pilot.press("escape")
                    await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))
                    await pilot.pause(0.2)
                # Textual holds on to the screen closed last; the ones before are gone.
                await wait_for(pilot, lambda: [ref() is None for ref in closed[:-1]] == [True, True])
            finally:
                gc.enable()

    run(scenario())
