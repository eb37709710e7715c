"""The playbook's checklist as lines: a verdict mark in the theme's color, the question, the answer.

Each line takes focus; enter or space expands it to the evidence (the check's
detail lines) and the advice. Lines are kept while the same checks come back, so
an expanded item stays expanded while the study runs.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from runner.text import printable
from tui.data.checklist import CheckItem, ChecklistResult

# Theme variables, not fixed colors: every Textual theme keeps its meaning.
MARKS = {"ok": ("✓", "$success"), "warning": ("▲", "$warning"), "problem": ("✗", "$error"),
         "n/a": ("·", "$text-muted")}
VERDICT_WIDTH = 7  # "warning"


def head_content(item: CheckItem, expanded: bool) -> Content:
    """The check's line: the verdict, the question and (collapsed) the answer.

    Content(...) of a str is literal: titles and summaries quote parameter names
    and values from study files, never markup.
    """
    mark, color = MARKS.get(item.verdict, ("?", ""))
    head = Content.assemble(
        ("▾ " if expanded else "▸ ", "$text-muted"),
        (f"{mark} {item.verdict:<{VERDICT_WIDTH}}", f"bold {color}"), " ",
        (printable(item.title), "bold"),
    )
    return head if expanded else Content.assemble(head, ("  " + printable(item.summary), "$text-muted"))


def body_content(item: CheckItem) -> Content:
    """What an expanded check shows under its line: the answer, the evidence, the advice."""
    lines = [Content(printable(item.summary))]
    lines += [Content.styled(printable(d), "$text-muted") for d in item.details]
    if item.advice:
        lines.append(Content.styled("→ " + printable(item.advice), "italic"))
    return Content("\n").join(lines)


class CheckLine(Vertical, can_focus=True):
    """One check; enter or space shows or hides its evidence (indented, wrapped, under the line)."""

    DEFAULT_CSS = """
    CheckLine {
        height: auto;
        &:focus { background: $primary 25%; }
        .check-head { text-wrap: nowrap; text-overflow: ellipsis; }
        .check-body { display: none; padding-left: 4; }
        &.-expanded .check-body { display: block; }
    }
    """

    BINDINGS = [
        Binding("enter,space", "toggle", "Expand", tooltip="Show or hide this check's evidence and advice"),
        Binding("up", "move(-1)", "Previous check", show=False),
        Binding("down", "move(1)", "Next check", show=False),
    ]

    def __init__(self, item: CheckItem):
        super().__init__(classes=f"-{item.verdict.replace('/', '')}")
        self.item = item
        self.expanded = False

    def compose(self):
        yield Static(classes="check-head")
        yield Static(classes="check-body")

    def on_mount(self) -> None:
        self._draw()

    def show(self, item: CheckItem) -> None:
        if item != self.item:
            self.item = item
            self._draw()

    def action_toggle(self) -> None:
        self.expanded = not self.expanded
        self.set_class(self.expanded, "-expanded")
        self._draw()
        self.call_after_refresh(self.scroll_visible)  # the evidence may reach below the panel

    def action_move(self, delta: int) -> None:
        lines = list(self.parent.query_children(CheckLine)) if self.parent else [self]
        index = lines.index(self) + delta
        if 0 <= index < len(lines):  # no wrapping around: the list has a top and a bottom
            lines[index].focus()

    def on_click(self) -> None:
        self.focus()
        self.action_toggle()

    def _draw(self) -> None:
        self.query_one(".check-head", Static).update(head_content(self.item, self.expanded))
        if self.expanded:
            self.query_one(".check-body", Static).update(body_content(self.item))


class ChecklistPanel(VerticalScroll, can_focus=False):
    """Every check of the checklist, or a line saying why there are none yet.

    Not focusable itself: focus goes to the lines, and scrolling follows it.
    """

    def compose(self):
        yield Static(id="checklist-note")

    def show(self, result: ChecklistResult | None) -> None:
        note = self.query_one("#checklist-note", Static)
        if result is None:
            note.update(Content("computing the checklist…"))
        elif result.error:
            note.update(Content.styled(f"the checklist failed: {printable(result.error)}", "$error"))
        note.display = result is None or bool(result.error)
        if result is None or result.error:
            return  # the previous checks, if any, stay: they are the last known answers
        lines = list(self.query_children(CheckLine))
        if [line.item.key for line in lines] == [c.key for c in result.checks]:
            for line, item in zip(lines, result.checks, strict=True):
                line.show(item)
        else:
            for line in lines:
                line.remove()
            self.mount_all(CheckLine(item) for item in result.checks)

    def first_line(self) -> CheckLine | None:
        return next(iter(self.query_children(CheckLine)), None)
