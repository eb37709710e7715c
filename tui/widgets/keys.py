"""The keys of a screen, read from its BINDINGS and the app's: what the help modal and the
command palette both list, so neither can drift from what the keys really do."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen


@dataclass(frozen=True)
class KeyHelp:
    keys: str  # as the user types them, e.g. "x" or "? / f1"
    description: str  # the footer's word
    help: str  # the tooltip, or the description again
    action: str  # what runs, as Textual's run_action takes it
    on_app: bool  # declared by the app (any screen) rather than by this screen


def _declared(node_class: type) -> list[Binding]:
    """The bindings a class and its bases of our own declare (not Textual's Screen/App defaults)."""
    seen: list[Binding] = []
    for cls in reversed(node_class.__mro__):
        if cls.__module__.split(".")[0] == "tui":
            seen.extend(b for b in cls.__dict__.get("BINDINGS", ()) if isinstance(b, Binding))
    return seen


def screen_keys(screen: Screen, app: App) -> list[KeyHelp]:
    """The screen's own keys first, then the app's; one entry per action, each key once."""
    entries: list[KeyHelp] = []
    taken: set[str] = set()
    for on_app, bindings in ((False, _declared(type(screen))), (True, _declared(type(app)))):
        for binding in bindings:
            keys = [k.strip() for k in binding.key.split(",") if k.strip() not in taken]
            if not keys or not binding.description:
                continue
            taken.update(keys)
            shown = " / ".join(app.get_key_display(Binding(k, binding.action)) for k in keys)
            entries.append(KeyHelp(shown, binding.description, binding.tooltip or binding.description,
                                   binding.action, on_app))
    return entries


# The footer's words at a narrow width (an 80-column terminal), by action; the help modal and the
# command palette keep the full descriptions.
FOOTER_SHORT = {
    "open_trial": "Open", "select_cursor": "Open", "mark": "Overlay", "next_plot": "Plot",
    "toggle_checklist": "Checks", "cycle_filter": "Filter", "cycle_sort": "Sort", "add_trials": "Add",
    "stop_trial": "Stop", "stop_study": "Stop all", "requeue_trial": "Requeue", "register_sample": "Sample",
    "toggle_gpus": "GPUs", "edit_notes": "Notes", "wizards": "Wizards", "help": "Help",
    "new('probe-batch')": "Probe", "new('warmup')": "Warmup", "new('decide')": "Adopt?",
    "tab('overview')": "Info", "tab('gradients')": "Grads", "next_metric": "Metric", "answer(0)": "Run",
    "open_study": "Stage study", "skip": "Skip",
}
# Kept first when the footer cannot show every key: help lists the rest, the wizards are the app's
# guided path. Quit (q) comes after the screen's own keys: it is the key everyone knows.
FOOTER_FIRST = ("help", "wizards")
FOOTER_LAST = ("quit",)


def footer_rank(screen: Screen):
    """action -> rank for the footer (lower is kept first): FOOTER_FIRST, the screen's keys in
    the order it declares them, the app's other keys, FOOTER_LAST."""
    order: dict[str, int] = {}
    for binding in _declared(type(screen)):
        order.setdefault(binding.action, len(order))

    def rank(action: str) -> tuple[int, int]:
        if action in FOOTER_FIRST:
            return (0, FOOTER_FIRST.index(action))
        if action in FOOTER_LAST:
            return (3, FOOTER_LAST.index(action))
        return (1, order[action]) if action in order else (2, 0)

    return rank
