"""A log pane that follows new lines until the reader scrolls back."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import Log


class TailLog(Log):
    """A Log (plain text: no markup is ever parsed) that says when the reader scrolls back.

    Following is the owner's decision (it writes with scroll_end); scrolling up by
    key or wheel posts ScrolledBack so the owner can stop following.
    """

    class ScrolledBack(Message):
        """The reader moved up: stop jumping to the end on new lines."""

    def __init__(self, *, id: str | None = None, max_lines: int = 5000):
        super().__init__(id=id, max_lines=max_lines, auto_scroll=False)

    def _back(self) -> None:
        if self.max_scroll_y:
            self.post_message(self.ScrolledBack())

    def action_scroll_up(self) -> None:
        self._back()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._back()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._back()
        super().action_scroll_home()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._back()
        super()._on_mouse_scroll_up(event)
