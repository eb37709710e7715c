"""What the TUI writes to its terminal: as few bytes as the screen's changes need (over SSH,
every byte crosses the network).

Textual repaints a changed region of a widget from the widget's left edge to the region's
right end (textual._compositor.ChopsUpdate.render_segments crops only the end): a trial
table cell that changes at column 90 resent the 90 cells before it, and a plot line the
whole line up to its last changed cell. `crop_partial_updates` makes it crop both ends, so
a changed cell sends that cell. Checked against the Textual pinned in pyproject.toml; with
another one that lacks this method nothing is changed.
"""

from __future__ import annotations

from rich.console import Console
from rich.control import Control


def _render_segments(self, console: Console) -> str:
    """ChopsUpdate.render_segments, cropped to each span's start as well as its end."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(self.chop_ends[y], self.chops[y].items(), strict=False):
            if strip is None or x >= x2 or end <= x1:
                continue
            if x < x1 or end > x2:
                strip = strip.crop(max(x1 - x, 0), min(end, x2) - x)
                x = max(x, x1)
            append(move_to(x, y).segment.text)
            append(strip.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def crop_partial_updates() -> bool:
    """Install the cropping; True if this Textual has the method it replaces."""
    try:
        from textual._compositor import ChopsUpdate
    except ImportError:
        return False
    if not callable(getattr(ChopsUpdate, "render_segments", None)):
        return False
    ChopsUpdate.render_segments = _render_segments
    return True
