"""The key footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes (removes and mounts a widget per key, each styled
by the stylesheet) on every bindings signal: focus moves, a screen mounts.
Opening a study sent four, three of them for the same keys: about 100 ms of
the event loop spent rebuilding an identical line.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


def shown_keys(screen: Screen) -> tuple:
    """What the footer would show for `screen`: each shown binding and whether it is enabled."""
    return tuple((b.key, b.description, b.action, enabled, tooltip, b.group)
                 for _, b, enabled, tooltip in screen.active_bindings.values() if b.show)


class KeyFooter(Footer):
    _composed_for: tuple | None = None

    def compose(self):
        if self._bindings_ready:
            self._composed_for = shown_keys(self.screen)
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        if self._composed_for is not None and screen is self.screen and shown_keys(screen) == self._composed_for:
            return
        super().bindings_changed(screen)
