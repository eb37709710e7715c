"""The key footer: the most used keys first when they do not all fit, rebuilt only when the keys
it shows (or the width they must fit) change.

Textual's Footer lays every key out in a row and an 80-column terminal cuts what does not
fit, which was the app's own keys (`?` help, `W` wizards) and half of the study screen's.
Here the keys that fit are chosen by priority (tui.widgets.keys.footer_rank): help and the wizards
first, then the screen's keys in the order it declares them (its most used first), then quit;
at a narrow width with shorter words (tui.widgets.keys.FOOTER_SHORT). `?` lists every key anyway.

Textual's Footer also recomposes (removes and mounts a widget per key, each styled by the
stylesheet) on every bindings signal: focus moves, a screen mounts. Opening a study sent
four, three of them for the same keys: about 100 ms of the event loop spent rebuilding an
identical line.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tui.widgets.keys import FOOTER_SHORT, footer_rank

NARROW = 100  # below this many columns the footer uses the short words
PALETTE_WIDTH = 12  # "^p palette", docked at the right end


def shown_keys(screen: Screen) -> tuple:
    """What the footer would show for `screen`: each shown binding and whether it is enabled."""
    return tuple((b.key, b.description, b.action, enabled, tooltip, b.group)
                 for _, b, enabled, tooltip in screen.active_bindings.values() if b.show)


def key_width(key: FooterKey) -> int:
    """Cells a FooterKey takes (Footer's default style: the key padded by one on each side,
    the description followed by one)."""
    return Text(key.key_display).cell_len + 2 + (Text(key.description).cell_len + 1 if key.description else 0)


def fitting(keys: list[FooterKey], width: int, rank) -> list[FooterKey]:
    """The keys that fit in `width` cells, the best ranked first, shown in their own order."""
    room = width - PALETTE_WIDTH
    kept: set[int] = set()
    for i in sorted(range(len(keys)), key=lambda i: rank(keys[i].action)):
        if key_width(keys[i]) > room:
            break  # not a lower-ranked key that happens to be short in its place
        room -= key_width(keys[i])
        kept.add(i)
    return [k for i, k in enumerate(keys) if i in kept]


class KeyFooter(Footer):
    _composed_for: tuple | None = None

    def _width(self) -> int:
        return self.size.width or self.screen.size.width

    def compose(self):
        if self._bindings_ready:
            self._composed_for = (shown_keys(self.screen), self._width())
        width = self._width()
        rank = footer_rank(self.screen)
        keys, palette = [], []
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                if width < NARROW:
                    widget.description = FOOTER_SHORT.get(widget.action, widget.description)
                keys.append(widget)
            else:
                palette.append(widget)
        yield from fitting(keys, width, rank)
        yield from palette

    def bindings_changed(self, screen: Screen) -> None:
        if self._composed_for is not None and screen is self.screen and \
                (shown_keys(screen), self._width()) == self._composed_for:
            return
        super().bindings_changed(screen)

    def on_resize(self, event: events.Resize) -> None:
        if self._composed_for is not None and self._composed_for[1] != self._width():
            self.call_after_refresh(self.recompose)
